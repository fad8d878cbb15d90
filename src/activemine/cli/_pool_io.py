"""Turning tables and image folders into a labeled set and a pool for the CLI commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from activemine.data.chunks import LabeledSet
from activemine.data.tables import choose_features, numeric_matrix, read_table, require_columns, resolve_label_col
from activemine.errors import InputError


@dataclass(frozen=True)
class ImageOptions:
    """The CLI's image settings: ``--image-col``, ``--image-size``, ``--image-mode``, ``--skip-bad-images``
    and ``--n-jobs`` (decode threads)."""

    column: str | None = None
    size: str | None = None
    mode: str | None = None
    skip_bad: bool = False
    n_jobs: int | None = None

    def spec(self):
        """The :class:`~activemine.data.images.ImageSpec` these options ask for (checked, no I/O)."""
        from activemine.data.images import ImageSpec, parse_image_size
        from activemine.models import check_n_jobs

        return ImageSpec(parse_image_size(self.size), self.mode, None, check_n_jobs(self.n_jobs))


def _is_image_folder(path) -> bool:
    from activemine.data.images import is_image_folder

    return path is not None and Path(path).is_dir() and is_image_folder(path)


def read_labeled_images(
    labeled_path, *, label_col: str, id_col: str, images: ImageOptions, labels_only: bool = False, steps=None
):
    """L from a labeled image folder, or from a table whose ``images.column`` holds paths or bytes.

    Returns ``(LabeledSet, spec, BadImages)``; ``spec`` (size and mode fixed from
    L's first image unless given) is the one the pool must use. ``steps``:
    ``steps(description, total)`` -> a context manager yielding a ``progress(n)`` callback.
    """
    from contextlib import nullcontext

    from activemine.data.images import BadImages, check_images, decode_images, first_item, list_labeled_images

    steps = steps or (lambda description, total=None: nullcontext(None))
    spec = images.spec()
    path = Path(labeled_path)
    if path.is_dir():
        if labels_only:
            paths, y, classes = list_labeled_images(path)
            import numpy as np

            ids = np.asarray(paths.to_pylist(), dtype=str)
            return LabeledSet(None, np.asarray(classes, dtype=str)[y], ids), spec, BadImages(np.empty(0, np.int64), [])
        from activemine.data.images import read_labeled_folder

        with steps(f"checking and decoding the labeled images of {path}", None) as bar:
            return read_labeled_folder(path, spec, skip_bad=images.skip_bad, progress=bar)
    table = read_table(path)
    require_columns(table.column_names, [id_col, label_col, images.column], where=str(path))
    spec = replace(spec, root=str(path.parent))
    column = table.column(images.column)
    bad = check_images(column, root=spec.root, where=str(path), n_jobs=spec.n_jobs, skip_bad=images.skip_bad)
    if len(bad):
        import numpy as np
        import pyarrow as pa

        keep = np.ones(table.num_rows, dtype=bool)
        keep[bad.rows] = False
        table = table.filter(pa.array(keep))
        column = table.column(images.column)
    spec = spec.resolved(first_item(column), where=str(path))
    y = table.column(label_col).to_numpy(zero_copy_only=False)
    ids = table.column(id_col).to_numpy(zero_copy_only=False)
    X = None if labels_only else decode_images(column, spec, where=str(path))
    return LabeledSet(X, y, ids, image_shape=None if labels_only else spec.shape), spec, bad


def split_columns(spec: str | None) -> list[list[str]]:
    """``"a0,a1;b0,b1"`` -> ``[["a0", "a1"], ["b0", "b1"]]`` (groups per committee member)."""
    if not spec:
        return []
    return [[c.strip() for c in group.split(",") if c.strip()] for group in spec.split(";") if group.strip()]


def load_streaming_inputs(
    *,
    labeled_path,
    pool_path,
    label_col: str | None,
    id_col: str,
    proba_cols: str | None,
    weak_proba_cols: str | None,
    embedding: tuple = (),
    dedup_col: str | None = None,
    feature_cols: list[str] | None = None,
    feature_prefix: str | None = None,
    images: ImageOptions | None = None,
    steps: Callable | None = None,
):
    """Read L and open U as a stream (:class:`activemine.data.sources.PoolSource`) for ``mine``.

    With probability columns the pool's features are not read and L is
    optional; otherwise the features are ``feature_cols``, the columns named
    ``feature_prefix*``, or L's numeric columns other than the id and label
    (:func:`activemine.data.tables.choose_features`), and U must have them all.
    Images (a folder, or ``images.column`` of a table) are the features
    instead: L's are decoded, U's listed and checked
    (:meth:`~activemine.data.sources.PoolSource.check_images`), all before any fit.
    Returns ``(labeled or None, source, skipped, note)``, ``skipped`` a list of
    ``(what, BadImages)`` for the images left out with ``images.skip_bad``,
    ``note`` a line saying which columns were left out of the features, or None.
    """
    from activemine.data.sources import PoolColumns, open_pool

    images = images or ImageOptions()
    groups = split_columns(proba_cols)
    weak = split_columns(weak_proba_cols)
    if len(weak) > 1:
        raise InputError(f"--weak-proba-cols takes one group of columns, got {len(weak)}")
    use_proba = bool(groups or weak)
    label_col = resolve_label_col(labeled_path, label_col)
    if _is_image_folder(labeled_path) or _is_image_folder(pool_path) or images.column is not None:
        if feature_cols is not None or feature_prefix is not None:
            raise InputError("--feature-cols and --feature-prefix name table columns; images are their own features")
        return _load_image_inputs(
            labeled_path=labeled_path,
            pool_path=pool_path,
            label_col=label_col,
            id_col=id_col,
            groups=groups,
            weak=weak,
            embedding=embedding,
            dedup_col=dedup_col,
            images=images,
            steps=steps,
        )
    labeled_table = None
    if labeled_path is not None:
        labeled_table = read_table(labeled_path)
        require_columns(labeled_table.column_names, [id_col, label_col], where=str(labeled_path))
    elif not use_proba:
        raise InputError(
            "--labeled is required unless the pool brings probabilities (--proba-cols / --weak-proba-cols)"
        )
    features: list[str] = []
    note = None
    if labeled_table is not None and not use_proba:
        choice = choose_features(
            labeled_table.schema,
            reserved=[id_col, label_col, dedup_col, *embedding],
            cols=feature_cols,
            prefix=feature_prefix,
            where=str(labeled_path),
        )
        features, note = choice.features, choice.note()
    elif feature_cols is not None or feature_prefix is not None:
        raise InputError("--feature-cols and --feature-prefix need a labeled set with features, not --proba-cols")
    columns = PoolColumns(
        id=id_col,
        features=tuple(features),
        proba=tuple(tuple(g) for g in groups),
        weak_proba=tuple(weak[0]) if weak else (),
        embedding=tuple(embedding),
        dedup=dedup_col,
    )
    source = open_pool(pool_path, columns)
    labeled = None
    if labeled_table is not None:
        y = labeled_table.column(label_col).to_numpy(zero_copy_only=False)
        ids = labeled_table.column(id_col).to_numpy(zero_copy_only=False)
        Xl = numeric_matrix(labeled_table, features, where=str(labeled_path)) if features else None
        labeled = LabeledSet(Xl, y, ids)
    return labeled, source, [], note


def _load_image_inputs(
    *, labeled_path, pool_path, label_col, id_col, groups, weak, embedding, dedup_col, images, steps
):
    from contextlib import nullcontext

    from activemine.data.sources import PoolColumns, open_pool

    steps = steps or (lambda description, total=None: nullcontext(None))
    use_proba = bool(groups or weak)
    pool_is_folder = _is_image_folder(pool_path)
    if images.column is None and not pool_is_folder and not use_proba:
        raise InputError(
            f"the labeled set {str(labeled_path)!r} is an image folder but the pool {str(pool_path)!r} is not; "
            "give a folder of images, or name the pool's image column with --image-col"
        )
    if pool_is_folder and use_proba:
        raise InputError(
            f"the pool {str(pool_path)!r} is a folder of images; probability columns need a table (Parquet/CSV)"
        )
    if labeled_path is None and not use_proba:
        raise InputError(
            "--labeled is required unless the pool brings probabilities (--proba-cols / --weak-proba-cols)"
        )
    labeled, skipped, spec = None, [], images.spec()
    if labeled_path is not None:
        if not Path(labeled_path).is_dir() and images.column is None:
            raise InputError(
                f"the pool {str(pool_path)!r} is an image folder; the labeled set {str(labeled_path)!r} must be a "
                "folder with one subfolder per class, or a table whose image column --image-col names"
            )
        labeled, spec, bad = read_labeled_images(
            labeled_path, label_col=label_col, id_col=id_col, images=images, labels_only=use_proba, steps=steps
        )
        if len(bad):
            skipped.append(("labeled images", bad))
    image_col = None if use_proba else (images.column or "image")
    columns = PoolColumns(
        id=id_col,
        proba=tuple(tuple(g) for g in groups),
        weak_proba=tuple(weak[0]) if weak else (),
        embedding=tuple(embedding),
        dedup=dedup_col,
        image=image_col,
        image_spec=None if use_proba else replace(spec, root=None),
    )
    source = open_pool(pool_path, columns)
    if source.columns.image is not None:
        with steps(f"checking the pool's images ({source.where})", source.num_rows) as bar:
            bad = source.check_images(skip_bad=images.skip_bad, progress=bar)
        if bad is not None and len(bad):
            skipped.append(("pool images", bad))
    return labeled, source, skipped, None

"""Creating a campaign from L and U, and reading its labeled samples back: features, labels and views.

A sample is shown to people in one of three *views*, chosen at init:

* ``image``: the features are pixels named ``px0..px{n-1}`` with ``n`` a square
  (Fashion-MNIST's 784 give 28x28), rendered as a grayscale PNG;
* ``text``: a string column of the pool (``text_col``) is shown as text;
* ``table``: the first fields of the row are shown as a table.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activemine.campaign.store import INIT_MARKER, CampaignStore
from activemine.data.chunks import LabeledSet
from activemine.data.tables import choose_features, read_table, require_columns, resolve_label_col
from activemine.errors import CampaignError, DuplicateIdError, InputError, SingleClassError
from activemine.selection.batch import check_ids

__all__ = [
    "LabeledRows",
    "PoolRows",
    "current_label_arrays",
    "detect_view",
    "encode_png",
    "init_campaign",
    "labeled_rows",
    "labeled_training_set",
    "pixels_to_png",
]

_PIXEL = re.compile(r"px(\d+)$")
TABLE_VIEW_FIELDS = 30


def detect_view(features: list[str], pool_columns: list[str], text_col: str | None, *, carried=()) -> dict:
    """The view of a campaign's samples: ``{"kind": "image", "shape": [h, w]}``, text or table.

    ``carried``: pool columns that are not features (a name, a note); a table view shows them first."""
    if text_col is not None:
        require_columns(pool_columns, [text_col], where="the pool")
        return {"kind": "text", "column": text_col}
    numbers = [int(m.group(1)) for m in map(_PIXEL.match, features) if m]
    side = math.isqrt(len(features))
    if (
        features
        and len(numbers) == len(features)
        and sorted(numbers) == list(range(len(features)))
        and side * side == len(features)
    ):
        return {"kind": "image", "shape": [side, side], "columns": [f"px{i}" for i in range(len(features))]}
    if "text" in pool_columns and "text" not in features:
        return {"kind": "text", "column": "text"}
    return {"kind": "table", "columns": [*carried, *features][:TABLE_VIEW_FIELDS]}


def _id_kind(ids: np.ndarray) -> str:
    return "int" if ids.dtype.kind == "i" else "str"


def _pool_files(pool: Path) -> list[Path]:
    if pool.is_dir():
        files = sorted(p for p in pool.iterdir() if p.suffix.lower() in (".parquet", ".pq") and p.is_file())
        if not files:
            raise InputError(f"the folder {str(pool)!r} holds no .parquet files")
        return files
    if not pool.is_file():
        raise InputError(f"file not found: {str(pool)!r}")
    if pool.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise InputError(
            f"cannot tell the format of {str(pool)!r}: expected .parquet, .csv or a folder of .parquet files"
        )
    return [pool]


def _schema(path: Path) -> pa.Schema:
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            with pcsv.open_csv(path) as reader:
                return reader.schema
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from exc


def _copy_pool(files: list[Path], dest: Path, *, copy: bool) -> list[str]:
    """The pool's files as the campaign records them: copied (or converted from CSV) file by file,
    or their absolute paths when ``copy`` is off. Never holds more than one CSV block in memory."""
    if not copy and all(f.suffix.lower() != ".csv" for f in files):
        return [str(f.resolve()) for f in files]
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(files):
        target = dest / f"part-{i:05d}.parquet"
        if f.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            with (
                pcsv.open_csv(f, read_options=pcsv.ReadOptions(block_size=1 << 24)) as reader,
                pq.ParquetWriter(target, reader.schema) as writer,
            ):
                for batch in reader:
                    writer.write_batch(batch)
        else:
            shutil.copyfile(f, target)
        out.append(str(target.relative_to(dest.parent.parent)))
    return out


def _require_numeric(schema: pa.Schema, columns, *, where: str, what: str) -> None:
    bad = [
        (c, str(schema.field(c).type))
        for c in columns
        if not (pa.types.is_integer(schema.field(c).type) or pa.types.is_floating(schema.field(c).type))
    ]
    if bad:
        raise InputError(f"{what} columns of {where} must be numeric, got {bad[:5]}")


def _pool_id_columns(files: list[Path], id_col: str):
    """``(file, id column)`` of the pool, a batch at a time."""
    for f in files:
        if f.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(f, convert_options=pcsv.ConvertOptions(include_columns=[id_col]))
        else:
            reader = pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=1 << 18, columns=[id_col])
        for batch in reader:
            yield f, batch.column(0)


def _id_values(col, kind: str) -> np.ndarray:
    from activemine.campaign.pool import arrow_ids

    values = arrow_ids(col, kind).to_numpy(zero_copy_only=False)
    return values if kind == "int" else values.astype(str)


def _check_pool_ids(
    files: list[Path], id_col: str, kind: str, l_ids: np.ndarray, *, progress: Callable[[int], None] | None
) -> int:
    """One pass over the pool's id column: no missing ids, none shared with L, none twice. Returns the row count.

    Uniqueness is checked on 64-bit hashes of the ids (8 bytes a row: 0.8 GB for 10^8 rows); hashes that
    repeat are checked on the ids themselves in a second pass, so a hash collision is never taken for a copy.
    """
    from activemine.campaign.pool import arrow_ids
    from activemine.data.idindex import id_hash

    wanted = pa.array(l_ids.astype(np.int64) if kind == "int" else l_ids.astype(str))
    rows = 0
    hashes = []
    for f, col in _pool_id_columns(files, id_col):
        if col.null_count:
            raise InputError(f"column {id_col!r} of {str(f)!r} has {col.null_count} missing ids")
        if len(wanted):
            both = pc.filter(col, pc.is_in(arrow_ids(col, kind), value_set=wanted))
            if len(both):
                raise InputError(f"ids are both in the pool and in the labeled set, e.g. {both.to_pylist()[:5]}")
        hashes.append(id_hash(_id_values(col, kind)))
        rows += len(col)
        if progress is not None:
            progress(len(col))
    keys = np.sort(np.concatenate(hashes)) if hashes else np.empty(0, np.uint64)
    repeated = np.unique(keys[1:][keys[1:] == keys[:-1]])
    del keys, hashes
    if repeated.size:
        suspects = []
        for _, col in _pool_id_columns(files, id_col):
            values = _id_values(col, kind)
            suspects.append(values[np.isin(id_hash(values), repeated)])
        values, counts = np.unique(np.concatenate(suspects), return_counts=True)
        twice = values[counts > 1]
        if twice.size:
            raise DuplicateIdError(
                f"ids of the pool must be unique: {twice.size} occur more than once (column {id_col!r}), "
                f"e.g. {twice[:5].tolist()}; every round would fail on them. Remove the copies first"
            )
    return rows


def _first_infinite(values: np.ndarray) -> int:
    return int(np.flatnonzero(np.isinf(values))[0])


def _require_finite(table: pa.Table, columns, *, where: str) -> None:
    """No infinite value in the floating-point ``columns`` of ``table`` (NaN marks a missing value)."""
    for c in columns:
        col = table.column(c)
        if pa.types.is_floating(col.type) and pc.any(pc.is_inf(col)).as_py():
            raise InputError(
                f"column {c!r} of {where} holds an infinite value (first at row "
                f"{_first_infinite(col.to_numpy(zero_copy_only=False))}); features and probabilities must be finite"
            )


def _require_finite_pool(files: list[Path], columns) -> None:
    """No infinite value in the floating-point ``columns`` of the pool's Parquet files, read from each row
    group's statistics (min and max) where the file has them; a row group without them is read."""
    if not columns:
        return
    for f in files:
        reader = pq.ParquetFile(f)
        md, schema = reader.metadata, reader.schema_arrow
        at = {md.schema.column(i).path: i for i in range(md.num_columns)}
        floating = [c for c in columns if pa.types.is_floating(schema.field(c).type)]
        first = 0
        for g in range(md.num_row_groups):
            group = md.row_group(g)
            unsure = []
            for c in floating:
                stats = group.column(at[c]).statistics
                if stats is None or not stats.has_min_max:
                    unsure.append(c)
                elif not (np.isfinite(stats.min) and np.isfinite(stats.max)):
                    unsure.append(c)  # read to name the row
            if unsure:
                table = reader.read_row_group(g, columns=unsure)
                for c in unsure:
                    values = table.column(c).to_numpy(zero_copy_only=False)
                    if np.isinf(values).any():
                        raise InputError(
                            f"column {c!r} of the pool file {str(f)!r} holds an infinite value (first at row "
                            f"{first + _first_infinite(values)} of the file); features and probabilities must be finite"
                        )
            first += group.num_rows


def init_campaign(
    folder,
    *,
    pool,
    labeled=None,
    label_col: str | None = None,
    id_col: str = "id",
    text_col: str | None = None,
    classes=None,
    proba_cols=None,
    weak_proba_cols=None,
    copy: bool = True,
    progress: Callable[[int], None] | None = None,
    feature_cols=None,
    feature_prefix: str | None = None,
    image_col: str | None = None,
    image_spec=None,
    skip_bad_images: bool = False,
    skipped: list | None = None,
    embedding_cols: str | None = None,
    embedding_prefix: str | None = None,
    embeddings=None,
) -> CampaignStore:
    """Create a campaign in ``folder`` from the pool ``pool`` and the labeled set ``labeled``.

    ``pool`` is a Parquet file, a folder of Parquet files, or a CSV file; it is
    never read whole: its files are copied into ``folder/data/pool`` as files
    (CSV converted block by block), or with ``copy=False`` their absolute
    paths are recorded. One pass over its id column checks for missing ids and
    ids shared with L (``progress`` gets the rows read).

    A *feature pool* has L's feature columns: ``feature_cols``, the columns
    named ``feature_prefix*``, or L's numeric columns other than the id and the
    label (:func:`activemine.data.tables.choose_features`); the pool's other columns
    (a text, a name) are carried along and shown. A *probability pool* brings the business model's class
    probabilities: ``proba_cols`` (one group ``[p0, p1, ...]``, or one group
    per committee member) and/or ``weak_proba_cols`` (HW's weak model), each
    group in the order of the campaign's classes; L then needs only ids and
    labels, and is optional when ``classes`` is given. ``classes`` fixes the
    class list (default: the labels present in L, sorted).

    An *image pool* is a folder of image files, or a table whose ``image_col``
    holds paths or bytes; L is then a folder with one subfolder per class, or
    a table with ``image_col``. Every image is checked before anything is
    written (:func:`activemine.data.images.check_images`); with
    ``skip_bad_images`` bad ones are left out and ``skipped`` (a list) gets
    ``(what, BadImages)`` pairs. A folder pool is recorded as a table of ids
    (relative paths) and image paths; the images stay where they are.

    Embeddings for batches without copies (:mod:`activemine.campaign.embeddings`):
    ``embedding_cols`` (``e0,e1,...``) or ``embedding_prefix`` name columns of
    the pool, or ``embeddings`` is a file of ids and embedding columns (those
    two then name its columns; default all but the id) joined to the pool by
    id and written into the campaign's pool files (always copied then) as
    ``emb_0 ..``. Every value is checked at init; rounds stream them.
    """
    folder = Path(folder)
    if (folder / "campaign.db").exists():
        raise CampaignError(f"{str(folder)!r} already holds a campaign; choose another folder")
    interrupted = (folder / INIT_MARKER).exists()
    label_col = resolve_label_col(labeled, label_col)
    proba_groups = [list(g) for g in (proba_cols or [])]
    weak = list(weak_proba_cols or [])
    image = None
    if image_col is not None or _image_folder(pool) or _image_folder(labeled):
        if proba_groups or weak:
            raise InputError("an image pool brings images, not probability columns; drop --proba-cols")
        image = _image_inputs(
            pool, labeled, id_col, label_col, image_col, image_spec, skip_bad_images, skipped, progress
        )
        files = image["files"]
    else:
        files = _pool_files(Path(pool))
    data = folder / "data"
    if data.exists() and any(data.iterdir()) and not interrupted:
        raise CampaignError(f"{str(data)!r} already exists and is not empty; choose a new campaign folder")
    if labeled is None and (not (proba_groups or weak) or classes is None):
        raise InputError("--labeled is required unless the pool brings probabilities and --classes names the classes")
    if image is not None:
        L = image["labeled"]
    else:
        L = read_table(Path(labeled)) if labeled is not None else None
    if L is not None:
        require_columns(L.column_names, [id_col, label_col], where=str(labeled))
    schemas = [image["schema"]] if image is not None else [_schema(f) for f in files]
    names = schemas[0].names
    emb_names: list[str] = []
    if embeddings is None and (embedding_cols or embedding_prefix):
        from activemine.data.sources import embedding_names

        emb_names = embedding_names(names, cols=embedding_cols, prefix=embedding_prefix, where=str(pool))
    features: list[str] = []
    if (image is not None or proba_groups or weak) and (feature_cols is not None or feature_prefix is not None):
        raise InputError(
            "--feature-cols and --feature-prefix name a feature pool's columns, not images or --proba-cols"
        )
    if image is not None:  # checked by _image_inputs
        needed = [id_col, image["column"]]
    elif proba_groups or weak:
        needed = [id_col, *(c for g in proba_groups for c in g), *weak]
    else:
        features = choose_features(
            L.schema,
            reserved=[id_col, label_col, *emb_names],
            cols=feature_cols,
            prefix=feature_prefix,
            where=str(labeled),
        ).features
        needed = [id_col, *features]
    for f, schema in zip(files, schemas) if image is None else ():
        require_columns(schema.names, needed, where=str(f))
        if schema.field(id_col).type != schemas[0].field(id_col).type:
            raise InputError(
                f"pool files disagree on the type of {id_col!r}: {schemas[0].field(id_col).type} and "
                f"{schema.field(id_col).type} ({str(f)!r})"
            )
        _require_numeric(schema, needed[1:], where=str(f), what="probability" if (proba_groups or weak) else "feature")
    checked_columns = needed[1:] if image is None else []
    from activemine.campaign.pool import id_kind_of_type

    kind = id_kind_of_type(schemas[0].field(id_col).type, where=f"{pool} column {id_col!r}")
    emb_file = None
    if embeddings is not None:
        from activemine.campaign.embeddings import EmbeddingFile

        emb_file = EmbeddingFile(embeddings, id_col=id_col, kind=kind, cols=embedding_cols, prefix=embedding_prefix)
        emb_names = emb_file.columns
    if L is not None:
        l_ids = check_ids(L.column(id_col).to_numpy(zero_copy_only=False), name=f"{labeled} column {id_col!r}")
        if _id_kind(l_ids) != kind:
            raise InputError(
                f"ids of {pool} are {'integers' if kind == 'int' else 'strings'} but ids of {labeled} are "
                f"{l_ids.dtype}; they must be of one kind"
            )
        y = np.asarray(L.column(label_col).to_pylist(), dtype=object)
        if any(v is None for v in y):
            raise InputError(f"column {label_col!r} of {labeled} has missing labels")
    else:
        l_ids, y = np.empty(0, dtype=np.int64 if kind == "int" else "<U1"), np.empty(0, dtype=object)
    found = sorted(set(y.tolist()))
    class_list = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(class_list), key=str)
    if unknown:
        raise InputError(f"labels {unknown[:10]} of {labeled} are not among the given classes {class_list}")
    if len(class_list) < 2:
        raise SingleClassError(f"a campaign needs at least two classes, got {class_list}")
    if L is not None and (features or image is not None) and len(found) < 2:
        raise SingleClassError(
            f"{labeled} holds labels of one class only ({found}); a model trained on it cannot tell the classes "
            f"apart, so no round could be mined (not even with --strategy random). Add labeled samples of at least "
            f"one other class of {class_list}"
        )
    if L is not None and features:
        _require_finite(L, features, where=str(labeled))
    if len({str(c) for c in class_list}) != len(class_list):
        raise InputError(f"classes {class_list} are not distinct as text")
    for group in [*proba_groups, *([weak] if weak else [])]:
        if len(group) != len(class_list):
            raise InputError(
                f"probability columns {group} are {len(group)} but the campaign has "
                f"{len(class_list)} classes {class_list}; give one column per class, in that order"
            )
    # a probability pool is shown by its other columns (pixels, a text, fields), if it has any
    shown = features or [c for c in names if c not in needed and c not in emb_names]
    if image is not None:
        view = {"kind": "image_file", "column": image["column"], "columns": [image["column"]]}
        _check_listed_ids(image["ids"], l_ids)
    else:
        carried = [c for c in names if c not in needed and c not in shown]
        view = detect_view(shown, names, text_col, carried=carried)
        _check_pool_ids(files, id_col, kind, l_ids, progress=progress)
    manifest = image["manifest"] if image is not None else None
    _check_embeddings(files, manifest, id_col, kind, emb_file, emb_names, progress=progress)
    # the marker says "an init began here": a killed init (SIGKILL runs no cleanup) is started over by the
    # next one, and the store's absence is explained; the store, renamed into place last, is the commit point
    folder.mkdir(parents=True, exist_ok=True)
    (folder / INIT_MARKER).touch()
    shutil.rmtree(data, ignore_errors=True)  # empty, or what a killed init left (the marker says so)
    data.mkdir(parents=True)
    try:
        if manifest is not None:
            (data / "pool").mkdir(parents=True, exist_ok=True)
            if emb_file is not None:
                manifest = emb_file.attach(manifest, id_col, kind)
            pq.write_table(manifest, data / "pool" / "part-00000.parquet")
            pool_files = [str(Path("data") / "pool" / "part-00000.parquet")]
        elif emb_file is not None:
            pool_files = _copy_pool_joined(files, data / "pool", emb_file, id_col, kind)
        else:
            pool_files = _copy_pool(files, data / "pool", copy=copy)
            # after the copy: a CSV pool is Parquet by now, with statistics per row group
            _require_finite_pool(
                [folder / f if not Path(f).is_absolute() else Path(f) for f in pool_files], checked_columns
            )
        if L is not None:
            pq.write_table(L, data / "labeled.parquet")
        meta = {
            "id_col": id_col,
            "label_col": label_col,
            "id_kind": kind,
            "classes": [c.item() if isinstance(c, np.generic) else c for c in class_list],
            "features": features,
            "proba_cols": proba_groups,
            "weak_proba_cols": weak,
            "pool_files": pool_files,
            "view": view,
        }
        if image is not None:
            meta["image"] = image["meta"]
        if emb_names:
            meta["embedding_cols"] = list(emb_names)
        samples = [(str(s), "labeled", i) for i, s in enumerate(l_ids.tolist())]
        initial = [(str(s), str(v)) for s, v in zip(l_ids.tolist(), y.tolist())]
        store = CampaignStore.create(folder, meta=meta, samples=samples, initial_labels=initial)
    except BaseException:
        if not (folder / "campaign.db").exists():
            shutil.rmtree(data, ignore_errors=True)
            (folder / INIT_MARKER).unlink(missing_ok=True)
        raise
    (folder / INIT_MARKER).unlink(missing_ok=True)
    return store


def _id_batches(files: list[Path], columns: list[str]):
    """The pool's ``columns`` as tables, file by file, a block at a time."""
    for f in files:
        if f.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            with pcsv.open_csv(f, convert_options=pcsv.ConvertOptions(include_columns=columns)) as reader:
                for batch in reader:
                    yield pa.Table.from_batches([batch])
        else:
            for batch in pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=1 << 18, columns=columns):
                yield pa.Table.from_batches([batch])


def _check_embeddings(files, manifest, id_col, kind, emb_file, emb_names, *, progress) -> None:
    """Before anything is written: a joined file covers every pool id; pool columns hold finite numbers."""
    if not emb_names:
        return
    if emb_file is not None:
        tables = [manifest] if manifest is not None else _id_batches(files, [id_col])
        for table in tables:
            emb_file.rows_of(table.column(id_col), kind)
        return
    from activemine.campaign.embeddings import check_embedding_values

    for f in files:
        require_columns(_schema(f).names, emb_names, where=str(f))
    check_embedding_values(_id_batches(files, [id_col, *emb_names]), emb_names, where="the pool", progress=progress)


def _copy_pool_joined(files: list[Path], dest: Path, emb_file, id_col: str, kind: str) -> list[str]:
    """The pool's files copied with the embedding file's columns appended (joined by id), block by block."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(files):
        target = dest / f"part-{i:05d}.parquet"
        writer = None
        try:
            for table in _id_batches([f], _schema(f).names):
                table = emb_file.attach(table, id_col, kind)
                if writer is None:
                    writer = pq.ParquetWriter(target, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
        out.append(str(target.relative_to(dest.parent.parent)))
    return out


def _image_folder(path) -> bool:
    from activemine.data.images import is_image_folder

    return path is not None and Path(path).is_dir() and is_image_folder(path)


def _image_inputs(pool, labeled, id_col, label_col, image_col, spec, skip_bad, skipped, progress) -> dict:
    """Check an image campaign's L and pool without writing anything: L as a table (id, image, label),
    the pool as a manifest table (folder) or its files (a table with ``image_col``), and the image meta."""
    from dataclasses import replace

    from activemine.data.images import ImageSpec, check_images, first_item, list_labeled_images
    from activemine.data.sources import ImageFolderSource, PoolColumns, open_pool

    spec = spec or ImageSpec()
    if labeled is None:
        raise InputError("--labeled is required for an image pool: a folder with one subfolder per class")
    labeled = Path(labeled)
    if labeled.is_dir():
        column = image_col or "image"
        paths, y, classes = list_labeled_images(labeled)
        L = pa.table({id_col: paths, column: paths, label_col: pa.array(np.asarray(classes, dtype=str)[y])})
    else:
        if image_col is None:
            raise InputError(f"name the image column of {str(labeled)!r} (paths or bytes) with --image-col")
        column = image_col
        L = read_table(labeled)
        require_columns(L.column_names, [id_col, label_col, column], where=str(labeled))
    l_root = str((labeled if labeled.is_dir() else labeled.parent).resolve())
    bad = check_images(
        L.column(column), root=l_root, where=str(labeled), n_jobs=spec.n_jobs, skip_bad=skip_bad, progress=progress
    )
    if len(bad):
        keep = np.ones(L.num_rows, dtype=bool)
        keep[bad.rows] = False
        L = L.filter(pa.array(keep))
        if skipped is not None:
            skipped.append(("labeled images", bad))
    spec = replace(spec, root=l_root).resolved(first_item(L.column(column)), where=str(labeled))
    pool_spec = replace(spec, root=None)
    pool = Path(pool)
    if _image_folder(pool):
        source = ImageFolderSource(pool, pool_spec, id_col=id_col, image_col=column)
    else:
        if image_col is None:
            raise InputError(f"name the image column of the pool {str(pool)!r} (paths or bytes) with --image-col")
        source = open_pool(pool, PoolColumns(id=id_col, image=column, image_spec=pool_spec))
    pool_bad = source.check_images(skip_bad=skip_bad, progress=progress)
    if pool_bad is not None and len(pool_bad) and skipped is not None:
        skipped.append(("pool images", pool_bad))
    if isinstance(source, ImageFolderSource):
        manifest = pa.table({id_col: source.paths, column: source.paths})
        ids, files, schema = source.paths, [], manifest.schema
    else:
        if source.skip_ids is not None:
            raise InputError(
                "--skip-bad-images needs a folder of images for a campaign pool; remove the bad rows from "
                f"{str(pool)!r}: {pool_bad.describe('pool images')}"
            )
        manifest, files = None, _pool_files(pool)
        schema = _schema(files[0])
        ids = pa.chunked_array([t.column(id_col) for t in source.tables(1 << 18)])
    meta = {
        "column": column,
        "root": str(Path(source.columns.image_spec.root).resolve()),
        "labeled_root": l_root,
        "size": list(spec.size),
        "mode": spec.mode,
    }
    return {
        "labeled": L,
        "files": files,
        "manifest": manifest,
        "schema": schema,
        "ids": ids,
        "column": column,
        "meta": meta,
    }


def _check_listed_ids(pool_ids, l_ids: np.ndarray) -> None:
    """No id both in the pool (an Arrow array) and in L."""
    if not len(l_ids):
        return
    kind = "int" if l_ids.dtype.kind == "i" else "str"
    from activemine.campaign.pool import arrow_ids

    col = arrow_ids(pool_ids, kind)
    both = pc.filter(
        col, pc.is_in(col, value_set=pa.array(l_ids.astype(np.int64) if kind == "int" else l_ids.astype(str)))
    )
    if len(both):
        raise InputError(f"ids are both in the pool and in the labeled set, e.g. {both.to_pylist()[:5]}")


def _feature_matrix(table: pa.Table, features: list[str]) -> np.ndarray:
    out = np.empty((table.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        out[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    return out


class LabeledRows:
    """The campaign's initial labeled set L in memory (L is the small side): ids and, for feature pools, features."""

    def __init__(self, store: CampaignStore, *, features: bool = True):
        meta = store.meta
        path = store.data_path("labeled")
        self.table = pq.read_table(path) if path.is_file() else None
        sids = [] if self.table is None else [str(s) for s in self.table.column(meta["id_col"]).to_pylist()]
        self.sids = np.asarray(sids, dtype=str) if sids else np.empty(0, dtype="<U1")
        self.ids = store.typed_id_array(self.sids)
        want = features and meta["features"] and not (meta.get("proba_cols") or meta.get("weak_proba_cols"))
        self.X = _feature_matrix(self.table, meta["features"]) if want and self.table is not None else None
        self.image_shape = None
        from activemine.campaign.pool import image_spec_of

        spec = image_spec_of(meta, labeled=True)
        if features and spec is not None and self.table is not None:
            from activemine.data.images import decode_images

            self.X = decode_images(self.table.column(meta["image"]["column"]), spec, where="the labeled images")
            self.image_shape = spec.shape


def current_label_arrays(store: CampaignStore, *, conn=None) -> tuple[np.ndarray, np.ndarray]:
    """Every labeled, unflagged id and its label, as sorted-by-id string arrays ``(n,)`` each."""
    current = store.current_labels(conn=conn)
    if not current:
        return np.empty(0, dtype="<U1"), np.empty(0, dtype="<U1")
    sids = np.asarray(list(current.keys()), dtype=str)
    labels = np.asarray(list(current.values()), dtype=str)
    if sids.size > 1 and not (sids[1:] > sids[:-1]).all():  # the store returns them sorted; make sure
        order = np.argsort(sids, kind="stable")
        sids, labels = sids[order], labels[order]
    return sids, labels


def labeled_training_set(
    store: CampaignStore, sids: np.ndarray, labels: np.ndarray, *, progress: Callable[[int], None] | None = None
) -> LabeledSet:
    """The labeled set a round trains on: ``sids`` ``(n,)`` with ``labels`` ``(n,)`` (stored text).

    For a feature pool, L's features plus those of the labeled pool samples,
    found in one pass over the pool; for a probability pool, labels and ids only.
    """
    from activemine.campaign.pool import CampaignPool, image_spec_of

    L = LabeledRows(store)
    y_all = store.typed_labels(labels.tolist())
    in_l = np.isin(sids, L.sids)
    if L.X is None and not CampaignPool(store).has_features:
        return LabeledSet(None, y_all, store.typed_id_array(sids))
    l_pos = {s: i for i, s in enumerate(L.sids.tolist())}
    l_rows = np.fromiter((l_pos[s] for s in sids[in_l].tolist()), dtype=np.int64, count=int(in_l.sum()))
    X_parts, y_parts, id_parts = [L.X[l_rows]], [y_all[in_l]], [L.ids[l_rows]]
    pool_sids = sids[~in_l]
    if pool_sids.size:
        pool = CampaignPool(store)
        spec = image_spec_of(store.meta)
        names = [store.meta["image"]["column"]] if spec is not None else pool.features
        _, table = pool.locate(pool_sids, names, progress=progress)
        found = np.asarray(table.column(pool.id_col).to_numpy(zero_copy_only=False)).astype(str)
        order = np.argsort(pool_sids)
        pos = order[np.searchsorted(pool_sids, found, sorter=order)]
        if spec is not None:
            from activemine.data.images import decode_images

            X_parts.append(decode_images(table.column(names[0]), spec, where="the labeled pool images"))
        else:
            X_parts.append(_feature_matrix(table, pool.features))
        y_parts.append(y_all[~in_l][pos])
        id_parts.append(store.typed_id_array(found))
    return LabeledSet(
        np.concatenate(X_parts), np.concatenate(y_parts), np.concatenate(id_parts), image_shape=L.image_shape
    )


def encode_png(gray: np.ndarray) -> bytes:
    """A grayscale ``(h, w)`` uint8 image as PNG bytes (no imaging library needed)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))  # filter type 0 per scanline

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pixels_to_png(pixels, shape, *, scale: int = 1) -> bytes:
    """Pixel values (0..1 or 0..255) as a PNG of ``shape``, each pixel repeated ``scale`` times per side."""
    arr = np.asarray(pixels, dtype=np.float64).reshape(shape)
    if arr.size and np.nanmax(arr) <= 1.0:
        arr = arr * 255.0
    gray = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if scale > 1:
        gray = np.repeat(np.repeat(gray, scale, axis=0), scale, axis=1)
    return encode_png(np.ascontiguousarray(gray))


class PoolRows:
    """A campaign's whole pool (``"pool"``, read from its files) or L (``"labeled"``) in memory.

    Only for steps that need every row's features at once on campaigns that
    fit in memory (``campaign forecast``'s learning curve); rounds, imports,
    exports, the dataset and the labeling page stream the pool instead.
    """

    def __init__(self, store: CampaignStore, origin: str = "pool", *, features: bool = True):
        meta = store.meta
        if origin == "pool":
            self.table = pa.concat_tables([pq.ParquetFile(f).read() for f in store.pool_files()])
        else:
            self.table = pq.read_table(store.data_path("labeled"))
        self.sids = [str(s) for s in self.table.column(meta["id_col"]).to_pylist()]
        self.ids = store.typed_id_array(self.sids)
        self.X = _feature_matrix(self.table, meta["features"]) if features and meta["features"] else None


def labeled_rows(store: CampaignStore, pool: PoolRows, labeled: PoolRows, current: dict | None = None):
    """Row indices into L ``(a,)`` and into U ``(b,)`` of every labeled, unflagged sample, and their typed labels ``(a + b,)``.

    ``current`` (sid -> label text) replaces the store's unflagged labels, e.g. with consensus labels.
    """
    current = store.current_labels() if current is None else current
    rows: dict[str, list] = {"pool": [], "labeled": []}
    labels: dict[str, list] = {"pool": [], "labeled": []}
    for origin, table in (("labeled", labeled), ("pool", pool)):
        for i, sid in enumerate(table.sids):
            if sid in current:
                rows[origin].append(i)
                labels[origin].append(store.typed_label(current[sid]))
    as_index = lambda r: np.asarray(r, dtype=np.int64)  # noqa: E731
    return as_index(rows["labeled"]), as_index(rows["pool"]), np.asarray(labels["labeled"] + labels["pool"])

"""An experiment's task: a built-in dataset, a user's table or a folder of images, split and recast as classes.

:func:`load_task` returns a :class:`Task` whose labels are class indices
``0..k-1``; ``binary:POS`` makes index 1 the positive class and index 0 the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from activemine.data.datasets import DATASETS, Dataset, load_dataset
from activemine.errors import InputError

__all__ = ["SPLIT_VALUES", "Task", "load_task"]


@dataclass(frozen=True)
class Task:
    """A dataset recast for the task: labels are class indices ``0..k-1`` into ``class_names``.

    For ``binary:POS`` index 1 is the positive class and index 0 the rest.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int] | None = None  # (C, H, W) when each row is an image
    embedding_train: np.ndarray | None = None  # (n_train, e): the file's own embeddings of the train rows

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2


SPLIT_VALUES = ("train", "test")


def _read_user_dataset(
    path: Path,
    label_col: str | None,
    test_fraction: float,
    *,
    split_col: str | None = None,
    feature_cols: Sequence[str] | None = None,
    embedding_cols: Sequence[str] | None = None,
    embedding_prefix: str | None = None,
    feature_prefix: str | None = None,
) -> Dataset:
    """A user's file as a :class:`Dataset`.

    The split is the file's own ``split_col`` (values ``train``/``test``) when
    given, else a seeded stratified split with ``test_fraction`` of each class
    in the test set (seed 0, the same for every run). Features are
    ``feature_cols``, the columns named ``feature_prefix*``, or every numeric
    column but ``id``, the label and the split
    (:func:`activemine.data.tables.choose_features`). ``embedding_cols`` (or every column
    starting with ``embedding_prefix``) are the file's own embeddings: not
    features, kept for the train rows (near-duplicate suppression and cluster
    diversity use them instead of a PCA of the features).
    """
    import pyarrow as pa

    from activemine.data.tables import choose_features, label_column, numeric_matrix, read_table, require_columns

    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
    table = read_table(path)
    where = str(path)
    label_col = label_column(table.column_names, label_col, where=where)  # None: "label" (or the old "y")
    reserved = [label_col] + ([split_col] if split_col else [])
    require_columns(table.column_names, reserved, where=where)
    emb_names: list[str] = []
    if embedding_cols or embedding_prefix:
        from activemine.data.sources import embedding_names

        cols = ",".join(embedding_cols) if embedding_cols else None
        emb_names = embedding_names(table.column_names, cols=cols, prefix=embedding_prefix, where=where)
        reserved = reserved + emb_names
    features = choose_features(
        table.schema, reserved=[*reserved, "id"], cols=feature_cols, prefix=feature_prefix, where=where
    ).features
    X = numeric_matrix(table, features, where=where, dtype=np.float32)
    raw = np.asarray(table.column(label_col).to_pylist(), dtype=object)
    if any(v is None for v in raw):
        raise InputError(f"column {label_col!r} of {path} has missing labels")
    names, y = np.unique(raw.astype(str), return_inverse=True)
    if split_col:
        split = np.asarray(table.column(split_col).to_pylist(), dtype=object)
        bad = sorted({repr(v) for v in split if v not in SPLIT_VALUES})
        if bad:
            raise InputError(f"column {split_col!r} of {where} must hold only {list(SPLIT_VALUES)}, got {bad[:10]}")
        tr, te = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
        if not tr.size or not te.size:
            raise InputError(
                f"column {split_col!r} of {where} needs both train and test rows, got {tr.size} and {te.size}"
            )
    else:
        tr, te = _seeded_split(y, names.size, test_fraction)
    E = None
    if emb_names:
        from activemine.data.sources import embedding_matrix

        E = embedding_matrix(table.take(pa.array(tr)), tuple(emb_names), where=f"the train rows of {where}")
    return Dataset(path.name, X[tr], y[tr], X[te], y[te], tuple(names.tolist()), embedding_train=E)


def _seeded_split(y: np.ndarray, n_classes: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Train and test rows: a user's data has no official split, so a seeded stratified one, the same every run."""
    rng = np.random.default_rng(0)
    test = []
    for c in range(n_classes):
        rows = rng.permutation(np.flatnonzero(y == c))
        test.append(rows[: int(round(test_fraction * rows.size))])
    is_test = np.zeros(y.size, dtype=bool)
    is_test[np.concatenate(test)] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def _read_image_dataset(
    path: Path, test_fraction: float, *, image_size=None, image_mode=None, skip_bad: bool = False, n_jobs=None
) -> Dataset:
    """A folder of images as a :class:`Dataset`: ``train/`` and ``test/`` subfolders, each with one
    subfolder per class, or one subfolder per class split as :func:`_seeded_split` does."""
    from activemine.data.images import ImageSpec, parse_image_size, read_labeled_folder
    from activemine.models import check_n_jobs

    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
    spec = ImageSpec(parse_image_size(image_size), image_mode, None, check_n_jobs(n_jobs))
    if {p.name for p in path.iterdir() if p.is_dir()} == set(SPLIT_VALUES):
        train, spec, _ = read_labeled_folder(path / "train", spec, skip_bad=skip_bad)
        test, _, _ = read_labeled_folder(path / "test", replace(spec, root=None), skip_bad=skip_bad)
        names = np.unique(train.y)
        unknown = sorted(set(np.unique(test.y).tolist()) - set(names.tolist()))
        if unknown:
            raise InputError(f"class folders {unknown} of {str(path / 'test')!r} are not in {str(path / 'train')!r}")
        y_tr, y_te = np.searchsorted(names, train.y), np.searchsorted(names, test.y)
        return Dataset(path.name, train.X, y_tr, test.X, y_te, tuple(names.tolist()), spec.shape)
    labeled, spec, _ = read_labeled_folder(path, spec, skip_bad=skip_bad)
    names, y = np.unique(labeled.y, return_inverse=True)
    tr, te = _seeded_split(y, names.size, test_fraction)
    X = labeled.X
    return Dataset(path.name, X[tr], y[tr], X[te], y[te], tuple(names.tolist()), spec.shape)


def load_task(
    dataset: str,
    task: str,
    *,
    label_col: str | None = None,
    test_fraction: float = 0.25,
    split_col: str | None = None,
    feature_cols: Sequence[str] | None = None,
    images: dict | None = None,
    embedding_cols: Sequence[str] | None = None,
    embedding_prefix: str | None = None,
    feature_prefix: str | None = None,
) -> Task:
    """Load a built-in dataset, a Parquet/CSV file or a folder of images and recast it for ``task``.

    ``task`` is ``"multiclass"`` or ``"binary:POS"``, POS a class name or
    (built-in datasets) a class index such as ``6``. ``split_col`` and
    ``feature_cols``/``feature_prefix`` apply to files (see :func:`_read_user_dataset`);
    ``images`` (``image_size``, ``image_mode``, ``skip_bad``, ``n_jobs``) to
    image folders (see :func:`_read_image_dataset`); ``embedding_cols`` and
    ``embedding_prefix`` to files.
    """
    is_file = Path(dataset).suffix.lower() in (".parquet", ".pq", ".csv")
    if (embedding_cols or embedding_prefix) and not is_file:
        raise InputError(f"--embedding-cols and --embedding-prefix apply to a .parquet/.csv file, not {dataset!r}")
    if dataset in DATASETS:
        if split_col or feature_cols or feature_prefix:
            raise InputError(
                f"--split-col, --feature-cols and --feature-prefix apply to a user's file, not the built-in {dataset!r}"
            )
        ds = load_dataset(dataset)
    elif is_file:
        ds = _read_user_dataset(
            Path(dataset),
            label_col,
            test_fraction,
            split_col=split_col,
            feature_cols=feature_cols,
            feature_prefix=feature_prefix,
            embedding_cols=embedding_cols,
            embedding_prefix=embedding_prefix,
        )
    elif Path(dataset).is_dir():
        ds = _read_image_dataset(Path(dataset), test_fraction, **(images or {}))
    else:
        raise InputError(
            f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}, a .parquet/.csv file or a folder of "
            "images (one subfolder per class)"
        )
    names = list(ds.class_names)
    shape = ds.image_shape
    if task == "multiclass":
        return Task(ds.X_train, ds.y_train, ds.X_test, ds.y_test, tuple(names), shape, ds.embedding_train)
    if not task.startswith("binary:") or not task[7:]:
        raise InputError(f"task must be 'multiclass' or 'binary:POS', got {task!r}")
    pos = task[7:]
    if pos in names:
        index = names.index(pos)
    elif pos.isdigit() and int(pos) < len(names) and dataset in DATASETS:
        index = int(pos)
    else:
        raise InputError(f"positive class {pos!r} is not a class of {dataset}; classes are {names}")
    binary = lambda y: (y == index).astype(np.int64)  # noqa: E731
    return Task(
        ds.X_train,
        binary(ds.y_train),
        ds.X_test,
        binary(ds.y_test),
        (f"not {names[index]}", names[index]),
        shape,
        ds.embedding_train,
    )

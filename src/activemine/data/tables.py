"""Reading and writing tables (Parquet or CSV, chosen by file suffix), atomically."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from activemine.data.files import atomic_path
from activemine.errors import ActivemineDeprecationWarning, InputError, MissingColumnError
from activemine.selection.batch import Batch

__all__ = [
    "DEFAULT_LABEL_COL",
    "FeatureChoice",
    "batch_column_names",
    "batch_to_table",
    "choose_features",
    "is_numeric_type",
    "label_column",
    "numeric_matrix",
    "read_table",
    "require_columns",
    "resolve_label_col",
    "table_columns",
    "table_format",
    "write_table",
]

#: the label column every command reads by default (``mine``, ``clean``, ``experiment``, ``campaign init``)
DEFAULT_LABEL_COL = "label"
#: the earlier default of ``mine``, ``clean`` and ``campaign``: still read, with a warning, from a table
#: that has it and no ``label`` column
OLD_LABEL_COL = "y"

_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


def table_format(path) -> str:
    """``"parquet"`` or ``"csv"`` from the file suffix; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise InputError(f"cannot tell the format of {str(path)!r}: expected a .parquet, .pq or .csv file")
    return _FORMATS[suffix]


def read_table(path, *, columns: Sequence[str] | None = None) -> pa.Table:
    """Read a Parquet or CSV file, optionally only ``columns`` (each must exist)."""
    path = Path(path)
    fmt = table_format(path)
    if not path.exists():
        raise InputError(f"file not found: {str(path)!r}")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            if columns is not None:
                require_columns(names, columns, where=str(path))
            return pq.read_table(path, columns=list(columns) if columns is not None else None)
        import pyarrow.csv as pcsv

        table = pcsv.read_csv(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r} as {fmt}: {exc}") from exc
    if columns is not None:
        require_columns(table.column_names, columns, where=str(path))
        table = table.select(list(columns))
    return table


def require_columns(present: Sequence[str], needed: Sequence[str], *, where: str) -> None:
    """Raise :class:`MissingColumnError` naming every column of ``needed`` not in ``present``, and all of ``present``."""
    missing = [c for c in needed if c not in present]
    if missing:
        present = list(present)
        raise MissingColumnError(f"{where} has no column(s) {missing}; its {len(present)} columns are {present}")


def label_column(present: Sequence[str], given: str | None = None, *, where: str) -> str:
    """The label column of a table with columns ``present``: ``given``, else :data:`DEFAULT_LABEL_COL`.

    A table with no ``label`` column but a ``y`` (the earlier default) is read by
    ``y`` with an :class:`~activemine.errors.ActivemineDeprecationWarning`.
    The caller checks that the column is there (:func:`require_columns`).
    """
    if given is not None:
        return given
    if DEFAULT_LABEL_COL in present or OLD_LABEL_COL not in present:
        return DEFAULT_LABEL_COL
    warnings.warn(
        f"{where} has no column {DEFAULT_LABEL_COL!r} (the default label column) but has {OLD_LABEL_COL!r}, the "
        f"old default, so {OLD_LABEL_COL!r} is read; pass --label-col {OLD_LABEL_COL} or rename the column: "
        "a later version reads only the given or default column",
        ActivemineDeprecationWarning,
        stacklevel=2,
    )
    return OLD_LABEL_COL


def table_columns(path) -> list[str]:
    """The column names of a Parquet or CSV file, from its schema (no data read)."""
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(f"file not found: {str(path)!r}")
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        import pyarrow.csv as pcsv

        with pcsv.open_csv(path) as reader:
            return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r} as {fmt}: {exc}") from exc


def resolve_label_col(labeled, given: str | None) -> str:
    """The label column of the labeled set at ``labeled`` (a table file; a folder or None: the default)."""
    if given is not None or labeled is None or Path(labeled).is_dir():
        return given or DEFAULT_LABEL_COL
    return label_column(table_columns(labeled), given, where=str(labeled))


def is_numeric_type(t: pa.DataType) -> bool:
    """Whether an Arrow column type can be a feature: integers, floats or booleans."""
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


@dataclass(frozen=True)
class FeatureChoice:
    """The feature columns of a table, its other columns (carried along, not features), and those of
    them the default rule left out because they are not numeric."""

    features: list[str]
    carried: list[str]
    not_numeric: list[str]

    def note(self) -> str | None:
        """A line for the user when the default rule left columns out of the features."""
        if not self.not_numeric:
            return None
        return (
            f"not numeric, so not features (carried along): {self.not_numeric}; "
            "name the features with --feature-cols or --feature-prefix"
        )


def choose_features(
    schema: pa.Schema,
    *,
    reserved: Sequence[str | None],
    cols: Sequence[str] | None = None,
    prefix: str | None = None,
    where: str,
) -> FeatureChoice:
    """The feature columns of a table with ``schema`` (the one rule of every command that reads features).

    ``cols`` names them, or ``prefix`` takes every column whose name starts with it; without either,
    every numeric column but the ``reserved`` ones (id, label, split...) is a feature and the other
    non-numeric columns are carried along (shown, exported), not refused. Named features must exist
    and be numeric.
    """
    names = list(schema.names)
    reserved = [r for r in reserved if r]
    if cols is not None and prefix is not None:
        raise InputError("give --feature-cols or --feature-prefix, not both")
    if cols is not None:
        features = [c.strip() for c in cols if c.strip()] if not isinstance(cols, str) else None
        if features is None:
            features = [c.strip() for c in cols.split(",") if c.strip()]
        if not features:
            raise InputError(f"--feature-cols names no column; {where} has columns {names}")
        require_columns(names, features, where=where)
        if len(set(features)) != len(features):
            raise InputError(f"--feature-cols names a column twice: {features}")
    elif prefix is not None:
        features = [c for c in names if c.startswith(prefix) and c not in reserved]
        if not features:
            raise InputError(f"no column of {where} starts with --feature-prefix {prefix!r}; it has columns {names}")
    else:
        others = [c for c in names if c not in reserved]
        features = [c for c in others if is_numeric_type(schema.field(c).type)]
        if not features:
            raise InputError(
                f"{where} has no numeric feature columns besides {reserved}; it has columns "
                f"{[(c, str(schema.field(c).type)) for c in names]}"
            )
        carried = [c for c in others if c not in features]
        return FeatureChoice(features, carried, carried)
    clash = [c for c in features if c in reserved]
    if clash:
        raise InputError(f"feature columns {clash} of {where} are also its id, label or split column")
    bad = [(c, str(schema.field(c).type)) for c in features if not is_numeric_type(schema.field(c).type)]
    if bad:
        raise InputError(f"feature columns of {where} must be numeric, got {bad}")
    return FeatureChoice(features, [c for c in names if c not in features and c not in reserved], [])


def numeric_matrix(
    table: pa.Table | pa.RecordBatch, columns: Sequence[str], *, where: str, dtype=np.float64, nulls: str = "error"
) -> np.ndarray:
    """The given columns as an ``(n, len(columns))`` array of ``dtype``; non-numeric columns are an error.

    ``nulls="error"`` rejects missing values; ``"nan"`` reads them as NaN (features of a
    model that takes missing values; :mod:`activemine.engines.base` applies that policy).
    """
    require_columns(table.column_names, columns, where=where)
    # columns go into the rows of a (k, n) array (contiguous copies), which is then transposed a
    # block of rows at a time: writing each column straight into a (n, k) array is k strided passes
    by_column = np.empty((len(columns), table.num_rows), dtype=dtype)
    for j, name in enumerate(columns):
        col = table.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
            raise InputError(f"column {name!r} of {where} must be numeric, got {col.type}")
        if col.null_count and nulls != "nan":
            raise InputError(f"column {name!r} of {where} has {col.null_count} missing values")
        if col.null_count:
            col = col.cast(pa.float64())  # nulls become NaN below
        by_column[j] = col.to_numpy(zero_copy_only=False)
    if len(columns) == 1:
        return by_column.reshape(table.num_rows, 1)
    out = np.empty((table.num_rows, len(columns)), dtype=dtype)
    for start in range(0, table.num_rows, 4096):
        out[start : start + 4096] = by_column[:, start : start + 4096].T
    return out


def write_table(table: pa.Table, path) -> None:
    """Write ``table`` to ``path`` atomically (:func:`activemine.data.files.atomic_path`), with the mode of a new file."""
    path = Path(path)
    fmt = table_format(path)
    with atomic_path(path) as tmp:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, tmp)


#: The columns of a batch table besides its id (:func:`batch_to_table`).
BATCH_COLUMNS = ("score", "predicted_class", "stratum", "strategy")


def batch_column_names(id_col: str = "id") -> list[str]:
    """The column names :func:`batch_to_table` writes, id first."""
    return [id_col if id_col not in BATCH_COLUMNS else "id", *BATCH_COLUMNS]


def batch_to_table(batch: Batch, strategy: str, *, id_col: str = "id") -> pa.Table:
    """The batch as a table with columns ``id, score, predicted_class, stratum, strategy``; the id column is
    named ``id_col`` (the pool's, so the batch reads like the pool) unless that is one of the other names.

    Built with Arrow takes from the few distinct values (classes, strata), so a
    batch of millions of rows costs no Python object per row.
    """
    n = len(batch)
    classes = pa.array(list(batch.classes)) if batch.classes else None
    predicted = pa.array(np.asarray(batch.predicted, dtype=np.int64))
    strata, codes = batch.stratum_codes()
    id_col = batch_column_names(id_col)[0]
    return pa.table(
        {
            id_col: pa.array(batch.ids),
            "score": pa.array(np.asarray(batch.scores, dtype=np.float64)),
            "predicted_class": classes.take(predicted) if classes is not None else predicted,
            "stratum": pa.array(strata, type=pa.string()).take(pa.array(codes)),
            "strategy": pa.array([strategy], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int32))),
        }
    )

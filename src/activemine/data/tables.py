"""Reading and writing tables (Parquet or CSV, chosen by file suffix), atomically."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from activemine.errors import InputError, MissingColumnError
from activemine.selection.batch import Batch

__all__ = ["batch_to_table", "numeric_matrix", "read_table", "require_columns", "table_format", "write_table"]

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
    """Raise :class:`MissingColumnError` naming every column of ``needed`` not in ``present``."""
    missing = [c for c in needed if c not in present]
    if missing:
        raise MissingColumnError(f"{where} has no column(s) {missing}; it has {list(present)[:20]}")


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
    """Write ``table`` to ``path`` atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table, tmp)
        else:
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def batch_to_table(batch: Batch, strategy: str) -> pa.Table:
    """The batch as a table with columns ``id, score, predicted_class, stratum, strategy``.

    Built with Arrow takes from the few distinct values (classes, strata), so a
    batch of millions of rows costs no Python object per row.
    """
    n = len(batch)
    classes = pa.array(list(batch.classes)) if batch.classes else None
    predicted = pa.array(np.asarray(batch.predicted, dtype=np.int64))
    strata, codes = batch.stratum_codes()
    return pa.table(
        {
            "id": pa.array(batch.ids),
            "score": pa.array(np.asarray(batch.scores, dtype=np.float64)),
            "predicted_class": classes.take(predicted) if classes is not None else predicted,
            "stratum": pa.array(strata, type=pa.string()).take(pa.array(codes)),
            "strategy": pa.array([strategy], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int32))),
        }
    )

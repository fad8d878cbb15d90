"""Pools on disk shared by the engine tests."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_weak_proba_parts(folder, ids: np.ndarray, proba: np.ndarray, *, parts: int, row_group_size: int) -> None:
    """Write ``ids`` ``(n,)`` and weak probabilities ``(n, k)`` as ``parts`` Parquet files with columns id, w0..w{k-1}."""
    for i, rows in enumerate(np.array_split(np.arange(ids.size), parts)):
        columns = {"id": ids[rows], **{f"w{j}": proba[rows, j] for j in range(proba.shape[1])}}
        pq.write_table(pa.table(columns), folder / f"part{i}.parquet", row_group_size=row_group_size)

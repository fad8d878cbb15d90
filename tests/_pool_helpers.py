"""Pools on disk and engine settings shared by the engine tests."""

import contextlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def write_weak_proba_parts(folder, ids: np.ndarray, proba: np.ndarray, *, parts: int, row_group_size: int) -> None:
    """Write ``ids`` ``(n,)`` and weak probabilities ``(n, k)`` as ``parts`` Parquet files with columns id, w0..w{k-1}."""
    for i, rows in enumerate(np.array_split(np.arange(ids.size), parts)):
        columns = {"id": ids[rows], **{f"w{j}": proba[rows, j] for j in range(proba.shape[1])}}
        pq.write_table(pa.table(columns), folder / f"part{i}.parquet", row_group_size=row_group_size)


def write_member_proba_parts(folder, ids: np.ndarray, stack: np.ndarray, *, parts: int, row_group_size: int):
    """Write ``ids`` ``(n,)`` and committee probabilities ``(m, n, k)`` as Parquet parts with columns
    id, m{i}_{j}; returns the column groups, one per member."""
    m, _, k = stack.shape
    groups = tuple(tuple(f"m{i}_{j}" for j in range(k)) for i in range(m))
    for part, rows in enumerate(np.array_split(np.arange(ids.size), parts)):
        columns = {"id": ids[rows]}
        for i, group in enumerate(groups):
            columns.update({name: stack[i, rows, j] for j, name in enumerate(group)})
        pq.write_table(pa.table(columns), folder / f"part{part}.parquet", row_group_size=row_group_size)
    return groups


@contextlib.contextmanager
def eager_pruning():
    """Prune candidate buffers at every chunk, so small pools exercise the reduction."""
    import activemine.engines.candidates as candidates

    old, candidates.PRUNE_SLACK = candidates.PRUNE_SLACK, 0
    try:
        yield
    finally:
        candidates.PRUNE_SLACK = old

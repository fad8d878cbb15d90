"""The Ray engine: Ray Data reads the pool, actors score blocks and reduce them to
candidates, the driver merges the candidates and selects (extra ``activemine[ray]``).

Each block is scored by :meth:`Strategy.score` on an actor (CPU by default,
``num_gpus`` per actor when asked), excluded ids are dropped there, and the
block is cut down to the candidates that could be selected whatever the rest
of the pool holds (:class:`~activemine.engines.candidates.CandidateReducer`
with the block's own counts as lower bounds). The driver feeds the block
outputs to one more reducer, so its memory is about ``budget`` rows. The
batch is the one the local engine gives. Duplicate ids are caught within a
block and among the candidates only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from activemine.data import LabeledSet
from activemine.engines.candidates import CandidateReducer, SelectionPlan
from activemine.engines.local import ExcludedIds, add_scored_rows
from activemine.errors import EmptyPoolError, InputError
from activemine.selection import Batch, check_ids
from activemine.sources import DEFAULT_CHUNK_SIZE, ChunkSource, CsvSource, ParquetSource, PoolColumns, TableSource, chunk_from_table, open_pool
from activemine.strategies import Strategy

__all__ = ["mine_ray"]

# rows of a block's output: candidates (kind 0), per-class counts (kind 1), rows read (kind 2)
_CANDIDATE, _COUNT, _ROWS = 0, 1, 2


class _BlockReducer:
    """Ray actor: score one batch of the pool and return its candidates and counts."""

    def __init__(self, strategy: Strategy, plan: SelectionPlan, columns: PoolColumns, excluded: ExcludedIds):
        self.strategy, self.plan, self.columns, self.excluded = strategy, plan, columns, excluded

    def __call__(self, table: pa.Table) -> pa.Table:
        if "_parquet_path" in table.column_names:
            table = _read_row_groups(table, self.columns.needed)
        chunk = chunk_from_table(table, self.columns)
        ids = check_ids(chunk.ids)
        scores, predicted = self.strategy.score(chunk)
        reducer = CandidateReducer(self.plan)
        add_scored_rows(reducer, ids, scores, predicted, self.excluded)
        cand_ids, cand_scores, cand_pred, counts = reducer.candidates()
        k = counts.size
        filler = np.zeros(k + 1, dtype=ids.dtype) if ids.dtype.kind == "i" else np.full(k + 1, "", dtype=ids.dtype)
        return pa.table({
            "id": np.concatenate([cand_ids.astype(ids.dtype, copy=False), filler]),
            "score": np.concatenate([cand_scores.astype(np.float64), np.zeros(k + 1)]),
            "predicted": np.concatenate([cand_pred, np.arange(k), [0]]).astype(np.int64),
            "kind": np.concatenate([np.full(cand_ids.size, _CANDIDATE), np.full(k, _COUNT), [_ROWS]]).astype(np.int8),
            "n": np.concatenate([np.zeros(cand_ids.size), counts, [ids.size]]).astype(np.int64),
        })  # fmt: skip


def _read_row_groups(pieces: pa.Table, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    paths, groups = pieces.column("_parquet_path").to_pylist(), pieces.column("_row_group").to_pylist()
    return pa.concat_tables([pq.ParquetFile(p).read_row_group(g, columns=columns) for p, g in zip(paths, groups)])


def _dataset(src, ray_data):
    """A Ray Dataset holding the needed columns of the pool (or, for Parquet, the row groups
    that the actors read themselves), and the columns to read."""
    if isinstance(src, ParquetSource):
        import pyarrow.parquet as pq

        # one item per row group, read with column projection on the actor: ray.data.read_parquet
        # fails on its second call in a process when fsspec is installed without aiohttp
        pieces = [{"_parquet_path": f, "_row_group": g} for f in src._dataset.files
                  for g in range(pq.ParquetFile(f).num_row_groups)]  # fmt: skip
        return ray_data.from_items(pieces, override_num_blocks=len(pieces)), src.columns
    if isinstance(src, CsvSource):
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(include_columns=src.columns.needed)
        return ray_data.read_csv(str(src.path), convert_options=convert), src.columns
    if isinstance(src, TableSource):
        return ray_data.from_arrow(pa.concat_tables(src.tables(max(src.num_rows, 1)))), src.columns
    if isinstance(src, ChunkSource):
        pool = src.pool
        cols, spec = {"id": np.asarray(pool.ids)}, {}
        if pool.X is not None:
            spec["features"] = _add_matrix(cols, "x", pool.X)
        if pool.member_proba is not None:
            spec["proba"] = tuple(_add_matrix(cols, f"m{i}_", m) for i, m in enumerate(pool.member_proba))
        elif pool.proba is not None:
            spec["proba"] = (_add_matrix(cols, "p", pool.proba),)
        if pool.weak_proba is not None:
            spec["weak_proba"] = _add_matrix(cols, "w", pool.weak_proba)
        return ray_data.from_arrow(pa.table(cols)), PoolColumns(id="id", **spec)
    raise InputError(f"the ray engine cannot read a pool from {type(src).__name__}")


def _add_matrix(cols: dict, prefix: str, matrix) -> tuple[str, ...]:
    matrix = np.asarray(matrix)
    names = tuple(f"{prefix}{j}" for j in range(matrix.shape[1]))
    cols.update({name: matrix[:, j] for j, name in enumerate(names)})
    return names


def mine_ray(strategy: Strategy, source, *, budget: int, labeled: LabeledSet | None = None, exclude=None,
             columns: PoolColumns | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE, progress=None,
             address: str | None = None, concurrency: int | None = None, num_gpus: float = 0) -> Batch:  # fmt: skip
    """Select ``budget`` rows with Ray; the same batch as :func:`activemine.engines.local.mine_stream`.

    Joins the cluster at ``address`` (``"auto"``, ``"ray://head:10001"``) or
    starts a local Ray when none is running; ``concurrency`` actors (default:
    the cluster's CPUs) score batches of ``chunk_size`` rows, each with
    ``num_gpus`` GPUs when the model can use them.
    """
    import ray
    import ray.data

    src = open_pool(source, columns)
    if src.num_rows == 0:
        raise EmptyPoolError(f"the pool {src.where!r} has no rows")
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    strategy.fit(labeled, n_proba_columns=src.columns.n_proba_columns)
    plan = SelectionPlan.from_strategy(strategy, budget=budget, total_rows=src.num_rows)
    excluded = ExcludedIds(exclude, labeled)
    ds, cols = _dataset(src, ray.data)
    if concurrency is None:
        concurrency = max(1, int(ray.available_resources().get("CPU", 1)))
    out = ds.map_batches(
        _BlockReducer, fn_constructor_kwargs=dict(strategy=strategy, plan=plan, columns=cols, excluded=excluded),
        batch_format="pyarrow", batch_size=1 if isinstance(src, ParquetSource) else chunk_size, compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=1, num_gpus=num_gpus or None,
    )  # fmt: skip
    reducer = CandidateReducer(plan)
    for batch in out.iter_batches(batch_format="numpy", batch_size=None):
        kind, n = batch["kind"], batch["n"]
        cand = kind == _CANDIDATE
        counts = np.bincount(batch["predicted"][kind == _COUNT], weights=n[kind == _COUNT], minlength=plan.n_classes)
        rows = int(n[kind == _ROWS].sum())
        reducer.add(batch["id"][cand], batch["score"][cand], batch["predicted"][cand],
                    counts=counts.astype(np.int64), rows=rows)  # fmt: skip
        if progress is not None and rows:
            progress(rows)
    if reducer.rows_seen == 0:
        raise EmptyPoolError(f"the pool {src.where!r} has no rows")
    ids, scores, predicted, counts = reducer.candidates()
    return strategy.select(ids, scores, predicted, budget=budget, available_counts=counts)

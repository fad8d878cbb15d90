"""The Ray executor: Ray Data reads the pool, actors score blocks and reduce them to
candidates, the driver merges the candidates (extra ``activemine[ray]``).

Each block is scored by :meth:`Strategy.score` on an actor (CPU by default,
``num_gpus`` per actor when asked), excluded ids are dropped there, and the
block is cut down to the candidates that could be selected whatever the rest
of the pool holds (:class:`~activemine.engines.candidates.CandidateReducer`
with the block's own counts as lower bounds). The driver feeds the block
outputs to one more reducer, so its memory is about ``budget`` rows; the
selection is the shared one of :mod:`activemine.engines.base`, so the batch is
the one the local executor gives. Ids may be integers or strings of any Arrow
string type: they cross the cluster as Arrow columns and come back as int64
or numpy ``U`` arrays (:func:`activemine.sources.arrow_ids`), never objects.
Duplicate ids are caught within a block and among the candidates only.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from activemine.data import LabeledSet
from activemine.engines.base import ChunkScorer, MiningRun, prepare_run
from activemine.engines.candidates import CandidateReducer
from activemine.errors import InputError
from activemine.plan import SelectionPlan
from activemine.selection import Batch, check_ids
from activemine.sources import (
    DEFAULT_CHUNK_SIZE, ChunkSource, CsvSource, ParquetSource, PoolColumns, TableSource, arrow_ids, chunk_from_table,
)  # fmt: skip

__all__ = ["RayExecutor", "mine_ray"]

# rows of a block's output: candidates (kind 0), per-class counts (kind 1), rows read (kind 2)
_CANDIDATE, _COUNT, _ROWS = 0, 1, 2


class _BlockReducer:
    """Ray actor: score one batch of the pool and return its candidates and counts."""

    def __init__(self, scorer: ChunkScorer, columns: PoolColumns):
        self.scorer, self.columns = scorer, columns

    def __call__(self, table: pa.Table) -> pa.Table:
        if "_parquet_path" in table.column_names:
            table = _read_row_groups(table, self.columns.needed)
        chunk = chunk_from_table(table, self.columns, where=self.scorer.where)
        ids = check_ids(chunk.ids)
        reducer = CandidateReducer(self.scorer.plan)
        self.scorer.add(reducer, chunk, ids)
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


class RayExecutor:
    """Scores blocks of the pool on Ray actors (see the module docstring).

    Joins the cluster at ``address`` (``"auto"``, ``"ray://head:10001"``) or
    starts a local Ray when none is running; ``concurrency`` actors (default:
    the cluster's CPUs) score batches of ``chunk_size`` rows (Parquet: one row
    group each), each with ``num_gpus`` GPUs when the model can use them.
    """

    def __init__(self, *, address: str | None = None, concurrency: int | None = None, num_gpus: float = 0,
                 chunk_size: int = DEFAULT_CHUNK_SIZE):  # fmt: skip
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
        if concurrency is not None and concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise InputError(f"the ray engine needs the ray extra: pip install 'activemine[ray]' ({exc})") from exc
        self.address, self.concurrency, self.num_gpus, self.chunk_size = address, concurrency, num_gpus, int(chunk_size)

    def reduce(self, run: MiningRun, progress=None) -> CandidateReducer:
        import ray
        import ray.data

        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
        src, plan = run.source, run.plan
        ds, cols = _dataset(src, ray.data)
        concurrency = self.concurrency or max(1, int(ray.available_resources().get("CPU", 1)))
        out = ds.map_batches(
            _BlockReducer, fn_constructor_kwargs=dict(scorer=run.scorer, columns=cols), batch_format="pyarrow",
            batch_size=1 if isinstance(src, ParquetSource) else self.chunk_size,
            compute=ray.data.ActorPoolStrategy(size=concurrency), num_cpus=1, num_gpus=self.num_gpus or None,
        )  # fmt: skip
        reducer = CandidateReducer(plan)
        id_kind = None
        for batch in out.iter_batches(batch_format="pyarrow", batch_size=None):
            kind = batch.column("kind").to_numpy()
            n = batch.column("n").to_numpy()
            predicted = batch.column("predicted").to_numpy()
            cand = kind == _CANDIDATE
            ids = arrow_ids(batch.column("id"), where=f"{src.where} ids")[cand]
            if ids.size:
                if id_kind is not None and ids.dtype.kind != id_kind:
                    raise InputError(f"{src.where} ids must be all integers or all strings; blocks mix both")
                id_kind = ids.dtype.kind
            counts = np.bincount(predicted[kind == _COUNT], weights=n[kind == _COUNT], minlength=plan.n_classes)
            rows = int(n[kind == _ROWS].sum())
            reducer.add(ids, batch.column("score").to_numpy()[cand], predicted[cand],
                        counts=counts.astype(np.int64), rows=rows)  # fmt: skip
            if progress is not None and rows:
                progress(rows)
        return reducer


def mine_ray(strategy, source, *, budget: int | None = None, plan: SelectionPlan | None = None,
             labeled: LabeledSet | None = None, exclude=None, columns: PoolColumns | None = None,
             chunk_size: int = DEFAULT_CHUNK_SIZE, progress=None, address: str | None = None,
             concurrency: int | None = None, num_gpus: float = 0) -> Batch:  # fmt: skip
    """Select with Ray; the same batch as :func:`activemine.engines.local.mine_stream`
    (arguments as there, plus those of :class:`RayExecutor`)."""
    executor = RayExecutor(address=address, concurrency=concurrency, num_gpus=num_gpus, chunk_size=chunk_size)
    run = prepare_run(strategy, source, plan=plan, budget=budget, exclude=exclude, labeled=labeled, columns=columns)
    return run.run(executor, progress)

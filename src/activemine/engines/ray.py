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
or numpy ``U`` arrays (:func:`activemine.data.sources.arrow_ids`), never objects.
Duplicate ids are caught within a block and among the candidates only.

Paths cross the cluster too: a pool's files are resolved to absolute paths on
the driver before they are shipped (a worker's working directory is not the
driver's), and before any model is fitted one task on every node of the
cluster checks that it can read them (:meth:`RayExecutor.check`): a pool on a
disk that some node does not see fails at once, naming the file and the node.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from activemine.data.chunks import LabeledSet
from activemine.data.sources import (
    DEFAULT_CHUNK_SIZE,
    ChunkSource,
    CsvSource,
    ParquetSource,
    PoolColumns,
    TableSource,
    arrow_ids,
    chunk_from_table,
)
from activemine.engines.base import ChunkScorer, MiningRun, prepare_run
from activemine.engines.candidates import CandidateReducer
from activemine.errors import InputError
from activemine.selection.batch import Batch, check_ids
from activemine.selection.plan import SelectionPlan

__all__ = ["RayExecutor", "mine_ray"]

# rows of a block's output: candidates (kind 0), per-class counts (kind 1), rows read (kind 2);
# with diversity options also the block's seeded sample (kind 3, id and embedding) and, per group,
# whether its hard (bit 1) or easy (bit 2) buffer let rows go (kind 4, group in "predicted", bits in "n")
_CANDIDATE, _COUNT, _ROWS, _SAMPLE, _DROPPED = 0, 1, 2, 3, 4


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
        cand_ids, cand_scores, cand_pred, counts, extra = reducer.diverse_candidates()
        k = counts.size
        filler = np.zeros(k + 1, dtype=ids.dtype) if ids.dtype.kind == "i" else np.full(k + 1, "", dtype=ids.dtype)
        cols = {
            "id": np.concatenate([cand_ids.astype(ids.dtype, copy=False), filler]),
            "score": np.concatenate([cand_scores.astype(np.float64), np.zeros(k + 1)]),
            "predicted": np.concatenate([cand_pred, np.arange(k), [0]]).astype(np.int64),
            "kind": np.concatenate([np.full(cand_ids.size, _CANDIDATE), np.full(k, _COUNT), [_ROWS]]).astype(np.int8),
            "n": np.concatenate([np.zeros(cand_ids.size), counts, [ids.size]]).astype(np.int64),
        }
        if reducer.diversity is not None:
            _add_diversity_rows(cols, reducer, extra, ids.dtype)
        return pa.table(cols)


def _add_diversity_rows(cols: dict, reducer: CandidateReducer, extra: dict, id_dtype) -> None:
    """Append a block's sample and drop flags to its output, and the candidates' embeddings and hashes."""
    n_out = cols["id"].size
    n_cand = int((cols["kind"] == _CANDIDATE).sum())
    hard, easy = reducer.dropped_flags()
    g = hard.size
    sample = reducer.sample_rows()
    s_ids, s_emb = sample if sample is not None else (np.empty(0, id_dtype), None)
    m = len(s_ids)
    cols["id"] = np.concatenate(
        [
            cols["id"],
            np.asarray(s_ids).astype(id_dtype, copy=False),
            np.zeros(g, id_dtype) if np.dtype(id_dtype).kind == "i" else np.full(g, "", dtype=id_dtype),
        ]
    )
    cols["score"] = np.concatenate([cols["score"], np.zeros(m + g)])
    cols["predicted"] = np.concatenate([cols["predicted"], np.zeros(m, np.int64), np.arange(g)])
    cols["kind"] = np.concatenate([cols["kind"], np.full(m, _SAMPLE, np.int8), np.full(g, _DROPPED, np.int8)])
    cols["n"] = np.concatenate([cols["n"], np.zeros(m, np.int64), hard.astype(np.int64) + 2 * easy.astype(np.int64)])
    total = n_out + m + g
    if "embedding" in extra:
        emb = extra["embedding"]
        width = emb.shape[1] if emb.size or emb.ndim == 2 else 0
        width = width or (s_emb.shape[1] if s_emb is not None and s_emb.ndim == 2 else 0)
        full = np.zeros((total, width), np.float32)
        full[:n_cand] = emb
        if m:
            full[n_out : n_out + m] = s_emb
        cols["embedding"] = (
            pa.FixedSizeListArray.from_arrays(pa.array(full.ravel()), width) if width else pa.nulls(total)
        )
    if "hashes" in extra:
        h = np.asarray(extra["hashes"])
        fill = (
            np.zeros(total - n_cand, h.dtype)
            if h.dtype.kind in "iuf"
            else np.full(total - n_cand, "", dtype=h.dtype if h.dtype.kind == "U" else "U1")
        )
        cols["hashes"] = np.concatenate([h, fill]) if h.size else fill


def _unreadable(paths: list[str]) -> list[str]:
    """The ``paths`` this process cannot read (runs on each node of the cluster)."""
    import os

    return [p for p in paths if not (os.path.isfile(p) and os.access(p, os.R_OK))]


def shipped_paths(src) -> list[str]:
    """The files of a pool source as absolute paths (what the workers open), or [] for in-memory pools."""
    from pathlib import Path

    if isinstance(src, ParquetSource):
        return [str(Path(f).resolve()) for f in src.files]
    if isinstance(src, CsvSource):
        return [str(Path(src.path).resolve())]
    return []


def check_cluster_reads(ray, paths: list[str], *, where: str, timeout: float = 300.0) -> None:
    """Raise :class:`~activemine.errors.InputError` unless every alive node of the cluster can read ``paths``.

    One task (no CPU reserved, so a busy cluster still runs it) per node that can host workers."""
    if not paths:
        return
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    task = ray.remote(num_cpus=0)(_unreadable)
    pending = [
        (n, task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(paths))
        for n in nodes
    ]
    for node, ref in pending:
        missing = ray.get(ref, timeout=timeout)
        if missing:
            raise InputError(
                f"the pool file {missing[0]!r} ({len(missing)} of {len(paths)} files of {where}) cannot be read on "
                f"Ray node {node.get('NodeManagerAddress')} (node id {node['NodeID'][:12]}); every node of the "
                "cluster reads the pool itself, so it must see the files at the same absolute path (a shared or "
                "copied file system), or mine with --engine local"
            )


def connect(ray, address: str | None) -> None:
    """Join the cluster at ``address`` (or start a local Ray), with a clear error when that fails."""
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except Exception as exc:
        text = str(exc)
        if type(exc).__name__ == "AuthenticationError" or "InvalidAuthToken" in text:
            raise InputError(
                f"the Ray cluster at {address!r} asks for a token: set RAY_AUTH_MODE=token, with the cluster's token "
                "in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN (the same on every node and here)"
            ) from None
        if isinstance(exc, ConnectionError):
            import os

            first = text.splitlines()[0] if text else type(exc).__name__
            hint = (
                ""
                if os.environ.get("RAY_AUTH_MODE") == "token"
                else "; if it runs there, it may ask for a token (recent Ray versions turn it on at `ray start --head`): set "
                "RAY_AUTH_MODE=token, with the cluster's token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or "
                "RAY_AUTH_TOKEN"
            )
            raise InputError(f"cannot reach the Ray cluster at {address!r}: {first}{hint}") from None
        raise


def _read_row_groups(pieces: pa.Table, columns: list[str]) -> pa.Table:
    import pyarrow.parquet as pq

    paths, groups = pieces.column("_parquet_path").to_pylist(), pieces.column("_row_group").to_pylist()
    return pa.concat_tables([pq.ParquetFile(p).read_row_group(g, columns=columns) for p, g in zip(paths, groups)])


def _dataset(src, ray_data):
    """A Ray Dataset holding the needed columns of the pool (or, for Parquet, the row groups
    that the actors read themselves), and the columns to read. Files go out as absolute paths."""
    if isinstance(src, ParquetSource):
        import pyarrow.parquet as pq

        # one item per row group, read with column projection on the actor: ray.data.read_parquet
        # fails on its second call in a process when fsspec is installed without aiohttp
        pieces = [
            {"_parquet_path": f, "_row_group": g}
            for f in shipped_paths(src)
            for g in range(pq.ParquetFile(f).num_row_groups)
        ]
        return ray_data.from_items(pieces, override_num_blocks=len(pieces)), src.columns
    if isinstance(src, CsvSource):
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(include_columns=src.columns.needed)
        return ray_data.read_csv(shipped_paths(src)[0], convert_options=convert), src.columns
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
        if pool.embedding is not None:
            spec["embedding"] = _add_matrix(cols, "e", pool.embedding)
        if pool.hashes is not None:
            cols["_hash"] = np.asarray(pool.hashes)
            spec["dedup"] = "_hash"
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

    def __init__(
        self,
        *,
        address: str | None = None,
        concurrency: int | None = None,
        num_gpus: float = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ):
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
        if concurrency is not None and concurrency < 1:
            raise InputError(f"concurrency must be at least 1, got {concurrency}")
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise InputError(f"the ray engine needs the ray extra: pip install 'activemine[ray]' ({exc})") from exc
        self.address, self.concurrency, self.num_gpus, self.chunk_size = address, concurrency, num_gpus, int(chunk_size)
        self._checked: list[str] | None = None

    def check(self, run: MiningRun) -> None:
        """Join the cluster and check that every node reads the pool's files (before any fit)."""
        import ray

        connect(ray, self.address)
        paths = shipped_paths(run.source)
        if paths != self._checked:
            check_cluster_reads(ray, paths, where=run.source.where)
            self._checked = paths

    def reduce(self, run: MiningRun, progress=None) -> CandidateReducer:
        import ray
        import ray.data

        self.check(run)
        src, plan = run.source, run.plan
        ds, cols = _dataset(src, ray.data)
        concurrency = self.concurrency or max(1, int(ray.available_resources().get("CPU", 1)))
        out = ds.map_batches(
            _BlockReducer,
            fn_constructor_kwargs=dict(scorer=run.scorer, columns=cols),
            batch_format="pyarrow",
            batch_size=1 if isinstance(src, ParquetSource) else self.chunk_size,
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_cpus=1,
            num_gpus=self.num_gpus or None,
        )
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
            extra = _diversity_of_batch(batch, kind, predicted, n, reducer, src.where) if reducer.diversity else {}
            reducer.add(
                ids,
                batch.column("score").to_numpy()[cand],
                predicted[cand],
                counts=counts.astype(np.int64),
                rows=rows,
                **extra,
            )
            if progress is not None and rows:
                progress(rows)
        return reducer


def _diversity_of_batch(batch: pa.Table, kind, predicted, n, reducer: CandidateReducer, where: str) -> dict:
    """The keyword arguments of :meth:`CandidateReducer.add` for the diversity rows of block outputs."""
    cand, sample, dropped = kind == _CANDIDATE, kind == _SAMPLE, kind == _DROPPED
    extra: dict = {}
    emb = None
    if "embedding" in batch.column_names:
        col = batch.column("embedding").combine_chunks()
        width = col.type.list_size if pa.types.is_fixed_size_list(col.type) else 0
        emb = col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), width) if width else None
        extra["embedding"] = emb[cand] if emb is not None else np.empty((int(cand.sum()), 0), np.float32)
    if "hashes" in batch.column_names:
        h = batch.column("hashes").to_numpy(zero_copy_only=False)
        extra["hashes"] = (h.astype(str) if h.dtype.kind == "O" else h)[cand]
    if reducer.sample is not None:
        ids = arrow_ids(batch.column("id"), where=f"{where} ids")
        extra["sample"] = (
            ids[sample],
            emb[sample] if emb is not None else np.empty((int(sample.sum()), 0), np.float32),
        )
    g = reducer.plan.n_groups
    hard, easy = np.zeros(g, bool), np.zeros(g, bool)
    for group, bits in zip(predicted[dropped].tolist(), n[dropped].tolist()):
        hard[group] |= bool(bits & 1)
        easy[group] |= bool(bits & 2)
    extra["dropped"] = (hard, easy)
    return extra


def mine_ray(
    strategy,
    source,
    *,
    budget: int | None = None,
    plan: SelectionPlan | None = None,
    labeled: LabeledSet | None = None,
    exclude=None,
    columns: PoolColumns | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress=None,
    address: str | None = None,
    concurrency: int | None = None,
    num_gpus: float = 0,
) -> Batch:
    """Select with Ray; the same batch as :func:`activemine.engines.local.mine_stream`
    (arguments as there, plus those of :class:`RayExecutor`)."""
    executor = RayExecutor(address=address, concurrency=concurrency, num_gpus=num_gpus, chunk_size=chunk_size)
    run = prepare_run(strategy, source, plan=plan, budget=budget, exclude=exclude, labeled=labeled, columns=columns)
    return run.run(executor, progress)

"""Mining a new round: train on the campaign's labels, select from what is neither labeled nor queued.

The pool is streamed through an engine (:func:`activemine.engines.run_engine`,
local or Ray), never read whole. Exclusions (labeled, queued and flagged ids)
are one sorted string array. The round's batch is stored with the acquisition
score (higher = more worth labeling), the stratum, the predicted class, the
model's class probabilities ``(k,)`` and the row number in the pool, so
exports carry a pre-annotation and imports can be checked against the model.

Concurrency: rounds take the campaign's mining lock (concurrent mines take
turns), and the batch is checked again inside the write transaction against
what was labeled or queued meanwhile; a batch that overlaps is not recorded.
The whole batch (with its overlap, if any) is written in that one
transaction, so a killed round leaves the store as it was.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import pyarrow as pa

from activemine.campaign.batchdata import insert_batch_ids, write_round
from activemine.campaign.pool import CampaignPool
from activemine.campaign.samples import current_label_arrays, labeled_training_set
from activemine.campaign.stopset import plan_stop_set, predict_stop_round, save_stop_round
from activemine.campaign.store import CampaignStore, now
from activemine.data.chunks import LabeledSet
from activemine.data.sources import DEFAULT_CHUNK_SIZE
from activemine.errors import CampaignError, InputError, PoolExhaustedError
from activemine.selection.batch import Batch
from activemine.selection.strategies import Strategy

__all__ = ["Steps", "mine_round", "no_steps"]

#: ``steps(description, total)`` -> a context manager yielding a ``progress(n)`` callback; the CLI
#: passes :func:`activemine.progress.progress_reporter`, the library default reports nothing.
Steps = Callable[..., AbstractContextManager]

#: page cache of the connection that writes a round (KiB; an upper bound, used only as the tables grow)
WRITE_CACHE_KB = 256 * 1024


def no_steps(description: str, *, total: int | None = None, unit: str = "rows") -> AbstractContextManager:
    """A :data:`Steps` that reports nothing."""
    return nullcontext(None)


def _attach_rows(pool: CampaignPool):
    """What the local engine carries with each candidate row: its row number in the pool and, for a
    pool of probabilities, the probabilities a round stores (so no second pass is needed)."""

    def attach(chunk, first_row: int) -> dict:
        out = {"row": np.arange(first_row, first_row + len(chunk.ids), dtype=np.int64)}
        if not pool.has_features:
            out["proba"] = _pool_proba(chunk)
        return out

    return attach


def _pool_proba(chunk) -> np.ndarray:
    """A probability pool's class probabilities ``(n, k)``: the members' mean for a committee,
    the weak model's when the pool has nothing else."""
    return np.asarray(chunk.proba if chunk.proba is not None else chunk.weak_proba)


def _batch_proba(strategy: Strategy, pool: CampaignPool, batch: Batch, steps: Steps) -> tuple[np.ndarray, np.ndarray]:
    """Pool row numbers ``(b,)`` and class probabilities ``(b, k)`` of the batch rows, in batch order:
    carried by the engine when it could, else found in one pass over the pool."""
    import pyarrow.compute as pc

    from activemine.campaign.pool import arrow_ids
    from activemine.data.sources import chunk_from_table

    columns = pool.pool_columns()
    carried = batch.attached
    if "row" in carried:
        rows = np.asarray(carried["row"], dtype=np.int64)
        if "proba" in carried:
            return rows, np.asarray(carried["proba"])
        with steps("reading the batch's features", total=int(rows.size), unit="rows"):
            table = pool.rows_at(rows, list(columns.needed))
        return rows, np.asarray(strategy.class_proba(chunk_from_table(table, columns, where="the pool")))
    sids = np.asarray(batch.ids).astype(str)
    with steps("locating the batch in the pool", total=pool.num_rows, unit="rows") as bar:
        rows, table = pool.locate(sids, columns.needed, progress=bar)
    if rows.size != sids.size:
        raise CampaignError(
            f"{sids.size - rows.size} selected ids were not found in the pool files; were they changed?"
        )
    if pool.has_features:
        proba = np.asarray(strategy.class_proba(chunk_from_table(table, columns, where="the pool")))
    else:  # the pool's own probabilities (the members' mean for a committee; the weak model's if that is all)
        groups = [list(g) for g in columns.proba] or [list(columns.weak_proba)]
        proba = np.mean(
            [np.stack([table.column(c).to_numpy(zero_copy_only=False) for c in g], axis=1) for g in groups], axis=0
        )
    # batch order by a hash lookup of the ids (Arrow), not by sorting a million strings
    at = pc.index_in(arrow_ids(pa.array(batch.ids), pool.id_kind), value_set=table.column(pool.id_col)).to_numpy()
    return rows[at], proba[at]


def mine_round(
    store: CampaignStore,
    strategy: Strategy,
    *,
    budget: int,
    params: dict | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    engine: str = "local",
    ray_address: str | None = None,
    stop_set_size: int | None = None,
    steps: Steps | None = None,
    diversity=None,
    overlap: float = 0.0,
    per_item: int = 2,
    seed: int = 0,
) -> tuple[int, Batch]:
    """Select ``budget`` pool samples with ``strategy`` and record them as a new round.

    The strategy trains on every labeled, unflagged sample (L plus the labels
    returned so far; for a probability pool it only learns the class counts);
    labeled, flagged and queued ids are excluded. The strategy's classes are
    set to the campaign's, so probabilities ``(n, k)`` are in the campaign's
    class order. ``steps`` reports the progress of each long step. Returns
    ``(round, batch)``. The round also stores its model's predictions on the
    stop set (:mod:`activemine.campaign.stopset`; ``stop_set_size`` at the first round).
    ``diversity``: :class:`~activemine.diversity.options.DiversityOptions` keeping copies out of the round.
    ``overlap``: a seeded share of the round (``seed``) wants ``per_item`` distinct annotators
    (:func:`~activemine.campaign.overlap.mark_overlap`), marked in the round's own transaction, so a
    killed process leaves either the whole round with its overlap or nothing.
    """
    from activemine.campaign.overlap import check_overlap

    if int(budget) != budget or budget < 1:
        raise InputError(f"budget must be a positive integer, got {budget}")
    check_overlap(overlap, per_item)
    steps = steps or no_steps
    pool = CampaignPool(store)
    stop_set = plan_stop_set(store, size=stop_set_size)  # before any fit: a bad size changes nothing
    with store.mine_lock():
        with store.snapshot() as conn:
            excluded = store.excluded_ids(conn=conn)
            if pool.has_features:
                sids, labels = current_label_arrays(store, conn=conn)
            else:  # the strategy only learns the class counts: no row per label leaves SQLite
                counts = store.current_label_counts(conn=conn)
            (seen_label,) = conn.execute("SELECT COALESCE(MAX(label_id), 0) FROM labels").fetchone()
            (seen_round,) = conn.execute("SELECT COALESCE(MAX(round), 0) FROM rounds").fetchone()
        l_sids = np.asarray([r[0] for r in store.read("SELECT sid FROM samples WHERE origin = 'labeled'")], dtype=str)
        available = pool.num_rows - (excluded.size - _count_in(l_sids, excluded))
        if budget > available:
            raise PoolExhaustedError(
                f"budget {budget} is more than the {available} pool samples neither labeled nor queued"
            )
        if pool.has_features:
            with steps("reading the labeled pool samples", total=pool.num_rows) as bar:
                labeled = labeled_training_set(store, sids, labels, progress=bar)
        else:  # the pool brings probabilities: the strategy only learns the class counts; ids are in `excluded`
            names = sorted(counts)
            labeled = LabeledSet(None, store.typed_labels(np.repeat(names, [counts[c] for c in names]).tolist()))
        strategy.classes = store.classes
        exclude = store.typed_id_array(excluded)
        from activemine.engines import run_engine

        engine_args = dict(
            labeled=labeled, chunk_size=chunk_size, **({"ray_address": ray_address} if ray_address else {})
        )
        if diversity is None:
            engine_args.update(budget=budget, exclude=exclude)
        else:
            from activemine.selection.plan import SelectionPlan

            engine_args["plan"] = SelectionPlan.build(strategy, budget=budget, exclude=exclude, diversity=diversity)
        with steps("fitting and scoring the pool", total=pool.num_rows, unit="rows") as bar:
            batch = run_engine(engine, strategy, pool.source(), progress=bar, attach=_attach_rows(pool), **engine_args)
        rows, proba = _batch_proba(strategy, pool, batch, steps)
        record = dict(params or {}, strategy=getattr(strategy, "name", type(strategy).__name__), engine=engine)
        what = "stop set: predictions and the kappa-refit model" if pool.has_features else "stop set: predictions"
        with steps(what, unit=""):
            stop = predict_stop_round(
                store,
                stop_set,
                strategy,
                labels=len(labeled),
                batch_proba=proba,
                labeled=labeled if pool.has_features else None,
            )
        round_no = _write_round(
            store,
            batch,
            rows,
            proba,
            budget=budget,
            record=record,
            seen=(seen_label, seen_round),
            steps=steps,
            stop_round=stop,
            overlap=(overlap, per_item, seed) if overlap > 0 else None,
        )
    return round_no, batch


def _count_in(values: np.ndarray, sorted_ids: np.ndarray) -> int:
    """How many of ``values`` ``(m,)`` are in the sorted array ``sorted_ids`` (binary search; ``m`` is small)."""
    if not values.size or not sorted_ids.size:
        return 0
    pos = np.minimum(np.searchsorted(sorted_ids, values), sorted_ids.size - 1)
    return int(np.count_nonzero(sorted_ids[pos] == values))


def _write_round(
    store: CampaignStore,
    batch: Batch,
    rows: np.ndarray,
    proba: np.ndarray,
    *,
    budget: int,
    record: dict,
    seen: tuple[int, int],
    steps: Steps,
    stop_round=None,
    overlap: tuple[float, int, int] | None = None,
) -> int:
    """Record the batch as the next round in one transaction, after checking that no id of it was
    labeled or queued since the exclusions were read."""
    sids = np.asarray(batch.ids).astype(str)
    with steps("writing the round", total=int(sids.size), unit="rows") as bar, store.transaction() as conn:
        seen_label, seen_round = seen
        # a round of a million rows and its blob grow far past SQLite's default 2 MB page cache
        conn.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KB}")
        taken = [
            r[0]
            for r in conn.execute("SELECT sid FROM labels WHERE label_id > ? AND retracted_at IS NULL", (seen_label,))
        ]
        taken += [r[0] for r in conn.execute("SELECT sid FROM batches WHERE round > ?", (seen_round,))]
        if taken:
            clash = np.intersect1d(sids, np.asarray(taken, dtype=str))
            if clash.size:
                raise CampaignError(
                    f"{clash.size} ids of the new batch (e.g. {clash[:5].tolist()}) were labeled or queued by another "
                    "process while this round was mined; nothing was recorded, run `campaign mine` again"
                )
        (last,) = conn.execute("SELECT COALESCE(MAX(round), 0) FROM rounds").fetchone()
        round_no = last + 1
        conn.execute(
            "INSERT INTO rounds VALUES (?, ?, ?, ?, ?)",
            (round_no, now(), record["strategy"], int(budget), json.dumps(record, default=str)),
        )
        predicted = ([str(c) for c in batch.classes], batch.predicted) if batch.classes else batch.predicted
        write_round(
            conn,
            round_no,
            score=batch.scores,
            stratum=batch.stratum_codes(),
            predicted=predicted,
            proba=proba,
            row=rows,
        )
        insert_batch_ids(conn, round_no, sids.tolist())
        if bar is not None:
            bar(int(sids.size))
        if stop_round is not None:
            save_stop_round(conn, round_no, stop_round)
        if overlap is not None:
            from activemine.campaign.overlap import mark_overlap

            share, per_item, seed = overlap
            mark_overlap(conn, round_no, overlap=share, per_item=per_item, seed=seed)
    return round_no

"""Mining a new round: train on the campaign's labels, select from what is neither labeled nor queued.

The round's batch is stored with the acquisition score (higher = more worth
labeling), the stratum, the predicted class and the model's class
probabilities ``(k,)`` per row, so exports carry a pre-annotation and imports
can be checked against the model.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from activemine.campaign.samples import PoolRows, labeled_training_set
from activemine.campaign.stopset import plan_stop_set, predict_stop_round, save_stop_round
from activemine.campaign.store import CampaignStore, now
from activemine.data import LabeledSet, PoolChunk
from activemine.mining import DEFAULT_CHUNK_SIZE, mine
from activemine.selection import Batch
from activemine.strategies import Strategy

__all__ = ["mine_round"]


def mine_round(store: CampaignStore, strategy: Strategy, *, budget: int, params: dict | None = None,
               chunk_size: int = DEFAULT_CHUNK_SIZE, stop_set_size: int | None = None,
               progress: Callable[[int], None] | None = None) -> tuple[int, Batch]:  # fmt: skip
    """Select ``budget`` pool samples with ``strategy`` and record them as a new round.

    The strategy trains on every labeled, unflagged sample (L plus the labels
    returned so far); labeled, flagged and queued ids are excluded. The
    strategy's classes are set to the campaign's, so probabilities ``(n, k)``
    are in the campaign's class order. Returns ``(round, batch)``.
    The round also stores its model's predictions on the stop set
    (:mod:`activemine.campaign.stopset`; ``stop_set_size`` at the first round).
    """
    stop_set = plan_stop_set(store, size=stop_set_size)  # before any fit: a bad size changes nothing
    pool = PoolRows(store, "pool")
    labeled = PoolRows(store, "labeled")
    X, y, ids = labeled_training_set(store, pool, labeled)
    strategy.classes = store.classes
    exclude = store.labeled_sids() | store.queued_sids() | set(store.flagged())
    batch = mine(strategy, PoolChunk(pool.ids, X=pool.X), budget=budget, labeled=LabeledSet(X, y, ids),
                 exclude=store.typed_ids(sorted(exclude)), chunk_size=chunk_size, progress=progress)  # fmt: skip
    position = {s: i for i, s in enumerate(pool.ids.tolist())}
    rows = np.array([position[i] for i in batch.ids.tolist()], dtype=np.int64)
    proba = strategy.class_proba(PoolChunk(batch.ids, X=pool.X[rows])) if rows.size else np.empty((0, len(store.classes)))
    predicted = [str(c) for c in batch.predicted_labels().tolist()]
    record = dict(params or {}, strategy=getattr(strategy, "name", type(strategy).__name__))
    stop = predict_stop_round(store, stop_set, strategy, labels=len(y), batch_proba=proba)
    with store.transaction() as conn:
        (last,) = conn.execute("SELECT COALESCE(MAX(round), 0) FROM rounds").fetchone()
        round_no = last + 1
        conn.execute("INSERT INTO rounds VALUES (?, ?, ?, ?, ?)",
                     (round_no, now(), record["strategy"], int(budget), json.dumps(record, default=str)))  # fmt: skip
        conn.executemany(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (round_no, str(i), rank, float(s), str(st), p, json.dumps([round(float(v), 6) for v in pr]))
                for rank, (i, s, st, p, pr) in enumerate(zip(batch.ids.tolist(), batch.scores, batch.stratum, predicted, proba))
            ],
        )  # fmt: skip
        save_stop_round(conn, round_no, stop)
    return round_no, batch

"""Mine a batch from an in-memory pool: check, fit, score chunk by chunk, select.

This is the one-machine path for pools that fit in memory; it runs the local
engine (:mod:`activemine.engines`) over the arrays, so it checks every
setting before fitting and gives the batch the streaming and Ray engines give.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from activemine.data.chunks import LabeledSet, PoolChunk
from activemine.data.sources import DEFAULT_CHUNK_SIZE
from activemine.errors import EmptyPoolError
from activemine.selection.batch import Batch, check_ids
from activemine.selection.plan import SelectionPlan
from activemine.selection.strategies import Strategy

__all__ = ["DEFAULT_CHUNK_SIZE", "mine", "score_pool"]


def score_pool(
    strategy: Strategy,
    pool: PoolChunk,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores and predicted class indices for every pool row, ``(n,)`` each, chunk by chunk."""
    n = len(pool)
    scores, predicted = [], []
    for start in range(0, n, chunk_size):
        s, p = strategy.score(pool.rows(start, min(n, start + chunk_size)))
        scores.append(s)
        predicted.append(p)
        if progress is not None:
            progress(len(s))
    if not scores:
        return np.empty(0), np.empty(0, dtype=np.int64)
    return np.concatenate(scores), np.concatenate(predicted)


def mine(
    strategy: Strategy,
    pool: PoolChunk,
    *,
    budget: int | None = None,
    labeled: LabeledSet | None = None,
    exclude=None,
    plan: SelectionPlan | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
) -> Batch:
    """Select ``budget`` pool rows with ``strategy``.

    The selection settings are ``plan`` (a :class:`~activemine.selection.plan.SelectionPlan`),
    or ``budget`` and ``exclude`` with the strategy's defaults; they are checked
    before the strategy is fitted on ``labeled`` (unless the pool brings
    probabilities and has no features). The pool is scored in chunks of
    ``chunk_size`` rows, and ids in ``exclude`` or in ``labeled.ids`` are never selected.
    """
    from activemine.engines.local import mine_stream  # engines build on this module's layer

    ids = check_ids(pool.ids, name="pool ids")
    if ids.size == 0:
        raise EmptyPoolError("the pool is empty")
    # the pool is whole here, so its ids were checked above and the stream need not track them
    return mine_stream(
        strategy,
        PoolChunk(ids, pool.X, pool.proba, pool.weak_proba, pool.member_proba, pool.embedding, pool.hashes),
        budget=budget,
        plan=plan,
        labeled=labeled,
        exclude=exclude,
        chunk_size=chunk_size,
        progress=progress,
        check_duplicates=False,
    )

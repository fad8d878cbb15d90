"""Which ranking key decided a batch: the score, its secondary key, or the id.

A strategy ranks rows by score (higher = more worth labeling), ties by the
smaller id. Some scores pack two keys into one number (QBC's ranked vote
entropy: the votes first, the consensus second; see
:func:`activemine.selection.scores.ranked_vote_entropy`), and a coarse score (plain vote
entropy with 2-3 members) can leave most of a batch to the id, a random batch
in disguise. :func:`decided_by` counts, for the score-ranked rows of a batch,
which key put each of them ahead of the rows left out, so a degenerate score
shows in every result.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from activemine.selection.batch import Batch, check_ids, rank_order

__all__ = ["DECIDING_KEYS", "decided_by", "strategy_decided_by"]

#: The keys of a :func:`decided_by` count, in ranking order.
DECIDING_KEYS = ("score", "secondary", "id")


def decided_by(
    batch: Batch,
    ids,
    scores,
    predicted=None,
    *,
    primary: Callable[[np.ndarray], np.ndarray] | None = None,
    exclude=None,
) -> dict[str, int]:
    """Count the ranked rows of ``batch`` by the key that decided each: ``{"score": n, "secondary": n, "id": n}``.

    Parameters
    ----------
    batch : a batch selected from these rows (:func:`activemine.selection.batch.select_batch`).
    ids, scores, predicted : ``(n,)`` each: every row the batch was selected from
        (the whole pool, not only candidates), its score and predicted class
        index (needed only when the batch used class quotas).
    primary : maps scores ``(n,)`` to their first key ``(n,)`` when a score
        packs two keys (e.g. ``QBCStrategy.primary_key``); None: the score is
        one key and ``"secondary"`` stays 0.
    exclude : ids that could not be selected (already labeled or queued).

    Definition. The *ranked rows* are the batch's rows not drawn into the
    ``easy`` stratum. Rows are grouped as the selection grouped them (one group,
    or one per predicted class when ``batch.quotas`` is set). In each group the
    *boundary row* is the best-ranked selectable row (score desc, id asc) that
    is not a ranked row of the batch; it may have been drawn as easy. Each
    ranked row of the group is counted under the first key on which it differs
    from the boundary row: ``"score"`` when the primary keys differ,
    ``"secondary"`` when only the packed secondary key differs (the scores
    differ but the primary keys do not), ``"id"`` when the scores are equal.
    Rows of a group taken whole (no boundary row) count under ``"score"``:
    no row of the group was left out, so no tie was broken. The counts sum to
    the number of ranked rows.
    """
    ids = check_ids(ids)
    scores = np.asarray(scores, dtype=np.float64)
    counts = dict.fromkeys(DECIDING_KEYS, 0)
    ranked_ids = batch.ids[np.asarray(batch.stratum) != "easy"]
    if ranked_ids.size == 0:
        return counts
    selectable = np.ones(ids.size, dtype=bool)
    if exclude is not None and len(exclude):
        selectable &= ~np.isin(ids, np.asarray(exclude))
    ranked = np.isin(ids, ranked_ids)
    if batch.quotas and predicted is not None:
        group_of = np.asarray(predicted, dtype=np.int64)
    else:
        group_of = np.zeros(ids.size, dtype=np.int64)
    first = (lambda s: s) if primary is None else primary
    for g in np.unique(group_of[ranked]):
        in_group = group_of == g
        chosen = np.flatnonzero(in_group & ranked)
        left = np.flatnonzero(in_group & selectable & ~ranked)
        if left.size == 0:
            counts["score"] += int(chosen.size)
            continue
        best = left[rank_order(-scores[left], ids[left])[0]]
        s_best, p_best = scores[best], np.asarray(first(scores[[best]]))[0]
        p_chosen = np.asarray(first(scores[chosen]))
        by_score = p_chosen != p_best
        by_secondary = ~by_score & (scores[chosen] != s_best)
        counts["score"] += int(by_score.sum())
        counts["secondary"] += int(by_secondary.sum())
        counts["id"] += int((~by_score & ~by_secondary).sum())
    return counts


def strategy_decided_by(strategy, batch: Batch, ids, scores, predicted, *, exclude=None) -> dict[str, int]:
    """:func:`decided_by` with the strategy's own split of its scores (``primary_key``, when it has one)."""
    return decided_by(batch, ids, scores, predicted, primary=getattr(strategy, "primary_key", None), exclude=exclude)

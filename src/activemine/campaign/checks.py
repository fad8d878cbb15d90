"""The dirty-data check of returned labels: does the model that mined the round doubt them?

The *disagreement* of a returned label is ``max_c p(c) - p(given)`` under the
class probabilities stored with the id's batch row, in ``[0, 1]``: zero when
the given label is the model's top class, near one when the model is sure of
another class (higher = more likely mislabeled). A label is flagged
``suspect`` when its disagreement is strictly greater than its class's threshold.

**Thresholds per class.** A round's batch sits where the model is unsure, and
on a rare class that is mostly rows the model gives a low probability of the
class (LightGBM on a 2% class put the sum of its probabilities at a third of
the positives its round held): one shared threshold flagged 67% of the correct
positives of such a round and none of its negatives. So the threshold ``t`` is
a floor and each class gets its own (:func:`class_thresholds`), from the
round's labels themselves: a class whose labels ``t`` would flag more often
than it flags the labels of the other classes gets the lowest threshold at
which it does not. A correct label of a rare class is then flagged no more
often than one of the common class; the price is that a wrong label of the
rare class is caught only when the model doubts it more than the rest.

The default threshold was chosen on planted-noise campaigns
(``benchmarks/campaign_suspect.py``, figures in docs/campaign.md): with
10% of a round's labels flipped, 0.5 flagged 5.5% of the correct labels on
digits and 0.8 flagged 1.0%, with 84% of what it flags truly wrong.
"""

from __future__ import annotations

import numpy as np

from activemine.campaign.batchdata import read_round
from activemine.campaign.store import CampaignStore
from activemine.dirty.detect import SUSPECT_THRESHOLD, label_disagreement
from activemine.errors import InputError

__all__ = ["DEFAULT_SUSPECT_THRESHOLD", "class_thresholds", "disagreement", "suspect_mask", "suspect_sids"]

#: Flag a returned label when the model puts it more than this far behind its top class (one default,
#: :data:`activemine.dirty.detect.SUSPECT_THRESHOLD`, for campaigns and the library).
DEFAULT_SUSPECT_THRESHOLD = SUSPECT_THRESHOLD


def disagreement(given: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """``max_c p(c) - p(given)`` per row ``(n,)``; ``given`` ``(n,)`` class indices, ``proba`` ``(n, k)``.

    Higher = more likely mislabeled. Rows of ``proba`` are renormalized (they are stored as float32).
    """
    p = np.asarray(proba, dtype=np.float64)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return label_disagreement(np.asarray(given, dtype=np.int64), p)


def _check_threshold(threshold: float) -> float:
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"the suspect threshold must be in [0, 1], got {threshold}")
    return float(threshold)


def class_thresholds(given: np.ndarray, disagreements: np.ndarray, k: int, threshold: float) -> np.ndarray:
    """Per-class thresholds ``(k,)``, each at least ``threshold``, for one round's labels.

    ``given`` ``(n,)`` are the labels' class indices, ``disagreements`` ``(n,)``
    theirs (:func:`disagreement`). The share of class ``c``'s labels that
    ``threshold`` flags is compared with the share it flags among the labels
    of every other class; where it is higher, class ``c`` gets the smallest
    threshold that flags no larger a share of its labels (to the nearest label). A class with no
    label, or not above the others, keeps ``threshold``.
    """
    t = _check_threshold(threshold)
    given = np.asarray(given, dtype=np.int64)
    d = np.asarray(disagreements, dtype=np.float64)
    out = np.full(int(k), t)
    over = d > t  # (n,)
    for c in range(int(k)):
        mine, others = given == c, given != c
        n_c = int(mine.sum())
        if not n_c:
            continue
        others_share = over[others].mean() if others.any() else 0.0
        allowed = int(np.floor(others_share * n_c + 0.5))  # labels of c that may stay flagged (to the nearest)
        if int(over[mine].sum()) <= allowed:
            continue
        ranked = np.sort(d[mine])[::-1]  # (n_c,) most doubted first
        out[c] = max(t, float(ranked[allowed]))  # strictly greater flags at most `allowed` of them
    return out


def suspect_mask(
    given: np.ndarray,
    proba: np.ndarray,
    *,
    threshold: float = DEFAULT_SUSPECT_THRESHOLD,
    thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """True where the disagreement ``(n,)`` is strictly greater than the threshold (in ``[0, 1]``).

    ``thresholds`` ``(n,)``, one per row (each row's class threshold from
    :func:`class_thresholds`), replaces the shared ``threshold`` when given.
    """
    t = _check_threshold(threshold)
    limit = t if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    return disagreement(given, proba) > limit


def suspect_sids(
    store: CampaignStore,
    labels: list[tuple[str, str]],
    *,
    threshold: float = DEFAULT_SUSPECT_THRESHOLD,
    by_class: bool = True,
    conn=None,
    cache: dict | None = None,
) -> list[str]:
    """Ids among ``labels`` ``[(sid, label)]`` whose label the model doubts (see the module docstring).

    Uses the class probabilities stored with each id's newest batch row and,
    with ``by_class``, the class thresholds of that row's round, from the
    round's labels and these (:func:`round_thresholds`; ``cache`` keeps each
    round's probabilities between calls: a round never changes once written).
    Ids that were never in a batch are not checked.
    """
    from activemine.campaign.batchdata import newest_positions

    if conn is None:
        with store.snapshot() as own:
            return suspect_sids(store, labels, threshold=threshold, by_class=by_class, conn=own, cache=cache)
    where = newest_positions(conn, [sid for sid, _ in labels])
    checked = [(sid, label) for sid, label in labels if sid in where]
    if not checked:
        return []
    index = {c: i for i, c in enumerate(store.class_names)}
    given = np.array([index[label] for _, label in checked])  # (n,) class indices
    rounds = np.array([where[sid][0] for sid, _ in checked])
    ranks = np.array([where[sid][1] for sid, _ in checked])
    mask = np.zeros(len(checked), dtype=bool)
    for r in np.unique(rounds).tolist():
        at = rounds == r
        proba = _round_proba(conn, r, cache)
        limits = (
            round_thresholds(conn, r, ranks[at], given[at], proba, threshold, index)[given[at]] if by_class else None
        )
        mask[at] = suspect_mask(given[at], proba[ranks[at]], threshold=threshold, thresholds=limits)
    return [sid for (sid, _), bad in zip(checked, mask) if bad]


def _round_proba(conn, round_no: int, cache: dict | None) -> np.ndarray:
    if cache is None:
        return read_round(conn, round_no).proba
    if round_no not in cache:
        cache[round_no] = read_round(conn, round_no).proba
    return cache[round_no]


def round_thresholds(
    conn, round_no: int, ranks: np.ndarray, given: np.ndarray, proba: np.ndarray, threshold: float, index: dict
) -> np.ndarray:
    """Class thresholds ``(k,)`` of round ``round_no`` for new labels ``given`` ``(m,)`` of its rows ``ranks`` ``(m,)``.

    The round's labels are its returned labels already stored (every active
    label of one of its rows, L's left out) and the new ones;
    ``proba`` ``(b, k)`` are the round's stored probabilities (:func:`class_thresholds`).
    """
    # labels drive the join (CROSS JOIN keeps them outside): a round may hold a million rows, its labels fewer
    stored = conn.execute(
        "SELECT b.rank, l.label FROM labels l CROSS JOIN batches b ON b.round = ? AND b.sid = l.sid "
        "WHERE l.retracted_at IS NULL AND l.source != 'initial'",
        (int(round_no),),
    ).fetchall()
    all_ranks = np.concatenate([np.array([r for r, _ in stored], dtype=np.int64), np.asarray(ranks, dtype=np.int64)])
    all_given = np.concatenate(
        [np.array([index[lab] for _, lab in stored], dtype=np.int64), np.asarray(given, dtype=np.int64)]
    )
    return class_thresholds(all_given, disagreement(all_given, proba[all_ranks]), proba.shape[1], threshold)

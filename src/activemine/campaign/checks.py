"""The dirty-data check of returned labels: does the model that mined the round doubt them?

The *disagreement* of a returned label is ``max_c p(c) - p(given)`` under the
class probabilities stored with the id's batch row, in ``[0, 1]``: zero when
the given label is the model's top class, near one when the model is sure of
another class (higher = more likely mislabeled). A label is flagged
``suspect`` when its disagreement is strictly greater than its class's threshold.

**Thresholds per class.** A round's batch sits where the model is unsure, and
on a rare class that is mostly rows the model gives a low probability of the
class (LightGBM on a 2% class put the sum of its probabilities at a third of
the positives its round held): one shared threshold flagged 56% of the correct
positives of such campaigns and 0.02% of their negatives. So the threshold
``t`` is a floor and each class gets its own (:func:`class_thresholds`), from
the campaign's returned labels, each judged by its own round's model: a class
whose labels ``t`` flags more often than the other classes', by more than
chance, gets the lowest threshold at which it does not.

**Flags follow the thresholds.** A campaign's later rounds mostly add labels
the model is sure of, so the other classes' flagged share falls as the
campaign grows; flags set in round 1 against round 1's share would leave the
rare class flagged more often than the rest. So every import (and every label
from the labeling page) lifts the standing flags of a spared class that its
new threshold spares (:func:`lift_spared_flags`); a flag never appears on an
old label. A correct label of a rare class then stands flagged no more often
than one of the common class; the price is that a wrong label of a spared
class is caught only when the model doubts it more than the rest.

Measured by ``benchmarks/campaign_suspect.py`` (figures in docs/campaign.md):
on two-round campaigns fed correct labels, 0 of 1,195 correct positives
flagged on a synthetic 2% set (62% with one shared threshold); on
Fashion-MNIST's bag class thinned to 2%, 2 of 1,130 (0.18%) stand flagged at
the end against 0.33% of the negatives (8 when imported; the former rule kept
10, 2.7 times the negatives' rate). With 10% of each class's labels wrong, the
check catches 9% of the wrong positives there (the former rule 29%, one shared
threshold 93% at 16% of the correct positives flagged).
"""

from __future__ import annotations

import numpy as np

from activemine.campaign.batchdata import newest_positions, read_round
from activemine.campaign.store import CampaignStore
from activemine.dirty.detect import SUSPECT_THRESHOLD, label_disagreement
from activemine.errors import InputError

__all__ = [
    "DEFAULT_SUSPECT_THRESHOLD",
    "Z_SPARE",
    "campaign_thresholds",
    "class_thresholds",
    "disagreement",
    "gather_proba",
    "judge_labels",
    "lift_spared_flags",
    "returned_label_disagreements",
    "suspect_mask",
    "suspect_sids",
]

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


#: A class's labels are spared only when the threshold flags them more often than the other classes' by more
#: than chance: a one-sided two-proportion z above this. Without it, a balanced multi-class round whose few
#: flags fall unevenly by chance loses them: on digits with 10% planted errors, 0.8 flagged none of them.
Z_SPARE = 2.0


def class_thresholds(given: np.ndarray, disagreements: np.ndarray, k: int, threshold: float) -> np.ndarray:
    """Per-class thresholds ``(k,)``, each at least ``threshold``, for a campaign's labels.

    ``given`` ``(n,)`` are the labels' class indices, ``disagreements`` ``(n,)``
    theirs (:func:`disagreement`). The share of class ``c``'s labels that
    ``threshold`` flags is compared with the share it flags among the labels
    of every other class; where it is higher by more than chance (a one-sided
    two-proportion z above :data:`Z_SPARE`), class ``c`` gets the smallest
    threshold that flags no larger a share of its labels than the others'
    (rounded down to whole labels: ``floor(share * n_c)`` of them at most).
    Every other class keeps ``threshold``.
    """
    t = _check_threshold(threshold)
    given = np.asarray(given, dtype=np.int64)
    d = np.asarray(disagreements, dtype=np.float64)
    out = np.full(int(k), t)
    over = d > t  # (n,)
    for c in range(int(k)):
        mine, others = given == c, given != c
        n_c, n_o = int(mine.sum()), int(others.sum())
        if not n_c or not n_o:
            continue
        f_c, f_o = int(over[mine].sum()), int(over[others].sum())
        p_c, p_o = f_c / n_c, f_o / n_o
        pooled = (f_c + f_o) / (n_c + n_o)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_o))
        if f_c * n_o <= f_o * n_c or (p_c - p_o) / se <= Z_SPARE:
            continue
        allowed = (f_o * n_c) // n_o  # labels of c that may stay flagged, rounded down
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
    stored: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[str]:
    """Ids among ``labels`` ``[(sid, label)]`` whose label the model doubts (see the module docstring).

    ``stored``: the campaign's returned labels as :func:`returned_label_disagreements`
    gave them before (the labeling page refreshes them as labels arrive), used
    instead of reading every label again.

    Uses the class probabilities stored with each id's newest batch row and,
    with ``by_class``, the class thresholds of the campaign's returned labels
    and these (:func:`campaign_thresholds`; ``cache`` keeps each round's
    probabilities between calls: a round never changes once written). Ids that
    were never in a batch are not checked.
    """
    return judge_labels(store, labels, threshold=threshold, by_class=by_class, conn=conn, cache=cache, stored=stored)[0]


def judge_labels(
    store: CampaignStore,
    labels: list[tuple[str, str]],
    *,
    threshold: float = DEFAULT_SUSPECT_THRESHOLD,
    by_class: bool = True,
    conn=None,
    cache: dict | None = None,
    stored: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[list[str], np.ndarray | None]:
    """:func:`suspect_sids` and the class thresholds ``(k,)`` it used (None without ``by_class`` or when no
    label was checked), for :func:`lift_spared_flags`."""
    if conn is None:
        with store.snapshot() as own:
            return judge_labels(
                store, labels, threshold=threshold, by_class=by_class, conn=own, cache=cache, stored=stored
            )
    where = newest_positions(conn, [sid for sid, _ in labels])
    checked = [(sid, label) for sid, label in labels if sid in where]
    if not checked:
        return [], None
    index = {c: i for i, c in enumerate(store.class_names)}
    given = np.array([index[label] for _, label in checked])  # (n,) class indices
    proba = gather_proba(conn, [where[sid] for sid, _ in checked], cache)  # (n, k)
    limits = campaign_thresholds(conn, index, given, proba, threshold, cache=cache, stored=stored) if by_class else None
    mask = suspect_mask(given, proba, threshold=threshold, thresholds=None if limits is None else limits[given])
    return [sid for (sid, _), bad in zip(checked, mask) if bad], limits


def lift_spared_flags(conn, index: dict, limits: np.ndarray, threshold: float, *, cache: dict | None = None) -> int:
    """Clear the ``suspect`` flag of standing labels that their class's threshold now spares; returns how many.

    ``limits`` ``(k,)`` are the campaign's class thresholds (:func:`class_thresholds`)
    as an import or the labeling page has just computed them, ``threshold``
    the floor they were computed from. A flagged returned label of class ``c``
    whose disagreement lies in ``(threshold, limits[c]]`` was flagged when its
    class was doubted more often than it is now, against the other classes'
    share of that time; judged again, it would not be. Later rounds mostly
    add labels the model is sure of, so the other classes' share falls, and
    flags kept from the first round would leave a rare class flagged more
    often than the rest. Flags below ``threshold`` (an import asked for a
    lower one) and every flag of a class at ``threshold`` stay. Runs inside
    the caller's write transaction.
    """
    t = _check_threshold(threshold)
    limits = np.asarray(limits, dtype=np.float64)
    if not (limits > t).any():
        return 0
    rows = conn.execute(
        "SELECT label_id, sid, label FROM labels WHERE suspect = 1 AND retracted_at IS NULL AND source != 'initial'"
    ).fetchall()
    where = newest_positions(conn, [sid for _, sid, _ in rows])
    rows = [r for r in rows if r[1] in where]
    if not rows:
        return 0
    given = np.array([index[label] for _, _, label in rows], dtype=np.int64)  # (m,)
    d = disagreement(given, gather_proba(conn, [where[sid] for _, sid, _ in rows], cache))  # (m,)
    lift = (d > t) & (d <= limits[given])
    conn.executemany(
        "UPDATE labels SET suspect = 0 WHERE label_id = ?", ((int(r[0]),) for r, x in zip(rows, lift) if x)
    )
    return int(lift.sum())


def gather_proba(conn, positions: list[tuple[int, int]], cache: dict | None = None) -> np.ndarray:
    """The stored probabilities ``(n, k)`` of batch rows ``[(round, rank)]``; each round read once (kept in ``cache``)."""
    cache = {} if cache is None else cache
    rounds = np.array([r for r, _ in positions], dtype=np.int64)
    ranks = np.array([q for _, q in positions], dtype=np.int64)
    out = None
    for r in np.unique(rounds).tolist():
        if r not in cache:
            cache[r] = read_round(conn, r).proba
        at = rounds == r
        if out is None:
            out = np.empty((rounds.size, cache[r].shape[1]))
        out[at] = cache[r][ranks[at]]
    return out if out is not None else np.empty((0, 0))


def returned_label_disagreements(conn, index: dict, *, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Class indices ``(n,)`` and disagreements ``(n,)`` of every active label that is not one of L's.

    Each label is judged by the probabilities of its id's newest batch row;
    labels of ids never in a batch are left out.
    """
    stored = conn.execute("SELECT sid, label FROM labels WHERE retracted_at IS NULL AND source != 'initial'").fetchall()
    where = newest_positions(conn, [sid for sid, _ in stored])
    stored = [(sid, label) for sid, label in stored if sid in where]
    given = np.array([index[label] for _, label in stored], dtype=np.int64)
    if not stored:
        return given, np.empty(0)
    return given, disagreement(given, gather_proba(conn, [where[sid] for sid, _ in stored], cache))


def campaign_thresholds(
    conn,
    index: dict,
    given: np.ndarray,
    proba: np.ndarray,
    threshold: float,
    *,
    cache: dict | None = None,
    stored: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Class thresholds ``(k,)`` over the campaign's returned labels and new labels ``given`` ``(m,)``.

    ``proba`` ``(m, k)`` are the new labels' stored probabilities; ``stored``
    the returned labels' :func:`returned_label_disagreements` when already at
    hand (read from the store otherwise). See :func:`class_thresholds`.
    """
    old_given, old_d = stored if stored is not None else returned_label_disagreements(conn, index, cache=cache)
    given = np.asarray(given, dtype=np.int64)
    all_given = np.concatenate([old_given, given])
    all_d = np.concatenate([old_d, disagreement(given, proba) if given.size else np.empty(0)])
    return class_thresholds(all_given, all_d, len(index), threshold)

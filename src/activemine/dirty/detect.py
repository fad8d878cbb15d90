"""Detection: which labels look wrong, and how dirty is the labeled set.

Vocabulary (the same in the CLI, the README and campaign status): data is
**dirty** when some labels are wrong; the **dirty share** is the share of wrong
labels; a **suspect** is a sample whose label the detection doubts.

Direction, fixed once: **a lower label-quality score means a sample is more
likely mislabeled**. Probabilities have shape ``(n, k)`` with columns in the
order of ``classes`` (``0..k-1`` when ``classes`` is None, in which case labels
are column indices), and must be out of fold (:mod:`activemine.dirty.oof`).

The detection is confident learning (Northcutt et al., 2021), written from the
paper: a per-class threshold ``t_j`` (the mean probability of class j over the
samples labeled j), and a sample is suspect when its given class is below its
threshold while another class is at or above its own. Whether dropping the
suspects helps is the policy's question (:mod:`activemine.dirty.policy`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from activemine.dirty._labels import labels_and_proba, row_ids
from activemine.errors import InputError

__all__ = [
    "check_returned_labels",
    "estimate_dirty_share",
    "find_suspects",
    "label_quality_scores",
    "per_class_thresholds",
]

QUALITY_METHODS = ("self_confidence", "normalized_margin")


def label_quality_scores(
    labels, proba, *, classes: Sequence | None = None, method: str = "self_confidence"
) -> np.ndarray:
    """Label quality ``(n,)`` in ``[0, 1]``; **lower = more likely mislabeled**.

    ``self_confidence`` is ``p(given)``; ``normalized_margin`` is
    ``(p(given) - max_{c != given} p(c) + 1) / 2``.
    """
    if method not in QUALITY_METHODS:
        raise InputError(f"unknown label-quality method {method!r}; expected one of {QUALITY_METHODS}")
    idx, p = labels_and_proba(labels, proba, classes)
    rows = np.arange(idx.size)
    given = p[rows, idx]  # (n,)
    if method == "self_confidence":
        return given
    other = p.copy()
    other[rows, idx] = -np.inf
    return (given - other.max(axis=1) + 1.0) / 2.0


def per_class_thresholds(labels, proba, *, classes: Sequence | None = None) -> np.ndarray:
    """Per-class thresholds ``(k,)``: ``t_j`` = mean ``p(j)`` over the rows labeled j.

    A class with no labeled row gets ``inf``, so no sample is ever confidently in it.
    """
    idx, p = labels_and_proba(labels, proba, classes)
    return _thresholds(idx, p)


def _thresholds(idx: np.ndarray, p: np.ndarray) -> np.ndarray:
    k = p.shape[1]
    counts = np.bincount(idx, minlength=k)  # (k,)
    sums = np.bincount(idx, weights=p[np.arange(idx.size), idx], minlength=k)  # (k,)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)


def _confident_class(idx: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(suspect, counted_as)``, both ``(n,)``.

    ``counted_as`` is the row's column of the confident joint: the given class
    when it reaches its threshold, else the most probable other class that
    reaches its own, else -1 (not counted). ``suspect`` = counted under
    another class (the strict confident-learning rule).
    """
    rows = np.arange(idx.size)
    above = p >= thresholds[None, :]  # (n, k)
    given_ok = above[rows, idx]
    others = np.where(above, p, -np.inf)
    others[rows, idx] = -np.inf
    best = others.argmax(axis=1)  # (n,)
    has_other = np.isfinite(others[rows, best])
    counted_as = np.where(given_ok, idx, np.where(has_other, best, -1))
    return ~given_ok & has_other, counted_as


def _calibrated_dirty(idx: np.ndarray, p: np.ndarray, counted_as: np.ndarray) -> float:
    """Off-diagonal mass of the confident joint, each given class's row scaled to that class's size."""
    k = p.shape[1]
    counted = counted_as >= 0
    joint = np.zeros((k, k))  # (given, counted_as)
    np.add.at(joint, (idx[counted], counted_as[counted]), 1.0)
    given_counts = np.bincount(idx, minlength=k).astype(np.float64)
    row_sums = joint.sum(axis=1)
    # calibration: each given class's row is scaled to that class's size, so uncounted rows share its mix
    scale = np.divide(given_counts, row_sums, out=np.zeros(k), where=row_sums > 0)
    joint *= scale[:, None]
    return float((joint.sum() - np.trace(joint)) / max(idx.size, 1))


def estimate_dirty_share(labels, oof_proba, *, classes: Sequence | None = None) -> float:
    """Estimated share of wrong labels, in ``[0, 1]`` (confident learning's estimate).

    The off-diagonal mass of the confident joint (given class x the class a
    sample is confidently in), each given class's row calibrated to its size.
    It is not zero on clean labels: hard samples of confusable classes count
    too, which is why the adaptive policy checks on held-out labels before it drops.
    """
    idx, p = labels_and_proba(labels, oof_proba, classes, name="oof_proba")
    _, counted_as = _confident_class(idx, p, _thresholds(idx, p))
    return _calibrated_dirty(idx, p, counted_as)


def _suspects(idx: np.ndarray, p: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Suspect mask ``(n,)`` of :func:`find_suspects`."""
    thresholds = _thresholds(idx, p)
    strict, counted_as = _confident_class(idx, p, thresholds)
    n = idx.size
    given = p[np.arange(n), idx]
    wide = np.flatnonzero((given < thresholds[idx]) & (p.argmax(axis=1) != idx))
    n_dirty = int(round(_calibrated_dirty(idx, p, counted_as) * n))
    # the margin to the winning class separates flips from merely ambiguous samples better than p(given)
    margin = label_quality_scores(idx, p, method="normalized_margin")
    wide = wide[np.lexsort((ids[wide], margin[wide]))][:n_dirty]
    out = strict.copy()
    out[wide] = True
    return out


def find_suspects(
    labels, oof_proba, *, classes: Sequence | None = None, ids=None, method: str = "self_confidence"
) -> np.ndarray:
    """Ids of suspects, most likely mislabeled first; ``(n_suspects,)``.

    ``oof_proba`` ``(n, k)`` must be out of fold. A sample is a suspect when its
    given class is below that class's threshold (:func:`per_class_thresholds`)
    and either

    * another class c reaches its own threshold ``t_c`` (confident learning), or
    * another class is more probable than the given one, and the sample is
      among the ``round(n * estimate_dirty_share)`` such samples with the
      lowest normalized margin.

    The second clause catches flips between confusable classes, whose true
    class is the model's top class without reaching its (high) threshold; the
    estimated dirty count bounds it so clean but misclassified samples are not
    all flagged. Suspects are ranked by label quality (``method``, lower
    first), ties by the smaller id. ``ids`` ``(n,)`` default to row indices.
    """
    idx, p = labels_and_proba(labels, oof_proba, classes, name="oof_proba")
    ids = row_ids(ids, idx.size)
    quality = label_quality_scores(idx, p, method=method)
    rows = np.flatnonzero(_suspects(idx, p, ids))
    return ids[rows[np.lexsort((ids[rows], quality[rows]))]]


#: Flag a returned label when the model puts it more than this far behind its top class. Chosen on
#: planted-noise campaigns (``benchmarks/campaign_suspect.py``): at 0.8, 1.0% of correct labels were
#: flagged and 84% of the flagged were wrong; at 0.5, 5.5% and 60%.
SUSPECT_THRESHOLD = 0.8


def label_disagreement(idx: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``max_c p(c) - p(given)`` per row ``(n,)``, in ``[0, 1]``, for class indices ``idx`` ``(n,)`` and
    probabilities ``p`` ``(n, k)``: zero when the given label is the model's top class, near one when the
    model is sure of another class (higher = more likely mislabeled)."""
    return p.max(axis=1) - p[np.arange(idx.size), idx]


def check_returned_labels(labels, proba, *, classes: Sequence, threshold: float = SUSPECT_THRESHOLD) -> np.ndarray:
    """Suspect mask ``(n,)`` of returned labels: the model disagrees with them beyond ``threshold``.

    ``labels`` ``(n,)`` are the labels annotators gave, ``proba`` ``(n, k)``
    the model's probabilities with columns in the order of ``classes``.

    The disagreement of a row is ``max_c p(c) - p(given)``, in ``[0, 1]``: zero
    when the given label is (one of) the model's top class(es), near one when
    the model is sure of another class. A row is a suspect when its
    disagreement is strictly greater than ``threshold`` (in ``[0, 1]``):
    ``threshold=0`` flags every label that is not the model's top class,
    ``0.8`` (default, :data:`SUSPECT_THRESHOLD`) only labels the model puts far behind another class,
    ``1`` nothing. Labels outside ``classes`` raise :class:`UnknownLabelError`.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {threshold}")
    idx, p = labels_and_proba(labels, proba, classes)
    return label_disagreement(idx, p) > threshold

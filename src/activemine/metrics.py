"""Evaluation metrics for risk control: ROC points, AUC and TPR at a fixed FPR; Cohen's kappa.

Scores here are a model's *decision scores*: **higher means more likely the
positive class** (for a probability model, ``p(positive | x)``). Binary
functions take ``y_true`` ``(n,)`` and ``scores`` ``(n,)``; given scores of
shape ``(n, k)`` they compute the one-vs-rest value of every class (class
``classes[c]`` against the rest, scored by column ``c``) and return the macro
average.

Reading TPR at an exact FPR off the curve
-----------------------------------------
The empirical ROC curve has one point per distinct score threshold, from
``(0, 0)`` to ``(1, 1)``; tied scores make one diagonal step. The FPR asked
for usually falls between two points ``(f0, t0)`` and ``(f1, t1)`` with
``f0 < fpr < f1``; the value is then the linear interpolation
``t0 + (t1 - t0) * (fpr - f0) / (f1 - f0)``, which is the TPR a classifier
reaches by using the stricter threshold and, on a random ``(fpr - f0) / (f1 - f0)``
share of the samples between the two, the looser one, so it is attainable.
When a point lies exactly at ``fpr`` (a vertical run of points), the highest
TPR of that run is taken: the best TPR with FPR at most ``fpr``.

Agreement
---------
:func:`cohen_kappa` is the one kappa of the package: the stopping criteria
compare two models' predictions with it, the annotator report two annotators'
labels. Higher = more agreement; 1 = identical, 0 = chance.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from activemine.errors import InputError, SingleClassError

__all__ = ["cohen_kappa", "roc_auc", "roc_points", "tpr_at_fpr"]


def _binary_inputs(y_true, scores, pos_label) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1:
        raise InputError(f"y_true and scores must be one-dimensional, got shapes {y.shape} and {s.shape}")
    if y.shape != s.shape:
        raise InputError(f"y_true and scores must have the same length, got {y.shape[0]} and {s.shape[0]}")
    if not np.isfinite(s).all():
        raise InputError(f"scores must be finite; found {int((~np.isfinite(s)).sum())} NaN or infinite value(s)")
    positive = y == pos_label
    n_pos = int(positive.sum())
    if n_pos == 0 or n_pos == y.size:
        what = "no" if n_pos == 0 else "only"
        raise SingleClassError(f"y_true holds {what} samples of the positive class {pos_label!r}; ROC needs both")
    return positive, s


def roc_points(y_true, scores, *, pos_label=1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The empirical ROC curve of binary scores.

    ``y_true`` ``(n,)`` labels, ``scores`` ``(n,)`` (higher = more likely
    ``pos_label``). Returns ``(fpr, tpr, thresholds)``, each ``(m + 1,)`` for m
    distinct scores: point ``i >= 1`` predicts positive when
    ``score >= thresholds[i]``; point 0 is ``(0, 0)`` with threshold ``+inf``.
    Both rates are non-decreasing.
    """
    positive, s = _binary_inputs(y_true, scores, pos_label)
    order = np.argsort(-s, kind="stable")
    s, positive = s[order], positive[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each distinct score
    tp = np.cumsum(positive)[last_of_run]
    fp = (last_of_run + 1) - tp
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return fpr, tpr, np.r_[np.inf, s[last_of_run]]


def _tpr_at(fpr_points: np.ndarray, tpr_points: np.ndarray, fpr: float) -> float:
    i = int(np.searchsorted(fpr_points, fpr, side="right")) - 1  # last point with FPR <= fpr: highest TPR there
    if fpr_points[i] == fpr or i == fpr_points.size - 1:
        return float(tpr_points[i])
    f0, f1, t0, t1 = fpr_points[i], fpr_points[i + 1], tpr_points[i], tpr_points[i + 1]
    return float(t0 + (t1 - t0) * (fpr - f0) / (f1 - f0))


def _one_vs_rest(y_true, scores, classes: Sequence | None):
    y = np.asarray(y_true)
    s = np.asarray(scores)
    k = s.shape[1]
    classes = list(range(k)) if classes is None else list(classes)
    if len(classes) != k:
        raise InputError(f"scores have {k} class columns but {len(classes)} classes were given: {classes}")
    unknown = np.setdiff1d(np.unique(y), np.asarray(classes))
    if unknown.size:
        raise InputError(f"y_true has labels {unknown[:10].tolist()} that are not among the classes {classes}")
    return [(y == c, s[:, j]) for j, c in enumerate(classes)]


def tpr_at_fpr(y_true, scores, fpr: float = 0.01, *, pos_label=1, classes: Sequence | None = None) -> float:
    """True-positive rate at false-positive rate ``fpr``, read off the ROC curve by interpolation.

    ``scores`` ``(n,)`` are binary scores (higher = more likely ``pos_label``);
    ``(n, k)`` scores give the one-vs-rest macro average over the k columns,
    which belong to ``classes`` (default ``0..k-1``). See the module docstring
    for how a value between two ROC points is read. In ``[0, 1]``; higher is
    better.
    """
    if not 0.0 <= fpr <= 1.0:
        raise InputError(f"fpr must be in [0, 1], got {fpr}")
    if np.ndim(scores) == 2:
        return float(np.mean([tpr_at_fpr(yc, sc, fpr) for yc, sc in _one_vs_rest(y_true, scores, classes)]))
    f, t, _ = roc_points(y_true, scores, pos_label=pos_label)
    return _tpr_at(f, t, fpr)


def roc_auc(y_true, scores, *, pos_label=1, classes: Sequence | None = None) -> float:
    """Area under the ROC curve by the trapezoidal rule (ties count one half).

    Same inputs as :func:`tpr_at_fpr`; ``(n, k)`` scores give the one-vs-rest
    macro average. In ``[0, 1]``; 0.5 is chance, higher is better.
    """
    if np.ndim(scores) == 2:
        return float(np.mean([roc_auc(yc, sc) for yc, sc in _one_vs_rest(y_true, scores, classes)]))
    f, t, _ = roc_points(y_true, scores, pos_label=pos_label)
    return float(np.sum(np.diff(f) * (t[1:] + t[:-1]) / 2.0))


def cohen_kappa(a, b, n_classes: int | None = None) -> float:
    """Cohen's kappa of two label vectors ``(m,)`` of class indices on the same samples.

    ``(p_o - p_e) / (1 - p_e)``: the observed agreement against the agreement
    expected from each vector's own class frequencies (over ``n_classes``
    classes, default: the largest index + 1). Higher = more agreement; 1 =
    identical, 0 = chance, below 0 = less than chance.

    **Identical vectors give 1.0, also when they hold one class only**, where
    ``p_e = 1`` and the textbook formula is ``0 / 0``: two raters (or two
    models' predictions) that never disagree agree perfectly, and a stopping
    criterion that waits for stable predictions must see them as stable
    (small-text's ``KappaAverage`` does the same; scikit-learn's
    ``cohen_kappa_score`` returns NaN there). Two vectors with no samples give
    NaN: there is nothing to agree on.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 1 or a.shape != b.shape:
        raise InputError(f"kappa needs two label vectors of one length, got shapes {a.shape} and {b.shape}")
    if a.size == 0:
        return float("nan")
    if np.array_equal(a, b):
        return 1.0
    a, b = a.astype(np.int64), b.astype(np.int64)
    if min(a.min(), b.min()) < 0:
        raise InputError(f"kappa needs class indices >= 0, got {min(a.min(), b.min())}")
    k = max(int(a.max()), int(b.max())) + 1 if n_classes is None else int(n_classes)
    observed = float(np.mean(a == b))
    expected = float(np.dot(np.bincount(a, minlength=k), np.bincount(b, minlength=k))) / a.size**2
    return (observed - expected) / (1.0 - expected)  # expected < 1: vectors that differ are not both one class

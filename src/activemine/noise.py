"""Dirty data: find mislabeled samples, estimate the dirty share, keep it under a set level.

Direction, fixed once for this module: **a lower label-quality score means a
sample is more likely mislabeled**. Probabilities have shape ``(n, k)`` with
columns in the order of ``classes`` (``0..k-1`` when ``classes`` is None, in
which case labels are column indices).

The method is confident learning (Northcutt et al., 2021), written from the
paper: out-of-fold probabilities, a per-class threshold ``t_j`` (the mean
probability of class j over the samples labeled j), and a sample is suspect
when its given class is below its threshold while another class is at or
above its own. The estimated dirty share is the off-diagonal mass of the
calibrated confident joint.

Layers: :func:`out_of_fold_proba` -> scores (:func:`label_quality_scores`,
:func:`per_class_thresholds`) -> :func:`find_label_issues` /
:func:`estimate_noise_rate` -> policy (:func:`clean_labels`) ->
:class:`DirtyDataFilter`, HW's dirty-data step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from activemine.errors import InputError, ProbabilityError, SingleClassError, UnknownLabelError
from activemine.models import make_model, predict_proba_aligned, run_parallel
from activemine.scores import check_proba

__all__ = [
    "DIRTY_POLICIES",
    "DirtyDataFilter",
    "DirtyDataReport",
    "NOISE_KINDS",
    "check_returned_labels",
    "clean_labels",
    "estimate_noise_rate",
    "fast_oof_model",
    "find_label_issues",
    "inject_label_noise",
    "label_quality_scores",
    "out_of_fold_proba",
    "per_class_thresholds",
]

NOISE_KINDS = ("uniform", "ambiguous", "ambiguous-top")
DIRTY_POLICIES = ("prune", "review", "off")
QUALITY_METHODS = ("self_confidence", "normalized_margin")


# -- input checks ----------------------------------------------------------------
def _label_indices(labels, classes: Sequence | None, *, k: int | None = None, name: str = "labels") -> np.ndarray:
    """Labels ``(n,)`` -> column indices ``(n,)`` int64 into ``classes`` (or ``0..k-1`` when None)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {labels.shape}")
    if classes is None:
        if labels.size and labels.dtype.kind not in "iu":
            raise UnknownLabelError(
                f"{name} must be column indices 0..{'k-1' if k is None else k - 1} when classes is not given, "
                f"got dtype {labels.dtype} (e.g. {labels[:3].tolist()}); pass classes="
            )
        classes = range(k if k is not None else int(labels.max(initial=-1)) + 1)
    classes = list(np.asarray(classes).tolist())
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise InputError(f"classes must be unique, got {classes}")
    if k is not None and len(classes) != k:
        raise ProbabilityError(f"proba has {k} columns but there are {len(classes)} classes {classes[:20]}")
    out = np.fromiter((index.get(v, -1) for v in labels.tolist()), dtype=np.int64, count=labels.size)
    if (out < 0).any():
        bad = np.unique(labels[out < 0])
        raise UnknownLabelError(f"{name} hold values {bad[:10].tolist()} that are not among the classes {classes[:20]}")
    return out


def _labels_and_proba(labels, proba, classes, *, name: str = "proba") -> tuple[np.ndarray, np.ndarray]:
    p = check_proba(proba, name=name)
    idx = _label_indices(labels, classes, k=p.shape[1])
    if idx.size != p.shape[0]:
        raise InputError(f"labels and {name} must be aligned: got {idx.size} labels and {p.shape[0]} probability rows")
    return idx, p


# -- noise injection (benchmarks, experiments) ------------------------------------
def inject_label_noise(y, rate: float, *, kind: str = "uniform", proba=None, classes: Sequence | None = None,
                       random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Flip ``round(rate * n)`` labels; returns ``(noisy_y, flipped_mask)``, both ``(n,)``.

    * ``kind="uniform"``: the flipped samples are a seeded uniform draw and
      each goes to a uniformly drawn other class.
    * ``kind="ambiguous"`` (ambiguity-correlated): each flipped sample goes
      to its most confusable other class (judged by ``proba``), and a
      sample's chance of being among the flipped is proportional to its
      ambiguity, the probability of that class (a seeded weighted draw
      without replacement, Efraimidis-Spirakis keys ``log(1 - u) / ambiguity``).
      Annotators mostly err on the confusable samples, but not by a hard
      rule, so a noise detector has something to find.
    * ``kind="ambiguous-top"`` (the worst case): the flipped samples are
      exactly the ``round(rate * n)`` most ambiguous ones. The flips are then
      a function of the clean model, so noisy labels agree with any model of
      them near the boundary and no detector finds them (benchmarks/label_noise.py).

    ``proba`` ``(n, k)`` should come from a model trained on clean labels,
    out of fold (in-sample probabilities are over-confident, so the ranking
    degenerates); ties are broken by the seed.

    ``classes`` are the labels of ``proba``'s columns (default: the sorted
    distinct values of ``y``); every class can be a flip target.
    """
    y = np.asarray(y)
    if kind not in NOISE_KINDS:
        raise InputError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    if not 0.0 <= rate < 1.0:
        raise InputError(f"noise rate must be in [0, 1), got {rate}")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    k = classes.size
    if k < 2:
        raise SingleClassError(f"cannot flip labels with fewer than two classes, got {classes.tolist()}")
    idx = _label_indices(y, classes, k=k, name="y")
    n = idx.size
    n_flip = int(round(rate * n))
    rng = np.random.default_rng(random_state)
    if kind == "uniform":
        rows = np.sort(rng.choice(n, size=n_flip, replace=False))
        new = (idx[rows] + rng.integers(1, k, size=n_flip)) % k  # never the given class
    else:
        if proba is None:
            raise InputError("kind='ambiguous' needs proba (n, k) from a model trained on clean labels")
        idx, p = _labels_and_proba(y, proba, classes)
        other = p.copy()
        other[np.arange(n), idx] = -np.inf  # (n, k): every class but the given one
        target = other.argmax(axis=1)  # (n,) most confusable other class
        ambiguity = other[np.arange(n), target]  # (n,) its probability; higher = more ambiguous
        u = rng.random(n)  # (n,) in [0, 1)
        if kind == "ambiguous":
            # weighted draw without replacement: the n_flip largest keys log(1 - u) / w
            with np.errstate(divide="ignore"):
                key = np.log1p(-u) / np.maximum(ambiguity, 1e-12)  # (n,) <= 0
            rows = np.sort(np.lexsort((u, -key))[:n_flip])
        else:
            rows = np.sort(np.lexsort((u, -ambiguity))[:n_flip])
        new = target[rows]
    noisy = y.copy()
    noisy[rows] = classes[new]
    flipped = np.zeros(n, dtype=bool)
    flipped[rows] = True
    return noisy, flipped


# -- returned labels (labeling campaigns) -----------------------------------------
def check_returned_labels(labels, proba, *, classes: Sequence, threshold: float = 0.5) -> np.ndarray:
    """Flag returned labels that the model disagrees with beyond ``threshold``; ``(n,)`` bool.

    ``labels`` ``(n,)`` are the labels annotators gave, ``proba`` ``(n, k)``
    the model's probabilities with columns in the order of ``classes``.

    The disagreement of a row is ``max_c p(c) - p(given)``, in ``[0, 1]``: zero
    when the given label is (one of) the model's top class(es), near one when
    the model is sure of another class. A row is flagged when its disagreement
    is strictly greater than ``threshold`` (in ``[0, 1]``): ``threshold=0``
    flags every label that is not the model's top class, ``0.5`` (default)
    only labels the model puts well behind another class, ``1`` nothing.
    Labels outside ``classes`` raise :class:`UnknownLabelError`.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"threshold must be in [0, 1], got {threshold}")
    idx, p = _labels_and_proba(labels, proba, classes)
    disagreement = p.max(axis=1) - p[np.arange(idx.size), idx]  # (n,)
    return disagreement > threshold


# -- out-of-fold probabilities ----------------------------------------------------
def fast_oof_model(*, random_state: int | None = 0):
    """A cheap LightGBM for out-of-fold probabilities (about a tenth of the default model's cost).

    One thread: on a busy two-core machine OpenMP threads fighting for cores made a fit ten times slower.
    """
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=40, learning_rate=0.2, num_leaves=15, min_child_samples=10, subsample=0.7, subsample_freq=1,
        colsample_bytree=0.3, random_state=random_state, n_jobs=1, verbose=-1,
    )  # fmt: skip


def out_of_fold_proba(estimator, X, y, folds: int = 5, *, seed: int = 0, classes: Sequence | None = None,
                      n_jobs: int | None = None) -> np.ndarray:  # fmt: skip
    """Out-of-fold class probabilities ``(n, k)``, columns in the order of ``classes``.

    Stratified ``folds``-fold split, shuffled by ``seed``; each row is predicted
    by a model that never saw it. ``estimator`` is a model name, ``"fast"``
    (:func:`fast_oof_model`) or a scikit-learn classifier; fold f's model gets
    seed ``seed + f``. ``classes`` defaults to the sorted distinct labels.
    Every class needs at least ``folds`` rows. Folds are fitted ``n_jobs`` at
    a time (threads; None = one per CPU); the result does not depend on it.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != y.size:
        raise InputError(f"X must have shape (n, d) aligned with y: got X {X.shape} and {y.size} labels")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    idx = _label_indices(y, classes, k=classes.size, name="y")
    if int(folds) != folds or folds < 2:
        raise InputError(f"folds must be an integer >= 2, got {folds}")
    counts = np.bincount(idx, minlength=classes.size)
    present = counts[counts > 0]
    if present.size < 2:
        raise SingleClassError(f"out-of-fold probabilities need at least two classes, got {np.unique(y).tolist()}")
    if present.min() < folds:
        small = classes[(counts > 0) & (counts < folds)].tolist()
        raise InputError(f"every class needs at least folds={folds} rows for stratified folds; classes {small} have fewer")
    splits = list(StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed).split(X, idx))

    def fold(f: int) -> np.ndarray:
        train, test = splits[f]
        est = fast_oof_model(random_state=seed + f) if estimator == "fast" else make_model(estimator, random_state=seed + f)
        est.fit(X[train], y[train])
        return predict_proba_aligned(est, X[test], classes.tolist())

    out = np.zeros((y.size, classes.size), dtype=np.float64)
    for (_, test), proba in zip(splits, run_parallel(n_jobs, [(fold, (f,)) for f in range(len(splits))])):
        out[test] = proba
    return out


# -- label quality ----------------------------------------------------------------
def label_quality_scores(labels, proba, *, classes: Sequence | None = None, method: str = "self_confidence") -> np.ndarray:
    """Label quality ``(n,)`` in ``[0, 1]``; **lower = more likely mislabeled**.

    ``self_confidence`` is ``p(given)``; ``normalized_margin`` is
    ``(p(given) - max_{c != given} p(c) + 1) / 2``.
    """
    if method not in QUALITY_METHODS:
        raise InputError(f"unknown label-quality method {method!r}; expected one of {QUALITY_METHODS}")
    idx, p = _labels_and_proba(labels, proba, classes)
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
    idx, p = _labels_and_proba(labels, proba, classes)
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


def find_label_issues(labels, oof_proba, *, classes: Sequence | None = None, ids=None,
                      method: str = "self_confidence") -> np.ndarray:  # fmt: skip
    """Ids of suspect samples, most likely mislabeled first; ``(n_suspects,)``.

    ``oof_proba`` ``(n, k)`` must be out of fold. A sample is suspect when its
    given class is below that class's threshold (:func:`per_class_thresholds`)
    and either

    * another class c reaches its own threshold ``t_c`` (confident learning), or
    * another class is more probable than the given one, and the sample is
      among the ``round(n * estimate_noise_rate)`` such samples with the
      lowest normalized margin.

    The second clause catches flips between confusable classes, whose true
    class is the model's top class without reaching its (high) threshold; the
    estimated dirty count bounds it so clean but misclassified samples are not
    all flagged. Suspects are ranked by label quality (``method``, lower
    first), ties by the smaller id. ``ids`` ``(n,)`` default to row indices.
    """
    idx, p = _labels_and_proba(labels, oof_proba, classes, name="oof_proba")
    ids = _row_ids(ids, idx.size)
    quality = label_quality_scores(idx, p, method=method)
    rows = np.flatnonzero(_suspects(idx, p, ids))
    return ids[rows[np.lexsort((ids[rows], quality[rows]))]]


def _suspects(idx: np.ndarray, p: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Suspect mask ``(n,)`` of :func:`find_label_issues`."""
    thresholds = per_class_thresholds(idx, p)
    strict, counted_as = _confident_class(idx, p, thresholds)
    n = idx.size
    given = p[np.arange(n), idx]
    wide = np.flatnonzero((given < thresholds[idx]) & (p.argmax(axis=1) != idx))
    n_dirty = int(round(_calibrated_noise(idx, p, counted_as) * n))
    # the margin to the winning class separates flips from merely ambiguous samples better than p(given)
    margin = label_quality_scores(idx, p, method="normalized_margin")
    wide = wide[np.lexsort((ids[wide], margin[wide]))][:n_dirty]
    out = strict.copy()
    out[wide] = True
    return out


def _row_ids(ids, n: int) -> np.ndarray:
    if ids is None:
        return np.arange(n)
    from activemine.selection import check_ids

    ids = check_ids(ids)
    if ids.size != n:
        raise InputError(f"ids and labels must be aligned: got {ids.size} ids and {n} labels")
    return ids


def _calibrated_noise(idx: np.ndarray, p: np.ndarray, counted_as: np.ndarray) -> float:
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


def estimate_noise_rate(labels, oof_proba, *, classes: Sequence | None = None) -> float:
    """Estimated share of mislabeled samples, in ``[0, 1]``.

    The off-diagonal mass of the confident joint (given class x the class a
    sample is confidently in), each given class's row calibrated to its size.
    """
    idx, p = _labels_and_proba(labels, oof_proba, classes, name="oof_proba")
    _, counted_as = _confident_class(idx, p, per_class_thresholds(idx, p))
    return _calibrated_noise(idx, p, counted_as)


# -- policy -----------------------------------------------------------------------
@dataclass(frozen=True)
class DirtyDataReport:
    """What the dirty-data step found and decided, row-aligned with the labeled set.

    ``keep``, ``suspect`` ``(n,)`` bool; ``action`` ``(n,)`` ``"drop"``,
    ``"review"`` or ``"keep"``; ``label_quality`` ``(n,)`` (lower = more
    likely mislabeled); ``suggested`` ``(n,)`` column index of the class a
    suspect more likely belongs to (the class it is confidently in, else the
    model's top class; the given class for the rest); the estimated
    dirty share before and after the drops; ``extra`` holds the cost of the
    step when :class:`DirtyDataFilter` made it.
    """

    policy: str
    keep: np.ndarray
    suspect: np.ndarray
    action: np.ndarray
    label_quality: np.ndarray
    suggested: np.ndarray
    dirty_share_before: float
    dirty_share_after: float
    max_dirty: float
    extra: dict = field(default_factory=dict)

    @property
    def n_dropped(self) -> int:
        return int((~self.keep).sum())

    @property
    def n_suspect(self) -> int:
        return int(self.suspect.sum())

    def summary(self) -> dict:
        """Counts and shares as plain numbers (for logs and JSON)."""
        return {
            "policy": self.policy, "n": int(self.keep.size), "suspects": self.n_suspect, "dropped": self.n_dropped,
            "dirty_share_before": self.dirty_share_before, "dirty_share_after": self.dirty_share_after,
            "max_dirty": self.max_dirty, **self.extra,
        }  # fmt: skip


def clean_labels(labels, oof_proba, *, policy: str = "prune", max_dirty: float = 0.02,
                 max_class_fraction: float = 0.10, classes: Sequence | None = None, ids=None,
                 method: str = "self_confidence") -> DirtyDataReport:  # fmt: skip
    """Apply a dirty-data policy to a labeled set given out-of-fold probabilities ``(n, k)``.

    * ``prune``: drop suspects, most suspect first (label quality, ties by
      id), until the estimated dirty share is at most ``max_dirty``, never
      dropping more than ``max_class_fraction`` of any given class; the
      suspects left get ``"review"``. The share after assumes every dropped
      suspect was dirty: ``(D - dropped) / (n - dropped)`` with D the
      estimated dirty count, so it may stay above ``max_dirty`` when the cap
      or the suspects run out.
      The default cap of 10% is low on purpose: on Fashion-MNIST, dropping a
      quarter of the confusable classes removed hard but correct samples and
      cost more test TPR than the noise did (benchmarks/label_noise.py).
    * ``review``: drop nothing; every suspect gets ``"review"``.
    * ``off``: keep and mark everything ``"keep"`` (the estimate is still made).
    """
    if policy not in DIRTY_POLICIES:
        raise InputError(f"unknown dirty-data policy {policy!r}; expected one of {DIRTY_POLICIES}")
    if not 0.0 <= max_dirty < 1.0:
        raise InputError(f"max_dirty must be in [0, 1), got {max_dirty}")
    if not 0.0 <= max_class_fraction <= 1.0:
        raise InputError(f"max_class_fraction must be in [0, 1], got {max_class_fraction}")
    idx, p = _labels_and_proba(labels, oof_proba, classes, name="oof_proba")
    n = idx.size
    ids = _row_ids(ids, n)
    _, counted_as = _confident_class(idx, p, per_class_thresholds(idx, p))
    before = _calibrated_noise(idx, p, counted_as)
    quality = label_quality_scores(idx, p, method=method)
    suspect = _suspects(idx, p, ids)
    elsewhere = np.where((counted_as >= 0) & (counted_as != idx), counted_as, p.argmax(axis=1))
    suggested = np.where(suspect, elsewhere, idx)

    keep = np.ones(n, dtype=bool)
    if policy == "prune" and n:
        dirty = before * n
        need = int(np.ceil(max(0.0, dirty - max_dirty * n) / (1.0 - max_dirty) - 1e-9))
        rows = np.flatnonzero(suspect)
        rows = rows[np.lexsort((ids[rows], quality[rows]))]
        cap = np.floor(max_class_fraction * np.bincount(idx, minlength=p.shape[1])).astype(np.int64)
        # rank of each suspect within its given class, in drop order: the cap allows the first cap[c]
        rank = np.zeros(rows.size, dtype=np.int64)
        for c in np.unique(idx[rows]):
            in_c = idx[rows] == c
            rank[in_c] = np.arange(in_c.sum())
        allowed = rows[rank < cap[idx[rows]]]
        keep[allowed[:need]] = False
    dropped = int((~keep).sum())
    after = max(0.0, before * n - dropped) / max(n - dropped, 1)
    action = np.full(n, "keep", dtype=object)
    if policy != "off":
        action[suspect] = "review"
    action[~keep] = "drop"
    return DirtyDataReport(policy, keep, suspect, action.astype(str), quality, suggested, before, after, max_dirty)


class DirtyDataFilter:
    """HW's dirty-data step: out-of-fold probabilities, then :func:`clean_labels`.

    ``__call__(X, y, *, random_state)`` returns the keep mask ``(n,)`` and
    leaves ``report_`` (a :class:`DirtyDataReport`, or None when skipped),
    ``n_fits_`` (out-of-fold model fits) and ``seconds_``. The out-of-fold
    model defaults to ``"fast"`` with 3 folds so the step costs about a third
    of one full model fit. The step is skipped (everything kept, ``report_``
    None) when a class has fewer than ``min_per_class`` rows: out-of-fold
    probabilities from a handful of rows per class would flag at random.
    """

    def __init__(self, *, policy: str = "prune", max_dirty: float = 0.02, model="fast", folds: int = 3,
                 max_class_fraction: float = 0.10, method: str = "self_confidence", min_per_class: int = 5):  # fmt: skip
        if policy not in DIRTY_POLICIES:
            raise InputError(f"unknown dirty-data policy {policy!r}; expected one of {DIRTY_POLICIES}")
        if not 0.0 <= max_dirty < 1.0:
            raise InputError(f"max_dirty must be in [0, 1), got {max_dirty}")
        self.policy = policy
        self.max_dirty = max_dirty
        self.model = model
        self.folds = folds
        self.max_class_fraction = max_class_fraction
        self.method = method
        self.min_per_class = min_per_class

    def __call__(self, X, y, *, random_state: int) -> np.ndarray:
        started = time.perf_counter()
        y = np.asarray(y)
        self.report_, self.n_fits_ = None, 0
        _, counts = np.unique(y, return_counts=True)
        folds = min(self.folds, int(counts.min()))
        if self.policy == "off" or counts.size < 2 or folds < 2 or counts.min() < self.min_per_class:
            self.seconds_ = time.perf_counter() - started
            return np.ones(y.size, dtype=bool)
        proba = out_of_fold_proba(self.model, X, y, folds, seed=random_state)
        self.n_fits_ = folds
        report = clean_labels(y, proba, policy=self.policy, max_dirty=self.max_dirty, classes=np.unique(y),
                              max_class_fraction=self.max_class_fraction, method=self.method)  # fmt: skip
        self.seconds_ = time.perf_counter() - started
        self.report_ = replace(report, extra={"oof_fits": folds, "seconds": self.seconds_})
        return report.keep.copy()

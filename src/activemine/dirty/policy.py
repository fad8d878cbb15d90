"""The prune/review policy: what to do with suspects, and HW's dirty-data step.

Vocabulary as in :mod:`activemine.dirty.detect`: **dirty** labels are wrong
ones, the **dirty share** their share, a **suspect** a sample the detection
doubts. Actions per row: ``"drop"`` (left out of training), ``"review"``
(kept, worth a second look), ``"keep"``.

Which suspects to drop (:func:`clean_labels`): the most suspect first, until
the estimated dirty share is at most ``max_dirty``, at most 10% of a class.
Whether to drop them at all is the **adaptive** rule of
:class:`DirtyDataFilter`: the drop is checked on held-out labels
(:func:`nested_held_out_check`). The check draws a **fresh** seeded fold split
and repeats the detection inside each of its training folds, from those rows
alone (a drop chosen from every row's out-of-fold probabilities keeps the rows
that agree with the rest of the data, held-out rows included, and so grades
itself with its own evidence), fits the models of each fold with and without
the rows that fold's detection would drop, and scores both sets of held-out
probabilities against the given labels (AUC, one-vs-rest macro). The drop is
kept only when it ranks the held-out labels better by more than ``z_drop``
paired-bootstrap standard errors (2.33: one-sided 1%). Wrong labels in the
evaluation hurt both models alike, so a model closer to the truth still wins
on them; on clean labels the drop removes hard but correct samples and does
not win. ``rule="target"`` is the older rule: always drop. With
``soften=True``, :class:`DirtyDataFilter` first checks soft labels
(:mod:`activemine.dirty.soft`) on every row and proposes no drop when they win.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from activemine.dirty._labels import labels_and_proba, row_ids
from activemine.dirty.detect import _calibrated_dirty, _confident_class, _suspects, _thresholds, label_quality_scores
from activemine.dirty.heldout import N_BOOTSTRAP, Z_DROP, check_drop, check_fold_seed
from activemine.dirty.oof import HEAD_MODEL, check_oof_method, fold_of, network_embeddings, out_of_fold_proba
from activemine.dirty.soft import ALPHA, accepts_sample_weight, choose_soft_targets
from activemine.errors import InputError

__all__ = [
    "DIRTY_POLICIES",
    "DIRTY_RULES",
    "DirtyDataFilter",
    "DirtyDataReport",
    "check_drop",
    "clean_labels",
    "held_out_check",
    "nested_held_out_check",
]

DIRTY_POLICIES = ("prune", "review", "off")
DIRTY_RULES = ("adaptive", "target")


@dataclass(frozen=True)
class DirtyDataReport:
    """What the dirty-data step found and decided, row-aligned with the labeled set.

    ``keep``, ``suspect`` ``(n,)`` bool; ``action`` ``(n,)`` ``"drop"``,
    ``"review"`` or ``"keep"``; ``label_quality`` ``(n,)`` (lower = more
    likely mislabeled); ``suggested`` ``(n,)`` column index of the class a
    suspect more likely belongs to (the class it is confidently in, else the
    model's top class; the given class for the rest); the estimated dirty
    share before and after the drops; ``dirty``: whether the drop was made
    (the adaptive rule's verdict; ``gain`` and ``z`` are its held-out AUC gain and
    its paired-bootstrap z, NaN when not checked); ``extra`` holds the cost of the step when :class:`DirtyDataFilter` made it.
    ``soft_targets`` ``(n, k)``: the targets to train the kept rows on when the
    soft-label check chose them (:mod:`activemine.dirty.soft`), else None;
    ``soft_gain`` and ``soft_z`` its evidence (NaN when not checked), on
    ``soft_splits`` fresh fold splits (0 when not checked; 2 when the first was unsure).
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
    rule: str = "target"
    dirty: bool = True
    gain: float = float("nan")
    z: float = float("nan")
    extra: dict = field(default_factory=dict)
    soft_targets: np.ndarray | None = None
    soft_gain: float = float("nan")
    soft_z: float = float("nan")
    soft_splits: int = 0

    @property
    def n_dropped(self) -> int:
        return int((~self.keep).sum())

    @property
    def n_suspect(self) -> int:
        return int(self.suspect.sum())

    def summary(self) -> dict:
        """Counts and shares as plain numbers (for logs and JSON)."""
        return {
            "policy": self.policy,
            "rule": self.rule,
            "n": int(self.keep.size),
            "suspects": self.n_suspect,
            "dropped": self.n_dropped,
            "dirty": self.dirty,
            "gain": self.gain,
            "z": self.z,
            "dirty_share_before": self.dirty_share_before,
            "dirty_share_after": self.dirty_share_after,
            "max_dirty": self.max_dirty,
            "softened": self.soft_targets is not None,
            "soft_gain": self.soft_gain,
            "soft_z": self.soft_z,
            "soft_splits": self.soft_splits,
            **self.extra,
        }


def _check(policy: str, rule: str, max_dirty: float, max_class_fraction: float) -> None:
    if policy not in DIRTY_POLICIES:
        raise InputError(f"unknown dirty-data policy {policy!r}; expected one of {DIRTY_POLICIES}")
    if rule not in DIRTY_RULES:
        raise InputError(f"unknown dirty-data rule {rule!r}; expected one of {DIRTY_RULES}")
    if not 0.0 <= max_dirty < 1.0:
        raise InputError(f"max_dirty must be in [0, 1), got {max_dirty}")
    if not 0.0 <= max_class_fraction <= 1.0:
        raise InputError(f"max_class_fraction must be in [0, 1], got {max_class_fraction}")


def clean_labels(
    labels,
    oof_proba,
    *,
    policy: str = "prune",
    max_dirty: float = 0.02,
    max_class_fraction: float = 0.10,
    classes: Sequence | None = None,
    ids=None,
    method: str = "self_confidence",
) -> DirtyDataReport:
    """Apply a dirty-data policy to a labeled set given out-of-fold probabilities ``(n, k)``.

    * ``prune``: drop suspects whose most probable class is not the given one (on a
      rare class, confident learning's low threshold for it also flags hard but
      correct rows of the common class; dropping those moves the boundary and
      cost 2 points of TPR at 1% FPR on the rare set with class noise,
      benchmarks/label_efficiency.py), most suspect first (label quality, ties by id), until the
      estimated dirty share is at most ``max_dirty``, never dropping more than
      ``max_class_fraction`` of any given class; the suspects left get
      ``"review"``. The share after assumes every dropped suspect was dirty:
      ``(D - dropped) / (n - dropped)`` with D the estimated dirty count.
      The default cap of 10% is low on purpose: on Fashion-MNIST, dropping a
      quarter of the confusable classes removed hard but correct samples and
      cost more test TPR than the noise did (benchmarks/label_noise.py).
      This is the proposal; :func:`check_drop` decides on held-out labels
      whether to make it (the adaptive rule, :class:`DirtyDataFilter`).
    * ``review``: drop nothing; every suspect gets ``"review"``.
    * ``off``: keep and mark everything ``"keep"`` (the estimates are still made).
    """
    _check(policy, "target", max_dirty, max_class_fraction)
    idx, p = labels_and_proba(labels, oof_proba, classes, name="oof_proba")
    n = idx.size
    ids = row_ids(ids, n)
    _, counted_as = _confident_class(idx, p, _thresholds(idx, p))
    before = _calibrated_dirty(idx, p, counted_as)
    quality = label_quality_scores(idx, p, method=method)
    suspect = _suspects(idx, p, ids)
    elsewhere = np.where((counted_as >= 0) & (counted_as != idx), counted_as, p.argmax(axis=1))
    suggested = np.where(suspect, elsewhere, idx)

    keep = np.ones(n, dtype=bool)
    if policy == "prune" and n:
        need = int(np.ceil(max(0.0, before * n - max_dirty * n) / (1.0 - max_dirty) - 1e-9))
        # only suspects the model places in another class: a rare class's low threshold makes confident
        # learning flag hard but correct rows of the common class, and dropping them moves the boundary
        rows = np.flatnonzero(suspect & (p.argmax(axis=1) != idx))
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


def held_out_check(
    estimator,
    X,
    y,
    keep,
    *,
    folds: int = 3,
    seed: int = 0,
    classes: Sequence | None = None,
    n_jobs: int | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
) -> tuple[float, float]:
    """Held-out gain of dropping the rows ``~keep`` ``(n,)``: ``(gain, z)`` as in :func:`check_drop`.

    ``seed`` is the fold seed of the detection that chose the rows; the check
    fits ``estimator`` on a fresh stratified split (:func:`check_fold_seed`),
    ``folds`` models with every row and ``folds`` without the rows to drop
    (paired: same folds, same model seeds), so no held-out row is graded by
    the model whose out-of-fold probabilities proposed it. ``2 * folds`` fits.
    """
    keep = np.asarray(keep, dtype=bool)
    y = np.asarray(y)
    if keep.shape != y.shape:
        raise InputError(f"keep must have shape {y.shape}, got {keep.shape}")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    return _paired_check(
        estimator, X, y, keep, folds=folds, seed=seed, classes=classes, n_jobs=n_jobs, n_bootstrap=n_bootstrap
    )


def _paired_check(estimator, X, y, train_mask, *, folds, seed, classes, n_jobs, n_bootstrap) -> tuple[float, float]:
    """``(gain, z)`` of models fitted without the rows ``train_mask`` leaves out (``(n,)``, or ``(folds, n)``
    one per fold) against models fitted on every row, on the fresh split of :func:`check_fold_seed`; paired:
    same folds, same model seeds. ``2 * folds`` fits."""
    common = dict(seed=check_fold_seed(seed), classes=classes, n_jobs=n_jobs)
    proba_all = out_of_fold_proba(estimator, X, y, folds, **common)
    proba_dropped = out_of_fold_proba(estimator, X, y, folds, train_mask=train_mask, **common)
    return check_drop(np.searchsorted(classes, y), proba_all, proba_dropped, seed=seed, n_bootstrap=n_bootstrap)


def nested_held_out_check(
    estimator,
    X,
    y,
    propose: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, int]],
    *,
    folds: int = 3,
    seed: int = 0,
    classes: Sequence | None = None,
    n_jobs: int | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
) -> tuple[float, float, int]:
    """Held-out gain of detecting and dropping suspects, the detection made inside each training fold:
    ``(gain, z, fits)``.

    As :func:`held_out_check`, but the rows to drop from fold ``f``'s training rows are chosen by
    ``propose(X_train, y_train, seed)`` (a bool keep mask over them and the fits it made) from those rows
    alone, so no held-out label helps choose what is dropped. Choosing the drop from every row's out-of-fold
    probabilities leaks: the kept rows are those that agree with the rest of the data, held-out rows
    included, and the check then favours dropping even on correct labels. In the label-efficiency matrix that leak fired on
    clean labels (z 2.35 to 4.22 for drops of only correct labels, docs/dirty-data.md). ``fits``: the
    ``2 * folds`` check fits and those of every ``propose``.
    """
    y = np.asarray(y)
    X = np.asarray(X)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    fresh = check_fold_seed(seed)
    fold = fold_of(np.searchsorted(classes, y), folds, seed=fresh)  # the split _paired_check fits on
    rows = np.arange(y.size)
    mask = np.ones((int(folds), y.size), dtype=bool)
    fits = 2 * int(folds)
    for f in range(int(folds)):
        train = rows[fold != f]
        keep, made = propose(X[train], y[train], fresh + 1009 * (f + 1))
        fits += int(made)
        mask[f, train[~np.asarray(keep, dtype=bool)]] = False
    gain, z = _paired_check(
        estimator, X, y, mask, folds=folds, seed=seed, classes=classes, n_jobs=n_jobs, n_bootstrap=n_bootstrap
    )
    return gain, z, fits


class DirtyDataFilter:
    """HW's dirty-data step: out-of-fold probabilities, then :func:`clean_labels`.

    ``__call__(X, y, *, random_state, ids=None, progress=None)`` (``ids`` break
    ties between equally suspect rows, as in :func:`clean_labels`; ``progress``
    is called with the number of model fits each stage made) returns the keep mask ``(n,)`` and
    leaves ``report_`` (a :class:`DirtyDataReport`, or None when skipped),
    ``n_fits_`` (out-of-fold model fits) and ``seconds_``. The out-of-fold
    model defaults to ``"fast"`` with 3 folds so the step costs about a third
    of one full model fit. With ``rule="adaptive"`` (default) and a proposed
    drop, the drop is made only when it wins on held-out labels of a fresh
    fold split, the detection repeated inside each training fold
    (:func:`nested_held_out_check`, by more than ``z_drop``): ``check_folds *
    (folds + 2)`` more small fits, none when nothing is proposed. The step is skipped (everything kept,
    ``report_`` None) when a class has fewer than ``min_per_class`` rows:
    out-of-fold probabilities from a handful of rows per class would flag at
    random. ``n_jobs`` threads in all for the out-of-fold fits (None = the CPUs available).

    ``soften=True`` (with ``policy="prune"``) first checks soft labels on
    every row (:func:`activemine.dirty.soft.soft_label_check`, with
    ``soft_model``, the model that will be trained on them): when they win by
    more than ``z_drop``, ``report_.soft_targets`` holds the targets to train
    on and nothing is dropped (under either rule); otherwise the drop is
    proposed and checked as above. Soft labels come first because they are
    the remedy that paid: on Fashion-MNIST with 10% ambiguity-weighted noise a
    checked drop of 1,179-1,307 rows (70% of them wrong) left TPR at 1% FPR
    where it was (41.03 against 41.08, 5 seeds), and soft labels checked on
    the rows it kept never won (docs/dirty-data.md, "Soft labels").
    ``check_folds * (2 + 2)`` more fits of ``soft_model``, twice that when
    the first split's z is within ``Z_UNSURE`` of ``z_drop`` and a second
    split decides (:func:`activemine.dirty.soft.choose_soft_targets`).

    ``oof_method`` (:data:`activemine.dirty.oof.OOF_METHODS`): ``"refit"``
    (default) fits ``model`` on the features as above. ``"embedding-head"``
    takes ``model`` to be a network, fits it once on every row (or takes the
    ``embeddings`` ``(n, e)`` given to ``__call__``, the penultimate layer of
    a network already trained on these rows: then no network is fitted), and
    runs the whole step on those embeddings with the head
    (:data:`activemine.dirty.oof.HEAD_MODEL`) in place of ``model`` and of
    ``soft_model``: the out-of-fold fits, the held-out check of a drop and the
    soft-label check are all logistic regressions. (The held-out check repeats
    the detection inside each training fold, but on embeddings of a network
    that saw every row's label: nested for the head, not for the network,
    which ``"refit"`` with a network model would retrain per fold.)
    ``network_fits_`` counts
    the network fits (0 or 1); ``report_.extra`` holds ``oof_method``,
    ``oof_fits`` (fits of the out-of-fold model or head), ``network_fits``
    and ``seconds``.
    """

    def __init__(
        self,
        *,
        policy: str = "prune",
        rule: str = "adaptive",
        max_dirty: float = 0.02,
        model="fast",
        folds: int = 3,
        check_folds: int | None = None,
        max_class_fraction: float = 0.10,
        z_drop: float = Z_DROP,
        method: str = "self_confidence",
        min_per_class: int = 5,
        soften: bool = False,
        soft_model="lightgbm",
        alpha: float = ALPHA,
        n_jobs: int | None = None,
        oof_method: str = "refit",
    ):
        _check(policy, rule, max_dirty, max_class_fraction)
        check_oof_method(oof_method, None if oof_method == "refit" else model)
        for name, value in (("folds", folds), ("check_folds", folds if check_folds is None else check_folds)):
            if isinstance(value, bool) or int(value) != value or value < 2:
                raise InputError(f"{name} must be an integer >= 2, got {value!r}")
        self.policy = policy
        self.rule = rule
        self.max_dirty = max_dirty
        self.model = model
        self.folds = folds
        self.check_folds = check_folds
        self.max_class_fraction = max_class_fraction
        self.z_drop = z_drop
        self.method = method
        self.min_per_class = min_per_class
        self.soften = bool(soften)
        self.soft_model = soft_model
        if not 0.0 <= alpha <= 1.0:
            raise InputError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.n_jobs = n_jobs
        self.oof_method = oof_method

    def __call__(
        self,
        X,
        y,
        *,
        random_state: int,
        ids=None,
        progress: Callable[[int], None] | None = None,
        embeddings=None,
    ) -> np.ndarray:
        started = time.perf_counter()
        y = np.asarray(y)
        self.report_, self.n_fits_, self.network_fits_ = None, 0, 0
        counts = np.unique(y, return_counts=True)[1]
        folds = self._folds(counts)
        if self.policy == "off" or folds is None:
            self.seconds_ = time.perf_counter() - started
            return np.ones(y.size, dtype=bool)
        classes = np.unique(y)
        X, model, soft_model = self._inputs(X, y, random_state, embeddings)
        report = self._detect(model, X, y, folds, random_state, ids=ids)
        self.n_fits_ = folds
        tick = progress or (lambda n: None)
        tick(folds)
        report = replace(report, rule=self.rule, dirty=report.n_dropped > 0)
        if (
            self.soften and self.policy == "prune" and accepts_sample_weight(soft_model)
        ):  # soft labels first: they keep every row (class docstring)
            report, fits = self._soften(X, y, report, classes, folds, random_state, soft_model)
            self.n_fits_ += fits
            tick(fits)
            if report.soft_targets is not None:
                return self._done(self._undrop(report), started)
        if self.rule == "adaptive" and report.n_dropped:
            check_folds = folds if self.check_folds is None else min(self.check_folds, int(counts.min()))
            gain, z, fits = nested_held_out_check(
                model,
                X,
                y,
                functools.partial(self._proposal, model=model),
                folds=check_folds,
                seed=random_state,
                classes=classes,
                n_jobs=self.n_jobs,
            )
            self.n_fits_ += fits
            tick(fits)
            report = replace(report, dirty=bool(z > self.z_drop), gain=gain, z=z)
            if not report.dirty:  # the drop does not pay on held-out labels: keep every row, suspects for review
                report = self._undrop(report)
        return self._done(report, started)

    def _inputs(self, X, y, random_state: int, embeddings) -> tuple:
        """``(features, out-of-fold model, soft model)`` of the step: the given ones, or with
        ``"embedding-head"`` the network's embeddings and the head for both models."""
        if self.oof_method == "refit":
            return X, self.model, self.soft_model
        if embeddings is None:
            embeddings = network_embeddings(self.model, X, y, random_state=random_state, n_jobs=self.n_jobs)
            self.network_fits_ = 1
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or embeddings.shape[0] != y.size:
            raise InputError(f"embeddings must have shape ({y.size}, e), one row per label; got {embeddings.shape}")
        if not np.all(np.isfinite(embeddings)):
            raise InputError(f"embeddings hold {int((~np.isfinite(embeddings)).sum())} values that are not finite")
        return embeddings, HEAD_MODEL, HEAD_MODEL

    def _proposal(self, X, y, seed: int, *, model) -> tuple[np.ndarray, int]:
        """The drop this step proposes from ``X, y`` alone: the keep mask and the fits it cost (the
        detection of :meth:`__call__` with its out-of-fold ``model``, on a training fold of the held-out
        check)."""
        folds = self._folds(np.unique(y, return_counts=True)[1])
        if folds is None:
            return np.ones(y.size, dtype=bool), 0
        return self._detect(model, X, y, folds, seed).keep, folds

    def _folds(self, counts: np.ndarray) -> int | None:
        """The detection's fold count for labels whose class counts are ``counts``, or None when the step is
        skipped: fewer than two classes, or a class with fewer than ``min_per_class`` (or 2) rows."""
        folds = min(self.folds, int(counts.min()))
        if counts.size < 2 or folds < 2 or counts.min() < self.min_per_class:
            return None
        return folds

    def _detect(self, model, X, y: np.ndarray, folds: int, seed: int, *, ids=None) -> DirtyDataReport:
        """The proposal of the policy from ``folds``-fold out-of-fold probabilities of ``model`` (``folds`` fits)."""
        classes = np.unique(y)
        proba = out_of_fold_proba(model, X, y, folds, seed=seed, n_jobs=self.n_jobs, classes=classes)
        return clean_labels(
            y,
            proba,
            policy=self.policy,
            max_dirty=self.max_dirty,
            classes=classes,
            ids=ids,
            max_class_fraction=self.max_class_fraction,
            method=self.method,
        )

    def _undrop(self, report: DirtyDataReport) -> DirtyDataReport:
        """The report with every row kept and the suspects marked for review (no drop made)."""
        action = np.where(report.suspect, "review", "keep").astype(str)
        keep = np.ones(report.keep.size, dtype=bool)
        return replace(report, keep=keep, action=action, dirty=False, dirty_share_after=report.dirty_share_before)

    def _done(self, report: DirtyDataReport, started: float) -> np.ndarray:
        self.seconds_ = time.perf_counter() - started
        extra = {
            "oof_method": self.oof_method,
            "oof_fits": self.n_fits_,
            "network_fits": self.network_fits_,
            "seconds": self.seconds_,
        }
        self.report_ = replace(report, extra=extra)
        return self.report_.keep.copy()

    def _soften(
        self, X, y, report: DirtyDataReport, classes: np.ndarray, folds: int, seed: int, soft_model
    ) -> tuple[DirtyDataReport, int]:
        """The report with soft targets for every row when they win on held-out labels (else their evidence only),
        and the model fits the check made."""
        check_folds = folds if self.check_folds is None else self.check_folds
        choice = choose_soft_targets(
            soft_model,
            X,
            y,
            alpha=self.alpha,
            folds=check_folds,
            seed=seed,
            classes=classes,
            z_min=self.z_drop,
            n_jobs=self.n_jobs,
        )
        report = replace(
            report, soft_targets=choice.targets, soft_gain=choice.gain, soft_z=choice.z, soft_splits=choice.splits
        )
        return report, choice.fits

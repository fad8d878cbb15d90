"""Soft labels: train on each given label blended with out-of-fold probabilities, when held-out labels say so.

Annotators err on the confusable samples. There the given labels are close to
coin flips, and a boosted model fits every flip; no detection finds those
flips, because a confusable sample with a wrong label looks like one with a
right label (docs/dirty-data.md). Training on **soft targets**

    T = (1 - alpha) * onehot(given label) + alpha * P_oof

(self-distillation, the "soft bootstrapping" of Reed et al., 2015) averages
the flips out instead of finding them. On clean labels it blurs a boundary
that was right, so it is **checked** (:func:`soft_label_check`): on a fresh
stratified fold split, each held-out fold is predicted by a model trained on
the other folds' given labels and by one trained on their soft targets, whose
``P_oof`` come from an inner split of those folds alone (no held-out label
reaches the soft model); both sets of held-out probabilities are scored
against the given labels (macro AUC, paired bootstrap, as the drop check of
:mod:`activemine.dirty.policy`). Soft targets are used only when they win by
more than ``z`` standard errors. Comparing two trainings on held-out labels
needs no clean labels: noise that hurts both models alike cannot make the
worse one win.

A classifier learns soft targets as weighted rows: each row once per class
whose target weight is at least ``MIN_WEIGHT`` (:func:`expand`), so any model
that takes ``sample_weight`` can.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from activemine.dirty._labels import label_indices
from activemine.dirty.heldout import N_BOOTSTRAP, Z_DROP, check_fold_seed, compare_splits
from activemine.dirty.oof import fold_of, oof_model, out_of_fold_proba
from activemine.errors import InputError
from activemine.models import predict_proba_aligned

__all__ = [
    "ALPHA",
    "MIN_WEIGHT",
    "accepts_sample_weight",
    "Z_UNSURE",
    "SoftChoice",
    "choose_soft_targets",
    "expand",
    "fit_soft",
    "soft_label_check",
    "soft_targets",
]

#: Weight of the out-of-fold probabilities in a soft target. Of 0.3, 0.5 and 0.8 on the rare set with 10%
#: ambiguity-weighted noise (L + lc's batch, 3 seeds), 0.8 won most: TPR at 1% FPR 18.3-21.8 against 12.1-15.4
#: with the given labels (docs/dirty-data.md, "Soft labels").
ALPHA = 0.8
#: A soft-label check whose z lies closer than this to the threshold is made again on a second fresh split.
#: One split's z moved from 2.15 to 4.08 with the fold assignment alone (Fashion-MNIST, 2,000 rows), and the
#: benchmark's Fashion-MNIST seed 0 read 2.32 against 2.33 where soft labels gained 2.5 points
#: (docs/dirty-data.md, "Soft labels"). Observed z: clean labels -4.8 to -15.6, class noise -1.5 to -3.4,
#: 10% ambiguity-weighted noise 2.0 to 5.2; so clean data never pays for the second split.
Z_UNSURE = 1.5
#: Smallest target weight for which a row is repeated with that class (a lighter one is left out).
MIN_WEIGHT = 1e-3


def soft_targets(y_idx: np.ndarray, oof_proba: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """``(n, k)``: ``(1 - alpha) * onehot(y_idx) + alpha * oof_proba``; every row sums to one."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must be in [0, 1], got {alpha}")
    p = np.asarray(oof_proba, dtype=np.float64)
    y_idx = np.asarray(y_idx)
    if p.ndim != 2 or p.shape[0] != y_idx.size:
        raise InputError(f"oof_proba must have shape (n, k) with n = {y_idx.size} labels, got {p.shape}")
    out = alpha * p
    out[np.arange(y_idx.size), y_idx] += 1.0 - alpha
    return out


def expand(X, targets: np.ndarray, *, min_weight: float = MIN_WEIGHT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Soft targets as weighted rows: ``(X_rep, class_index, weight)``, one row per (row, class) of weight >= ``min_weight``.

    Rows keep their order; within a row, classes in column order.
    """
    targets = np.asarray(targets, dtype=np.float64)
    row, col = np.nonzero(targets >= min_weight)  # row-major: each row's classes together, in column order
    return np.asarray(X)[row], col, targets[row, col]


def accepts_sample_weight(estimator) -> bool:
    """Whether soft targets can train ``estimator`` (a built-in name, ``"fast"``, or an estimator whose ``fit``,
    or its pipeline's last step's, takes ``sample_weight``); the soft-label check is skipped for the others."""
    if estimator is None or isinstance(estimator, str):
        return True
    from sklearn.utils.validation import has_fit_parameter

    steps = getattr(estimator, "steps", None)
    return has_fit_parameter(steps[-1][1] if steps else estimator, "sample_weight")


def fit_soft(
    estimator, X, targets: np.ndarray, classes: Sequence, *, random_state: int | None = 0, n_jobs: int | None = None
):
    """A fresh model fitted on soft targets ``(n, k)`` over ``classes``.

    ``estimator``: as for :func:`activemine.models.make_model`, or ``"fast"``
    (:func:`activemine.dirty.oof.fast_oof_model`).
    """
    classes = np.asarray(classes)
    X_rep, col, weight = expand(X, targets)
    est = oof_model(estimator, random_state=random_state, n_jobs=n_jobs)
    steps = getattr(est, "steps", None)  # a scikit-learn Pipeline routes the weights to its last step
    key = f"{steps[-1][0]}__sample_weight" if steps else "sample_weight"
    return est.fit(X_rep, classes[col], **{key: weight})


def soft_label_check(
    estimator,
    X,
    y,
    *,
    alpha: float = ALPHA,
    folds: int = 3,
    inner_folds: int = 2,
    seed: int = 0,
    classes: Sequence | None = None,
    n_jobs: int | None = None,
    n_bootstrap: int = N_BOOTSTRAP,
) -> tuple[float, float, np.ndarray]:
    """Held-out gain of training on soft targets: ``(gain, z, oof_proba)``.

    ``seed`` is the caller's fold seed; the check draws its own split from it
    (:func:`activemine.dirty.heldout.check_fold_seed`). ``gain`` and ``z`` are as
    in :func:`activemine.dirty.heldout.check_drop` (soft against given labels,
    higher = soft targets help). ``oof_proba`` ``(n, k)`` are the held-out
    probabilities of the models trained on the given labels: the ``P_oof`` for
    the soft targets of a final model on every row. ``folds * (inner_folds + 2)`` fits.
    """
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    y_idx = label_indices(y, classes, k=classes.size, name="y")
    pair = _held_out_pair(
        estimator,
        X,
        y,
        y_idx,
        classes,
        check_fold_seed(seed),
        alpha=alpha,
        folds=folds,
        inner_folds=inner_folds,
        n_jobs=n_jobs,
    )
    gain, z = compare_splits(y_idx, [pair], seed=seed, n_bootstrap=n_bootstrap)
    return gain, z, pair[0]


def _held_out_pair(
    estimator, X, y, y_idx, classes, fresh: int, *, alpha: float, folds: int, inner_folds: int, n_jobs: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out probabilities ``(plain, soft)``, each ``(n, k)``, on the fold split of seed ``fresh``."""
    plain = out_of_fold_proba(estimator, X, y, folds, seed=fresh, classes=classes, n_jobs=n_jobs)
    fold = fold_of(y_idx, folds, seed=fresh)  # the split out_of_fold_proba used
    soft = np.zeros_like(plain)
    X = np.asarray(X)
    for f in range(folds):
        train, test = fold != f, fold == f
        inner = out_of_fold_proba(
            estimator, X[train], y[train], inner_folds, seed=fresh + 1_000 + f, classes=classes, n_jobs=n_jobs
        )
        model = fit_soft(
            estimator,
            X[train],
            soft_targets(y_idx[train], inner, alpha),
            classes,
            random_state=fresh + f,
            n_jobs=n_jobs,
        )  # same model seed as the plain fold
        soft[test] = predict_proba_aligned(model, X[test], classes.tolist())
    return plain, soft


class SoftChoice(NamedTuple):
    """What :func:`choose_soft_targets` decided: the targets (None unless chosen), the check's evidence, its cost."""

    targets: np.ndarray | None
    gain: float
    z: float
    fits: int
    splits: int


def choose_soft_targets(
    estimator,
    X,
    y,
    *,
    alpha: float = ALPHA,
    folds: int = 3,
    seed: int = 0,
    classes: Sequence | None = None,
    z_min: float = Z_DROP,
    n_jobs: int | None = None,
) -> SoftChoice:
    """Soft targets for every row, if they win the check (a :class:`SoftChoice`).

    ``targets`` ``(n, k)`` (None unless ``z > z_min``). ``folds`` is lowered
    to what the smallest class allows (2 rows per class and fold for the
    inner split); with fewer the check is skipped (no targets, NaN evidence, 0 fits and splits).
    A check whose z lands within ``Z_UNSURE`` of ``z_min`` is made again on a
    second fresh split, and decided on both (:func:`activemine.dirty.heldout.compare_splits`;
    the targets then blend the two splits' out-of-fold probabilities).
    ``fits``: model fits made (``folds * 4`` per split); ``splits``: fold splits checked.
    """
    y = np.asarray(y)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    counts = np.array([(y == c).sum() for c in classes])
    folds = min(int(folds), int(counts.min()) // 2)
    if folds < 2:
        return SoftChoice(None, float("nan"), float("nan"), 0, 0)
    y_idx = label_indices(y, classes, k=classes.size, name="y")
    pairs = []
    for repeat in range(2):
        pairs.append(
            _held_out_pair(
                estimator,
                X,
                y,
                y_idx,
                classes,
                check_fold_seed(seed, repeat),
                alpha=alpha,
                folds=folds,
                inner_folds=2,
                n_jobs=n_jobs,
            )
        )
        gain, z = compare_splits(y_idx, pairs, seed=seed)
        if abs(z - z_min) >= Z_UNSURE:
            break
    targets = None
    if z > z_min:
        oof = np.mean([plain for plain, _ in pairs], axis=0)
        targets = soft_targets(y_idx, oof, alpha)
    return SoftChoice(targets, gain, z, folds * 4 * len(pairs), len(pairs))

"""Out-of-fold probabilities: each labeled row predicted by a model that never saw it.

The dirty-data detection (:mod:`activemine.dirty.detect`) needs them: in-sample
probabilities of a boosted model have fit the wrong labels, so nothing looks suspect.

Two ways to get them (:data:`OOF_METHODS`), one per cost:

* ``"refit"``: fit a model ``folds`` times, each on the other folds
  (:func:`out_of_fold_proba`); the model is ``"fast"`` (a small LightGBM on the
  features), any estimator, or a network with fewer epochs;
* ``"embedding-head"``: fit a network **once** on every row, take its
  penultimate layer (:func:`network_embeddings`, ``(n, e)``), and fit a cheap
  head (:data:`HEAD_MODEL`, a logistic regression) out of fold on those
  embeddings. One network fit instead of ``folds``; the head never saw the
  row it predicts, but the embedding did (with its label), so a network that
  memorised a wrong label can hide it (docs/deep-models.md has what that
  costs on Fashion-MNIST).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from activemine.dirty._labels import label_indices
from activemine.errors import InputError, SingleClassError
from activemine.models import check_n_jobs, make_model, predict_proba_aligned, run_parallel, threads_per_task

__all__ = [
    "HEAD_MODEL",
    "OOF_METHODS",
    "check_oof_method",
    "fast_oof_model",
    "fold_of",
    "network_embeddings",
    "oof_model",
    "out_of_fold_proba",
]

OOF_METHODS = ("refit", "embedding-head")
#: The head that ``"embedding-head"`` fits out of fold on a network's embeddings: standardised logistic regression.
HEAD_MODEL = "logreg"


def check_oof_method(method: str, model=None) -> str:
    """``method`` checked against :data:`OOF_METHODS`; with ``"embedding-head"``, ``model`` (when given) must be a
    network, something with ``embed`` (``"cnn"``, ``package.module:factory`` naming one, or an estimator).
    Built-in names other than ``cnn`` are refused without building anything."""
    if method not in OOF_METHODS:
        raise InputError(f"unknown out-of-fold method {method!r}; expected one of {list(OOF_METHODS)}")
    if method == "embedding-head" and model is not None and not _is_network(model):
        label = model if isinstance(model, str) else type(model).__name__
        raise InputError(
            f"out-of-fold method 'embedding-head' embeds L with a network (cnn or a torch factory), "
            f"but the model is {label!r}, which has no penultimate layer; use 'refit' with it"
        )
    return method


def _is_network(model) -> bool:
    if isinstance(model, str):
        if model == "cnn":
            return True
        if ":" not in model:
            return False
        model = make_model(model, random_state=0, n_jobs=1)
    return hasattr(model, "embed")


def network_embeddings(network, X, y, *, random_state: int | None = 0, n_jobs: int | None = None) -> np.ndarray:
    """A fresh ``network`` (as :func:`activemine.models.make_model` makes it) fitted once on ``X`` ``(n, d)`` and
    ``y`` ``(n,)``, and its penultimate layer of those rows, ``(n, e)`` float64."""
    est = make_model(network, random_state=random_state, n_jobs=n_jobs)
    if not hasattr(est, "embed"):
        raise InputError(f"{type(est).__name__} has no embed(); 'embedding-head' needs a network")
    est.fit(X, np.asarray(y))
    return np.asarray(est.embed(X), dtype=np.float64)


def fast_oof_model(*, random_state: int | None = 0, n_jobs: int | None = 1):
    """A cheap LightGBM for out-of-fold probabilities (about a tenth of the default model's cost).

    Regularized like the default model (``reg_lambda``, ``min_child_weight`` scaled to the rarest class),
    so it cannot collapse either, and learns from a few positives.
    """
    from activemine.models import minority_scaled_lgbm

    return minority_scaled_lgbm()(
        n_estimators=40,
        learning_rate=0.2,
        num_leaves=15,
        min_child_samples=10,
        subsample=0.7,
        subsample_freq=1,
        colsample_bytree=0.3,
        reg_lambda=1.0,
        min_child_weight=1.0,
        random_state=random_state,
        n_jobs=check_n_jobs(n_jobs),
        verbose=-1,
    )


def oof_model(estimator, *, random_state: int | None = 0, n_jobs: int | None = None):
    """A fresh model: ``"fast"`` (:func:`fast_oof_model`), else as :func:`activemine.models.make_model` makes it."""
    if isinstance(estimator, str) and estimator == "fast":
        return fast_oof_model(random_state=random_state, n_jobs=n_jobs)
    return make_model(estimator, random_state=random_state, n_jobs=n_jobs)


def fold_of(y, folds: int, *, seed: int) -> np.ndarray:
    """The fold of every row ``(n,)``, in ``0..folds-1``: a stratified split shuffled by ``seed``.

    The split :func:`out_of_fold_proba` uses with the same ``folds`` and ``seed``.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y)
    out = np.empty(y.size, dtype=np.int64)
    for f, (_, test) in enumerate(StratifiedKFold(n_splits=int(folds), shuffle=True, random_state=seed).split(y, y)):
        out[test] = f
    return out


def out_of_fold_proba(
    estimator,
    X,
    y,
    folds: int = 5,
    *,
    seed: int = 0,
    classes: Sequence | None = None,
    n_jobs: int | None = None,
    train_mask=None,
) -> np.ndarray:
    """Out-of-fold class probabilities ``(n, k)``, columns in the order of ``classes``.

    Stratified ``folds``-fold split, shuffled by ``seed``; each row is predicted
    by a model that never saw it. ``estimator`` is a model name, ``"fast"``
    (:func:`fast_oof_model`) or a scikit-learn classifier; fold f's model gets
    seed ``seed + f``. ``classes`` defaults to the sorted distinct labels.
    Every class needs at least ``folds`` rows. ``n_jobs`` threads in all (None =
    the CPUs available to the process) are shared by the folds fitted at once
    and their models' own threads; the result does not depend on it.
    ``train_mask`` ``(n,)`` bool, if given, leaves the rows it marks False
    out of every training fold (they are still predicted), with the same
    folds as without it: the same split, so two calls compare like with like.
    A ``(folds, n)`` mask gives each fold its own rows to leave out.
    """
    y = np.asarray(y)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != y.size:
        raise InputError(f"X must have shape (n, d) aligned with y: got X {X.shape} and {y.size} labels")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    idx = label_indices(y, classes, k=classes.size, name="y")
    if int(folds) != folds or folds < 2:
        raise InputError(f"folds must be an integer >= 2, got {folds}")
    total = check_n_jobs(n_jobs)
    counts = np.bincount(idx, minlength=classes.size)
    present = counts[counts > 0]
    if present.size < 2:
        raise SingleClassError(f"out-of-fold probabilities need at least two classes, got {np.unique(y).tolist()}")
    if present.min() < folds:
        small = classes[(counts > 0) & (counts < folds)].tolist()
        raise InputError(
            f"every class needs at least folds={folds} rows for stratified folds; classes {small} have fewer"
        )
    fold = fold_of(idx, folds, seed=seed)
    rows = np.arange(y.size)
    splits = [(rows[fold != f], rows[fold == f]) for f in range(int(folds))]
    if train_mask is not None:
        train_mask = np.asarray(train_mask, dtype=bool)
        if train_mask.shape == y.shape:
            train_mask = np.broadcast_to(train_mask, (int(folds), y.size))
        if train_mask.shape != (int(folds), y.size):
            raise InputError(f"train_mask must have shape {y.shape} or {(int(folds), y.size)}, got {train_mask.shape}")
        splits = [(train[train_mask[f, train]], test) for f, (train, test) in enumerate(splits)]
    at_once = min(len(splits), total)
    per_fold = threads_per_task(total, len(splits))

    def fit_fold(f: int) -> np.ndarray:
        train, test = splits[f]
        est = oof_model(estimator, random_state=seed + f, n_jobs=per_fold)
        est.fit(X[train], y[train])
        return predict_proba_aligned(est, X[test], classes.tolist())

    out = np.zeros((y.size, classes.size), dtype=np.float64)
    for (_, test), proba in zip(splits, run_parallel(at_once, [(fit_fold, (f,)) for f in range(len(splits))])):
        out[test] = proba
    return out

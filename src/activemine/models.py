"""Model construction and class-aligned probabilities.

A model is any scikit-learn style classifier with ``fit`` and
``predict_proba``, or one of the built-in names in :data:`MODEL_NAMES`.
Probabilities are always returned aligned to an explicit list of classes, so
models trained on subsets of the data (committee members, weak models) stack.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from activemine.errors import InputError, UnknownLabelError

__all__ = ["MODEL_NAMES", "make_model", "predict_proba_aligned", "run_parallel", "stratified_fraction"]

MODEL_NAMES = ("lightgbm", "hgb", "logreg")


def make_model(model="lightgbm", *, random_state: int | None = 0):
    """A fresh, unfitted classifier.

    ``model`` is a name from :data:`MODEL_NAMES` or an estimator to clone; the
    clone's ``random_state`` is set when it has one, so seeds reach the model.
    """
    if isinstance(model, str):
        if model == "lightgbm":
            from lightgbm import LGBMClassifier

            return LGBMClassifier(
                n_estimators=200, learning_rate=0.1, num_leaves=31, subsample=0.8, subsample_freq=1,
                colsample_bytree=0.5, random_state=random_state, n_jobs=2, verbose=-1,
            )  # fmt: skip
        if model == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            return HistGradientBoostingClassifier(max_iter=200, random_state=random_state)
        if model == "logreg":
            from sklearn.linear_model import LogisticRegression
            from sklearn.pipeline import make_pipeline
            from sklearn.preprocessing import StandardScaler

            return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=random_state))
        raise InputError(f"unknown model {model!r}; expected one of {MODEL_NAMES} or a scikit-learn estimator")
    if not (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        raise InputError(f"model must have fit and predict_proba, got {type(model).__name__}")
    from sklearn.base import clone  # here, so importing activemine does not import scikit-learn

    est = clone(model)
    if random_state is not None and "random_state" in est.get_params():
        est.set_params(random_state=random_state)
    return est


def predict_proba_aligned(model, X, classes: Sequence) -> np.ndarray:
    """``model.predict_proba(X)`` with columns in the order of ``classes``, ``(n, len(classes))``.

    Classes the model never saw get probability zero; a model class that is
    not in ``classes`` is an error.
    """
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    model_classes = list(getattr(model, "classes_", range(proba.shape[1])))
    classes = list(classes)
    if model_classes == classes:
        return proba
    index = {c: i for i, c in enumerate(classes)}
    unknown = [c for c in model_classes if c not in index]
    if unknown:
        raise UnknownLabelError(f"model predicts classes {unknown} that are not among {classes}")
    out = np.zeros((proba.shape[0], len(classes)), dtype=np.float64)
    out[:, [index[c] for c in model_classes]] = proba
    return out


def stratified_fraction(y, fraction: float, *, rng: np.random.Generator, min_per_class: int = 2) -> np.ndarray:
    """Sorted row indices of a seeded stratified subsample of ``y`` of about ``fraction`` of each class.

    Every class keeps at least ``min_per_class`` rows (or all it has).
    """
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"fraction must be in (0, 1], got {fraction}")
    y = np.asarray(y)
    parts = []
    for c in np.unique(y):
        rows = np.flatnonzero(y == c)
        take = min(rows.size, max(min_per_class, int(round(fraction * rows.size))))
        parts.append(rng.choice(rows, size=take, replace=False))
    return np.sort(np.concatenate(parts))


def run_parallel(n_jobs: int | None, calls: list) -> list:
    """Run ``(function, args)`` pairs concurrently with joblib threads; results in call order.

    ``n_jobs=None`` runs one thread per call, capped at the CPU count; 1 runs them in turn.
    """
    if len(calls) <= 1 or n_jobs == 1:
        return [fn(*args) for fn, args in calls]
    from joblib import Parallel, cpu_count, delayed

    jobs = min(len(calls), cpu_count()) if n_jobs is None else n_jobs
    # threads: LightGBM and numpy release the GIL, and nothing is copied to workers
    return Parallel(n_jobs=jobs, prefer="threads")(delayed(fn)(*args) for fn, args in calls)

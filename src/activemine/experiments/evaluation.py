"""Evaluation of an experiment's runs: the final models trained on L + B and tested at a fixed FPR.

The metric is TPR at a fixed FPR (:func:`activemine.metrics.tpr_at_fpr`,
higher is better), with AUC beside it; multi-class tasks use the one-vs-rest
macro average. Runs of one seed that train on the same rows share one fit.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from activemine.dirty.soft import fit_soft
from activemine.experiments.settings import ExperimentConfig
from activemine.experiments.tasks import Task
from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.models import make_model, predict_proba_aligned

__all__ = ["ROC_GRID"]

#: FPR points at which every run's ROC curve is stored (log-spaced, for plots and averaging).
ROC_GRID = np.unique(np.r_[0.0, np.logspace(-4, 0, 81)])


def _evaluate_rows(
    task: Task,
    y_obs: np.ndarray,
    rows: np.ndarray,
    *,
    config: ExperimentConfig,
    seed: int,
    cache: dict,
    targets: np.ndarray | None = None,
) -> dict:
    """:func:`_evaluate` of a model trained on the training rows ``rows``, taken in index order.

    The final model depends on the set of labeled rows only, not on the order
    a strategy returned them in; runs of one seed that train on the same set
    (``lc``, ``sm`` and ``entropy`` pick the same batch on binary tasks) share
    one fit through ``cache``. ``targets`` ``(len(rows), k)``, row-aligned with
    ``rows``: soft targets to train on instead of the labels (HW's dirty-data step).
    """
    rows, key, targets = _rows_key(rows, targets)
    if key not in cache:
        cache[key] = _evaluate(
            task,
            task.X_train[rows],
            y_obs[rows],
            model=config.model,
            seed=seed,
            fpr=config.fpr,
            repeats=config.eval_repeats,
            n_jobs=config.n_jobs,
            targets=targets,
        )
    return dict(cache[key])


def _refit_rows(
    task: Task,
    y_obs: np.ndarray,
    rows: np.ndarray,
    evaluation: dict,
    *,
    config: ExperimentConfig,
    seed: int,
    cache: dict,
    targets: np.ndarray | None = None,
):
    """A second model trained on the same rows (and soft ``targets``) as ``evaluation``'s with another seed,
    for the ``kappa-refit`` criterion.

    With ``eval_repeats >= 2`` it is the evaluation's second model (no new
    fit); otherwise one more fit, the model a second repeat would be
    (:func:`_fit_repeat`), cached with the evaluation's fits.
    """
    if len(evaluation["_models"]) >= 2:
        return evaluation["_models"][1]
    rows, key, targets = _rows_key(rows, targets)
    key = "refit:" + key
    if key not in cache:
        cache[key] = _fit_repeat(
            config.model,
            task.X_train[rows],
            y_obs[rows],
            seed=seed,
            repeat=1,
            n_jobs=config.n_jobs,
            targets=targets,
            n_classes=len(task.class_names),
        )
    return cache[key]


def _rows_key(rows: np.ndarray, targets: np.ndarray | None = None) -> tuple[np.ndarray, str, np.ndarray | None]:
    """Training rows in index order, the key of that set (and of its soft ``targets``, row-aligned with
    ``rows``, when given) under which runs share fits, and the targets in the rows' new order."""
    order = np.argsort(rows, kind="stable")
    rows = rows[order]
    if targets is None:
        return rows, hashlib.sha1(rows.tobytes()).hexdigest(), None
    targets = targets[order]
    return rows, "soft:" + hashlib.sha1(rows.tobytes() + np.ascontiguousarray(targets).tobytes()).hexdigest(), targets


def _fit_repeat(model, X, y, *, seed: int, repeat: int, n_jobs: int | None, targets=None, n_classes: int = 0):
    """Evaluation model number ``repeat`` (0 first) of a run with seed ``seed``, fitted on ``(X, y)``
    (on soft ``targets`` ``(n, n_classes)`` instead of ``y`` when given)."""
    if targets is not None:
        return fit_soft(model, X, targets, np.arange(n_classes), random_state=seed + 100_003 * repeat, n_jobs=n_jobs)
    return make_model(model, random_state=seed + 100_003 * repeat, n_jobs=n_jobs).fit(X, y)


def _evaluate(
    task: Task,
    X,
    y,
    *,
    model: str,
    seed: int,
    fpr: float,
    repeats: int = 1,
    n_jobs: int | None = None,
    targets: np.ndarray | None = None,
) -> dict:
    """Train ``repeats`` models on ``(X, y)`` (seeds ``seed``, ``seed + 100003``, ...) and test them.

    The figures are means over the models: one LightGBM fit's TPR at 1% FPR
    moves by points with its bagging seed alone, and that noise would swamp
    the differences between strategies. ``_model`` and ``fit_seconds`` are
    the first model's.
    """
    tprs, aucs, grids, seconds, models = [], [], [], [], []
    for r in range(repeats):
        start = time.perf_counter()
        est = _fit_repeat(
            model, X, y, seed=seed, repeat=r, n_jobs=n_jobs, targets=targets, n_classes=len(task.class_names)
        )
        seconds.append(time.perf_counter() - start)
        proba = predict_proba_aligned(est, task.X_test, np.arange(len(task.class_names)))
        scores = proba[:, 1] if task.binary else proba
        tprs.append(tpr_at_fpr(task.y_test, scores, fpr))
        aucs.append(roc_auc(task.y_test, scores))
        grids.append([tpr_at_fpr(task.y_test, scores, f) for f in ROC_GRID])
        models.append(est)
    return {
        "tpr_at_fpr": float(np.mean(tprs)),
        "auc": float(np.mean(aucs)),
        "labels": int(len(y)),
        "roc_tpr": np.mean(grids, axis=0).tolist(),
        "fit_seconds": seconds[0],
        "_model": models[0],
        "_models": models,
    }


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def _class_counts(task: Task, y_true_batch: np.ndarray) -> dict:
    counts = np.bincount(y_true_batch, minlength=len(task.class_names))
    return {name: int(c) for name, c in zip(task.class_names, counts)}

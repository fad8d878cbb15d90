"""One seed of an experiment: its split of the training set into L, U and held-out rows, and the labels its
simulated annotators give (the truth, label noise at a rate or per class, or a simulated team).

The test labels are never noisy.
"""

from __future__ import annotations

import numpy as np

from activemine.errors import BudgetError
from activemine.experiments.noise import inject_class_noise, inject_label_noise
from activemine.experiments.settings import ExperimentSettings
from activemine.experiments.tasks import Task
from activemine.models import make_model, predict_proba_aligned

__all__: list[str] = []


def _clean_proba(task: Task, *, model: str, n_jobs: int | None = None) -> np.ndarray:
    """Out-of-fold probabilities ``(n, k)`` of a model trained on clean labels (2 folds, fixed seed)."""
    n = task.y_train.size
    fold = np.random.default_rng(12345).permutation(n) % 2
    out = np.zeros((n, len(task.class_names)))
    for f in (0, 1):
        est = make_model(model, random_state=f, n_jobs=n_jobs).fit(task.X_train[fold != f], task.y_train[fold != f])
        out[fold == f] = predict_proba_aligned(est, task.X_train[fold == f], np.arange(len(task.class_names)))
    return out


def _noisy_labels(task: Task, settings: ExperimentSettings, seed: int, proba) -> np.ndarray:
    """The labels the simulated annotator gives, ``(n_train,)``: a rate over all rows or a rate per true class."""
    config = settings.config
    classes = np.arange(len(task.class_names))
    rates = settings.noise_rates(task.class_names)
    if rates is not None:
        noisy, _ = inject_class_noise(
            task.y_train, rates, kind=config.noise_kind, proba=proba, classes=classes, random_state=seed
        )
        return np.asarray(noisy)
    if config.noise == 0:
        return task.y_train
    noisy, _ = inject_label_noise(
        task.y_train, config.noise, kind=config.noise_kind, proba=proba, classes=classes, random_state=seed
    )
    return np.asarray(noisy)


def _flips_per_class(task: Task, y_obs: np.ndarray, rows: np.ndarray) -> dict:
    """Realized flips among ``rows``, per true class name: ``{name: {"rows", "flipped"}}``."""
    y_true, y = task.y_train[rows], y_obs[rows]
    return {
        name: {"rows": int((y_true == c).sum()), "flipped": int(((y_true == c) & (y != c)).sum())}
        for c, name in enumerate(task.class_names)
    }


class _Seed:
    """The split of one seed: L and U indices into the training set, and the labels the annotator gives."""

    def __init__(self, task: Task, settings: ExperimentSettings, seed: int, clean_proba):
        config = settings.config
        n = task.y_train.size
        pool = n - config.labeled_size if config.pool_size is None else config.pool_size
        if config.labeled_size + pool > n or config.budget > pool:
            raise BudgetError(
                f"labeled size {config.labeled_size}, pool {pool} and budget {config.budget} do not fit the "
                f"{n} training samples (need labeled + pool <= {n} and budget <= pool)"
            )
        order = np.random.default_rng([seed, 7]).permutation(n)
        self.L = np.sort(order[: config.labeled_size])
        self.U = np.sort(order[config.labeled_size : config.labeled_size + pool])
        # training rows in neither: a stop set drawn here is untouched by selection (activemine.budget.report)
        self.held_out = np.sort(order[config.labeled_size + pool :])
        self.y_obs = _noisy_labels(task, settings, seed, clean_proba)
        self.annotators = {}
        if settings.annotators is not None:  # a simulated team labels instead (consensus where several label)
            from activemine.annotators.simulation import experiment_labels

            self.y_obs, self.annotators = experiment_labels(task, settings.annotators, seed)
        if np.unique(self.y_obs[self.L]).size < 2:
            raise BudgetError(f"the labeled set of seed {seed} holds a single class; increase the labeled size")

"""Experiment glue for batches without copies (:mod:`activemine.diversity`).

Kept out of :mod:`activemine.experiment`, which calls these three functions:
planting near-duplicate campaigns into a seed's pool, selecting through
:func:`~activemine.diversity.select_diverse` with a seeded PCA of the
features as embedding, and the figures a run reports (copies in the batch,
distinct sources, the radius used).
"""

from __future__ import annotations

import numpy as np

from activemine.models import predict_proba_aligned

__all__ = ["diverse_picker", "duplicate_figures", "plant_into_task"]


def diverse_picker(strategy, options, task, split, shared: dict, seed: int):
    """A replacement for ``strategy.select`` that keeps copies out of the batch, or None.

    The embedding of a row is its features projected by a seeded PCA fitted on L
    (:func:`activemine.diversity.fit_projection`), computed once per seed.
    """
    if options is None:
        return None
    from activemine.diversity import fit_projection, select_diverse

    if "projection" not in shared:
        shared["projection"] = fit_projection(task.X_train[split.L], random_state=seed)
    project = shared["projection"]

    def pick(ids, scores, predicted, *, budget, exclude=None):
        weights = None
        if strategy.balance is not None:
            from activemine.selection import class_weights

            counts = np.bincount(np.asarray(predicted), minlength=strategy.classes_.size)
            weights = class_weights(strategy.balance, classes=list(strategy.classes_),
                                    labeled_counts=strategy.labeled_counts_, pool_counts=counts)  # fmt: skip
        batch, report = select_diverse(ids, scores, predicted, project(task.X_train[ids]), budget=budget,
                                       n_classes=strategy.classes_.size, options=options, weights=weights,
                                       easy_share=strategy.easy_share, seed=strategy.random_state, exclude=exclude,
                                       classes=strategy.classes_.tolist(), hard_label=strategy.hard_label)  # fmt: skip
        pick.reports.append(report)
        return batch

    pick.reports = []
    return pick


def duplicate_figures(split, chosen, pick) -> dict:
    """Copies in the batch and distinct sources (with planted duplicates), the radius used."""
    out = {}
    if getattr(split, "group", None) is not None:
        from activemine.diversity import duplicate_stats

        out.update(duplicate_stats(chosen, split.group))
    if pick is not None and pick.reports:
        r = pick.reports[-1]
        out["diversity"] = {"method": r.method, "radius": r.radius, "auto": r.auto, "suppressed": r.suppressed,
                            "filled_with_duplicates": r.filled_with_duplicates, "clusters": r.clusters}  # fmt: skip
    return out


def plant_into_task(task, config, seed: int, split, model):
    """A copy of ``task`` whose training set ends with planted near-duplicates, added to ``split.U``.

    The R sources are the pool rows the L-only model is least confident about; each is copied
    C times with seeded noise (:func:`activemine.diversity.plant_duplicates`), labels copied.
    ``split.group`` maps every training row to its source (-1 outside any planted group).
    """
    from activemine.diversity import hard_sources, plant_duplicates
    from activemine.scores import least_confidence

    r, c = config.duplicates
    n = task.y_train.size
    proba = predict_proba_aligned(model, task.X_train[split.U], np.arange(len(task.class_names)))
    sources = hard_sources(least_confidence(proba), split.U, r)
    X_copies, src = plant_duplicates(task.X_train, sources, c, scale=config.duplicate_scale, random_state=seed)
    group = np.full(n + src.size, -1, dtype=np.int64)
    group[sources] = sources
    group[n:] = src
    split.group = group
    split.U = np.concatenate([split.U, np.arange(n, n + src.size)])
    split.y_obs = np.concatenate([split.y_obs, split.y_obs[src]])
    return type(task)(np.vstack([task.X_train, X_copies]), np.concatenate([task.y_train, task.y_train[src]]),
                task.X_test, task.y_test, task.class_names)  # fmt: skip

"""Experiment glue for batches without copies (:mod:`activemine.diversity.select`).

Kept out of :mod:`activemine.experiments.runner`, which calls these three functions:
planting near-duplicate campaigns into a seed's pool, the pool's embedding
for a diverse selection (a seeded PCA of the features fitted on L), and the
figures a run reports (copies in the batch, distinct sources, the radius used).
"""

from __future__ import annotations

import numpy as np

from activemine.models import predict_proba_aligned

__all__ = ["duplicate_figures", "plant_into_task", "pool_embedding"]


def pool_embedding(options, task, split, shared: dict, seed: int) -> np.ndarray | None:
    """The embedding ``(len(split.U), e)`` of the pool rows for a diverse run, or None.

    Features projected by a seeded PCA fitted on L (50 dims,
    :func:`activemine.diversity.select.fit_projection`), as ``mine`` does for a feature
    pool without embeddings; computed once per seed.
    """
    if options is None or not options.needs_embeddings:
        return None
    if "embedding" not in shared:
        from activemine.diversity.select import fit_projection

        project = fit_projection(task.X_train[split.L], random_state=seed)
        shared["embedding"] = project(task.X_train[split.U])
    return shared["embedding"]


def duplicate_figures(split, chosen, report) -> dict:
    """Copies in the batch and distinct sources (with planted duplicates), and what the diverse step did."""
    out = {}
    if getattr(split, "group", None) is not None:
        from activemine.diversity.select import duplicate_stats

        out.update(duplicate_stats(chosen, split.group))
    if report is not None:
        out["diversity"] = {
            "method": report.method,
            "radius": report.radius,
            "auto": report.auto,
            "suppressed": report.suppressed,
            "filled_with_duplicates": report.filled_with_duplicates,
            "clusters": report.clusters,
        }
    return out


def plant_into_task(task, settings, seed: int, split, model):
    """A copy of ``task`` whose training set ends with planted near-duplicates, added to ``split.U``.

    The R sources are the pool rows the L-only model is least confident about; each is copied
    C times with seeded noise (:func:`activemine.diversity.select.plant_duplicates`), labels copied.
    ``split.group`` maps every training row to its source (-1 outside any planted group).
    """
    from activemine.diversity.select import hard_sources, plant_duplicates
    from activemine.selection.scores import least_confidence

    r, c = settings.duplicates
    n = task.y_train.size
    proba = predict_proba_aligned(model, task.X_train[split.U], np.arange(len(task.class_names)))
    sources = hard_sources(least_confidence(proba), split.U, r)
    X_copies, src = plant_duplicates(task.X_train, sources, c, scale=settings.config.duplicate_scale, random_state=seed)
    group = np.full(n + src.size, -1, dtype=np.int64)
    group[sources] = sources
    group[n:] = src
    split.group = group
    split.U = np.concatenate([split.U, np.arange(n, n + src.size)])
    split.y_obs = np.concatenate([split.y_obs, split.y_obs[src]])
    return type(task)(
        np.vstack([task.X_train, X_copies]),
        np.concatenate([task.y_train, task.y_train[src]]),
        task.X_test,
        task.y_test,
        task.class_names,
    )

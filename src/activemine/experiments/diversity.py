"""Experiment glue for batches without copies (:mod:`activemine.diversity.select`).

Kept out of :mod:`activemine.experiments.runner`, which calls these three functions:
planting near-duplicate campaigns into a seed's pool, the pool's embedding
for a diverse selection (a seeded PCA of the features fitted on L), and the
figures a run reports (copies in the batch, distinct sources, the radius used).
"""

from __future__ import annotations

import numpy as np

from activemine.errors import InputError
from activemine.models import predict_proba_aligned
from activemine.selection.batch import top_k_indices

__all__ = [
    "NETWORK",
    "duplicate_figures",
    "duplicate_stats",
    "hard_sources",
    "plant_duplicates",
    "plant_into_task",
    "pool_embedding",
    "run_embedding",
]


#: What :func:`pool_embedding` returns when the run's network gives the embedding (:func:`run_embedding`).
NETWORK = "the network's penultimate layer"


def pool_embedding(options, task, split, shared: dict, seed: int) -> np.ndarray | str | None:
    """The embedding ``(len(split.U), e)`` of the pool rows for a diverse run, :data:`NETWORK`, or None.

    As ``mine`` chooses it: the dataset's own embeddings when it has them; else, when the model is
    a network (the seed's L-only model has ``embed``), :data:`NETWORK`: the run's network embeds the
    pool once it is fitted (:func:`run_embedding`); else the features projected by a seeded PCA
    fitted on L (50 dims, :func:`activemine.diversity.geometry.fit_projection`), computed once per seed.
    """
    if options is None or not options.needs_embeddings:
        return None
    if task.embedding_train is not None:  # the dataset's own embeddings
        return task.embedding_train[split.U]
    if hasattr(shared["initial"]["_model"], "embed"):
        return NETWORK
    if "embedding" not in shared:
        from activemine.diversity.geometry import fit_projection

        project = fit_projection(task.X_train[split.L], random_state=seed)
        shared["embedding"] = project(task.X_train[split.U])
    return shared["embedding"]


def run_embedding(embedding, strategy, model, X_pool) -> tuple[np.ndarray | None, str]:
    """``(embedding (n, e) of X_pool, where it came from)`` for a fitted run; ``embedding`` as
    :func:`pool_embedding` gave it. :data:`NETWORK` becomes the penultimate layer that ``mine`` would
    use: the strategy's own fitted network (:meth:`activemine.selection.strategies.Strategy.embedder`),
    else ``model``, the network whose probabilities the run selects from (lc, sm, entropy, random)."""
    if embedding is None:
        return None, ""
    if not isinstance(embedding, str):
        return embedding, "the data set's embedding columns or a seeded PCA of the features"
    embed = strategy.embedder() if hasattr(strategy, "classes_") else None
    if embed is None:
        embed = getattr(model, "embed", None)
    if embed is None:
        raise InputError(f"strategy {strategy.name!r} has no fitted network to embed the pool with")
    out = np.asarray(embed(X_pool), dtype=np.float32)
    return out, f"{NETWORK} ({out.shape[1]} dims)"


def duplicate_figures(split, chosen, report) -> dict:
    """Copies in the batch and distinct sources (with planted duplicates), and what the diverse step did."""
    out = {}
    if getattr(split, "group", None) is not None:
        out.update(duplicate_stats(chosen, split.group))
    if report is not None:
        out["diversity"] = {
            "method": report.method,
            "radius": report.radius,
            "auto": report.auto,
            "suppressed": report.suppressed,
            "filled_with_duplicates": report.filled_with_duplicates,
            "clusters": report.clusters,
            "embedding": report.embedding,
        }
    return out


def plant_into_task(task, settings, seed: int, split, model):
    """A copy of ``task`` whose training set ends with planted near-duplicates, added to ``split.U``.

    The R sources are the pool rows the L-only model is least confident about; each is copied
    C times with seeded noise (:func:`plant_duplicates`), labels copied.
    ``split.group`` maps every training row to its source (-1 outside any planted group).
    """
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
    embedding = None if task.embedding_train is None else np.vstack([task.embedding_train, task.embedding_train[src]])
    return type(task)(
        np.vstack([task.X_train, X_copies]),
        np.concatenate([task.y_train, task.y_train[src]]),
        task.X_test,
        task.y_test,
        task.class_names,
        task.image_shape,
        embedding,  # a planted copy has its source's embedding
    )


def plant_duplicates(
    X, sources, copies: int, *, scale: float = 0.05, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Copies of ``X[sources]``: each source row ``copies`` times with seeded Gaussian noise.

    Returns ``(X_copies (len(sources) * copies, d), source_of_copy (len(sources) * copies,))``;
    the noise of feature j has standard deviation ``scale * std(X[:, j])``, so copies are
    near, not exact, duplicates (an abuse campaign's small edits).
    """
    X = np.asarray(X)
    sources = np.asarray(sources, dtype=np.int64)
    if int(copies) != copies or copies < 1:
        raise InputError(f"copies must be a positive integer, got {copies}")
    rng = np.random.default_rng([int(random_state), 0xC0B1])
    std = X.std(axis=0).astype(np.float32)
    src = np.repeat(sources, int(copies))
    noise = rng.standard_normal((src.size, X.shape[1]), dtype=np.float32) * (np.float32(scale) * std)
    return (X[src].astype(np.float32) + noise).astype(X.dtype, copy=False), src


def duplicate_stats(batch_rows, group_of_row: dict | np.ndarray) -> dict:
    """``copies``: batch rows that belong to a planted group (source or copy); ``sources``: distinct groups.

    ``group_of_row`` maps a row index to its group (its source row), -1 for rows outside any group.
    """
    rows = np.asarray(batch_rows, dtype=np.int64)
    g = np.asarray(group_of_row)[rows]
    g = g[g >= 0]
    return {"copies": int(g.size), "sources": int(np.unique(g).size)}


def hard_sources(scores, rows, count: int) -> np.ndarray:
    """The ``count`` rows of ``rows`` with the highest ``scores`` (ties by row index): the templates
    a planted campaign copies, hard for the model that scored them."""
    rows = np.asarray(rows)
    if count > rows.size:
        raise InputError(f"cannot plant {count} sources in a pool of {rows.size} rows")
    return np.sort(rows[top_k_indices(-np.asarray(scores, dtype=np.float64), rows, int(count))])

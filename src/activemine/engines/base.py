"""The one engine skeleton: check -> fit -> score chunks keeping candidates -> exact selection.

Executors differ only in how the pool's chunks are scored and reduced to
candidates (:class:`Executor`): :class:`activemine.engines.local.LocalExecutor`
on this machine, :class:`activemine.engines.ray.RayExecutor` on a Ray
cluster. Everything else is here, shared, so the two cannot drift apart:

1. :func:`prepare_run` opens the pool (schema checked from metadata), builds
   the :class:`~activemine.selection.plan.SelectionPlan` and binds it to the pool's
   classes, labeled set and row count, and checks the labeled features:
   every bad setting fails here, before any model is fitted;
2. :meth:`MiningRun.fit` trains the strategy;
3. :meth:`MiningRun.scan` lets the executor score every chunk and keep only
   candidates (:class:`~activemine.engines.candidates.CandidateReducer`);
4. :meth:`MiningRun.select` selects exactly, through the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from activemine.data.chunks import LabeledSet
from activemine.data.sources import DEFAULT_CHUNK_SIZE, PoolColumns, PoolSource, open_pool
from activemine.engines.candidates import CandidateReducer
from activemine.errors import EmptyPoolError, InputError
from activemine.selection.batch import Batch
from activemine.selection.plan import SelectionPlan
from activemine.selection.strategies import Strategy

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkScorer",
    "Executor",
    "MiningRun",
    "add_scored_rows",
    "check_features",
    "prepare_run",
    "resolve_plan",
    "supports_missing_values",
]


class Executor(Protocol):
    """Scores a pool's chunks and reduces them to selection candidates."""

    def reduce(self, run: MiningRun, progress: Callable[[int], None] | None = None) -> CandidateReducer:
        """A reducer fed with every selectable row of ``run.source``, scored by ``run.strategy``."""
        ...


def resolve_plan(strategy: Strategy, plan: SelectionPlan | None, *, budget=None, exclude=None) -> SelectionPlan:
    """``plan`` as given, or the plan of ``budget`` and ``exclude`` with the strategy's defaults."""
    if plan is not None:
        if not isinstance(plan, SelectionPlan):
            raise InputError(f"plan must be a SelectionPlan, got {type(plan).__name__}")
        if (budget is not None and budget != plan.budget) or exclude is not None:
            raise InputError(
                "give either a plan or budget/exclude, not both (the plan holds its budget and exclusions)"
            )
        return plan
    if budget is None:
        raise InputError("a budget (or a plan) is required")
    return SelectionPlan.build(strategy, budget=budget, exclude=exclude)


def supports_missing_values(model) -> bool:
    """Whether ``model`` (a name or an estimator) treats NaN features as missing values.

    The policy of activemine: NaN is a missing value for models that support
    them (``lightgbm``, ``hgb``, estimators tagged ``allow_nan``), an error for
    the others; infinity is always an error.
    """
    if model is None:
        return True
    if isinstance(model, str):
        return model in ("lightgbm", "hgb")
    if type(model).__name__ in ("LGBMClassifier", "MinorityScaledLGBM", "HistGradientBoostingClassifier"):
        return True
    try:
        return bool(model.__sklearn_tags__().input_tags.allow_nan)
    except Exception:
        return False


def _strategy_allows_nan(strategy: Strategy) -> bool:
    models = [getattr(strategy, "model", None), getattr(strategy, "weak_model", None)]
    return all(supports_missing_values(m) for m in models if m is not None)


def check_features(X: np.ndarray, *, allow_nan: bool, where: str, columns=None, first_row: int = 0) -> None:
    """Raise on infinite features, and on NaN when the model cannot take missing values,
    naming the column and the row (counted from ``first_row``)."""
    X = np.asarray(X)
    if X.dtype.kind != "f":
        return
    finite = np.isfinite(X)
    if finite.all():
        return
    infinite = np.isinf(X)
    bad = infinite if allow_nan else ~finite
    if not bad.any():
        return
    row, col = (int(v[0]) for v in np.nonzero(bad))
    name = columns[col] if columns is not None and col < len(columns) else f"#{col}"
    value = X[row, col]
    if np.isinf(value):
        raise InputError(
            f"feature {name!r} of {where} is {value} at row {first_row + row}; features must be finite "
            f"(NaN is read as a missing value by lightgbm and hgb, infinity never)"
        )
    raise InputError(
        f"feature {name!r} of {where} is NaN (missing) at row {first_row + row} ({int(bad.sum())} such "
        f"values); the model cannot take missing values: fill them, or use --model lightgbm or hgb"
    )


class _NetworkEmbedding:
    """A fitted network's ``embed`` as the scorer's projection; remembers the width it gave."""

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray]):
        self.embed = embed
        self.width = 0

    def __call__(self, X: np.ndarray) -> np.ndarray:
        out = np.asarray(self.embed(X), dtype=np.float32)
        self.width = out.shape[1]
        return out


class ChunkScorer:
    """What an executor needs to turn pool chunks into candidates (small: shipped to Ray actors)."""

    def __init__(self, strategy: Strategy, plan: SelectionPlan, *, where: str, features: tuple = ()):
        self.strategy, self.plan, self.where, self.features = strategy, plan, where, features
        self.allow_nan = _strategy_allows_nan(strategy)
        self.projection = None  # a seeded PCA of the features, for a diverse selection without embeddings
        #: ``attach(chunk, first_row) -> {name: array (n, ...)}``: arrays carried along with each row
        #: to the batch (:attr:`~activemine.selection.batch.Batch.attached`). Only executors that know a
        #: chunk's position in the pool call it (the local one); the batch of others has none.
        self.attach: Callable | None = None

    def add(
        self,
        reducer: CandidateReducer,
        chunk,
        ids: np.ndarray,
        *,
        first_row: int | None = None,
        keys: np.ndarray | None = None,
    ) -> None:
        """Check ``chunk``'s features, score it and give its selectable rows to ``reducer``;
        ``ids`` ``(n,)`` are the chunk's checked ids, ``first_row`` its position in the pool,
        ``keys`` their :func:`~activemine.data.idindex.id_hash` if the executor computed it."""
        if chunk.X is not None:
            where = self.where if first_row is not None else f"a block of {self.where}"
            check_features(
                chunk.X, allow_nan=self.allow_nan, where=where, columns=self.features, first_row=first_row or 0
            )
        scores, predicted = self.strategy.score(chunk)
        embedding = chunk.embedding
        if embedding is None and self.projection is not None and chunk.X is not None:
            embedding = self.projection(np.nan_to_num(chunk.X))
        attached = self.attach(chunk, first_row) if self.attach is not None and first_row is not None else None
        add_scored_rows(
            reducer,
            ids,
            scores,
            predicted,
            self.plan,
            embedding=embedding,
            hashes=chunk.hashes,
            attached=attached,
            keys=keys,
        )


class MiningRun:
    """One mining run over one pool; built by :func:`prepare_run`, which validated everything."""

    def __init__(self, strategy: Strategy, source: PoolSource, plan: SelectionPlan, labeled: LabeledSet | None):
        self.strategy = strategy
        self.source = source
        self.plan = plan
        self.labeled = labeled
        self.scorer = ChunkScorer(strategy, plan, where=source.where, features=source.columns.features)
        self.reducer: CandidateReducer | None = None
        self.rescans = 0  # scans repeated with a wider candidate factor (diversity only)
        self.executor: Executor | None = None

    @property
    def n_proba_columns(self) -> int | None:
        return self.source.columns.n_proba_columns

    def check_executor(self, executor: Executor) -> MiningRun:
        """Let ``executor`` check what it needs before any fit (the Ray executor: that every node reads
        the pool's files); executors without such a check pass."""
        check = getattr(executor, "check", None)
        if check is not None:
            check(self)
        return self

    def fit(self) -> MiningRun:
        """Train the strategy (nothing to train when the pool brings probabilities)."""
        self.strategy.fit(self.labeled, n_proba_columns=self.n_proba_columns)
        div = self.plan.diversity
        if div is not None and div.needs_embeddings and not self.source.columns.embedding:
            embed = self.strategy.embedder()
            if embed is not None:  # a network: its penultimate layer is the embedding
                self.scorer.projection = _NetworkEmbedding(embed)
                return self
            from activemine.diversity.geometry import fit_projection

            # checked in prepare_run: the pool has features and the labeled set too
            self.scorer.projection = fit_projection(
                np.nan_to_num(np.asarray(self.labeled.X, dtype=np.float32)), random_state=self.plan.seed
            )
        return self

    def scan(self, executor: Executor, progress: Callable[[int], None] | None = None) -> MiningRun:
        """Score the pool with ``executor``, keeping candidates only."""
        self.executor = executor
        self.reducer = executor.reduce(self, progress)
        if self.reducer.rows_seen == 0:
            raise EmptyPoolError(f"the pool {self.source.where!r} has no rows")
        return self

    def select(self) -> Batch:
        """The exact batch, through the plan."""
        if self.reducer is None:
            raise InputError("scan the pool before selecting")
        from dataclasses import replace

        from activemine.diversity.options import InsufficientCandidates

        while True:
            tied = self.reducer.tied_rows()  # before the buffers are let go
            # the buffers are let go as the candidates are copied out: this reducer is spent
            ids, scores, predicted, counts, extra = self.reducer.diverse_candidates(release=True)
            attached = extra.pop("attached", None)
            try:
                batch = self.plan.select(ids, scores, predicted, available_counts=counts, **extra)
                break
            except InsufficientCandidates:
                # a diverse selection walked past the candidates kept: scan again with twice the
                # candidate factor (exact, never fewer rows), at worst until the buffers hold every row
                self.plan = replace(self.plan, diversity=self.plan.diversity.widened())
                self.scorer.plan = self.plan
                self.rescans += 1
                self.reducer = self.executor.reduce(self, None)
        self.reducer = None  # spent by the selection (scan again to select again)
        if batch.ties and tied > batch.ties["tied_rows"]:  # the candidates hold only some of the tied rows
            from activemine.selection.batch import taken_at_boundary, tie_report

            batch = replace(batch, ties=tie_report(tied, int(counts.sum()), taken_at_boundary(batch), self.plan.seed))
        if batch.diversity is not None:
            embedding = (
                ""
                if not self.plan.diversity.needs_embeddings
                else "the pool's embedding columns"
                if self.scorer.projection is None
                else (
                    f"the network's penultimate layer ({self.scorer.projection.width} dims)"
                    if isinstance(self.scorer.projection, _NetworkEmbedding)
                    else f"features projected by a seeded PCA fitted on the labeled set ({self.scorer.projection.width} dims)"
                )
            )
            batch = replace(batch, diversity=replace(batch.diversity, embedding=embedding, rescans=self.rescans))
        if attached:
            at = _positions(ids, batch.ids)
            batch = replace(batch, attached={name: values.take(at, axis=0) for name, values in attached.items()})
        return batch

    def run(self, executor: Executor, progress: Callable[[int], None] | None = None) -> Batch:
        """check the executor, fit, scan and select."""
        return self.check_executor(executor).fit().scan(executor, progress).select()


def _positions(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each of ``wanted`` ``(b,)`` is in ``ids`` ``(n,)``, which hold them all."""
    from activemine.data.idindex import IdIndex

    at = IdIndex(ids).find(wanted)
    if (at < 0).any():
        raise InputError(f"{int((at < 0).sum())} batch ids are not among the candidates")
    return at


def prepare_run(
    strategy: Strategy,
    source,
    *,
    plan: SelectionPlan | None = None,
    budget=None,
    exclude=None,
    labeled: LabeledSet | None = None,
    columns: PoolColumns | None = None,
) -> MiningRun:
    """Validate a run without fitting anything: the plan's settings first (no I/O), then the
    pool's schema and row count, the classes and the labeled features."""
    plan = resolve_plan(strategy, plan, budget=budget, exclude=exclude)
    if labeled is not None:
        labeled = labeled.in_id_order()
    src = open_pool(source, columns)
    if src.num_rows == 0:
        raise EmptyPoolError(f"the pool {src.where!r} has no rows")
    n_proba = src.columns.n_proba_columns
    classes = strategy.resolve_classes(labeled, n_proba_columns=n_proba)
    plan = plan.bind(classes=classes, labeled=labeled, total_rows=src.num_rows)
    run = MiningRun(strategy, src, plan, labeled)
    div = plan.diversity
    if div is not None and div.needs_embeddings and not src.columns.embedding:
        if not src.columns.has_features:
            raise InputError(
                f"{'near-duplicate suppression by radius' if div.near_duplicates is not None else 'cluster diversity'} "
                f"needs embeddings: the pool {src.where!r} brings probabilities only; name its embedding "
                "columns (--embedding-cols e0,e1,... or --embedding-prefix emb_)"
            )
        if labeled is None or labeled.X is None:
            raise InputError(
                "without embedding columns the pool's features are projected by a PCA fitted on the "
                "labeled set; give a labeled set with features, or embedding columns"
            )
    if n_proba is None and labeled is not None and labeled.X is not None:
        check_features(labeled.X, allow_nan=run.scorer.allow_nan, where="the labeled set", columns=src.columns.features)
    return run


def add_scored_rows(
    reducer: CandidateReducer,
    ids,
    scores,
    predicted,
    plan: SelectionPlan,
    *,
    embedding=None,
    hashes=None,
    attached: dict | None = None,
    keys=None,
) -> None:
    """Check one chunk's scores, drop excluded ids and give the rest to ``reducer``
    (with the rows' ``attached`` arrays, see :attr:`ChunkScorer.attach`; ``keys``: the ids' hashes, see
    :meth:`~activemine.selection.plan.SelectionPlan.excluded`)."""
    scores = np.asarray(scores)
    if scores.shape != ids.shape:
        raise InputError(f"a strategy returned {scores.shape[0]} scores for {ids.shape[0]} rows")
    if not np.isfinite(scores).all():
        raise InputError("scores must be finite; found NaN or infinity")
    n = ids.size
    drop = plan.excluded(ids, keys=keys)
    if drop is not None and drop.any():
        keep = ~drop
        ids, scores, predicted = ids[keep], scores[keep], np.asarray(predicted)[keep]
        embedding = None if embedding is None else np.asarray(embedding)[keep]
        hashes = None if hashes is None else np.asarray(hashes)[keep]
        attached = None if attached is None else {k: np.asarray(v)[keep] for k, v in attached.items()}
    reducer.add(ids, scores, predicted, rows=n, embedding=embedding, hashes=hashes, attached=attached)

"""Query-by-committee: a small committee of diverse models.

Members are diverse by a stratified bootstrap of the labeled set (every class
is present in every member), by their own seed, and optionally by a random
subset of the features. :meth:`Committee.grow` adds one member trained on a
newly labeled batch plus a resample of the existing labels (Active-Decorate).

Every member's class counts are kept (``member_class_counts_``); a member
trained on fewer than ``min_class_count`` rows of some class votes on that
class almost blindly, which :class:`RareClassWarning` says.
"""

from __future__ import annotations

import warnings

import numpy as np

from activemine.errors import InputError, SingleClassError, UnknownLabelError
from activemine.models import make_model, predict_proba_aligned, run_parallel, threads_per_task

__all__ = ["Committee", "RareClassWarning", "stratified_bootstrap"]

#: Fewest training rows of a class a member may see without a :class:`RareClassWarning`.
MIN_CLASS_COUNT = 5


class RareClassWarning(UserWarning):
    """A committee member was trained on fewer than ``min_class_count`` rows of some class."""


def stratified_bootstrap(y, *, rng: np.random.Generator, size: int | None = None) -> np.ndarray:
    """Row indices drawn with replacement within each class, every class at least once.

    With ``size`` None each class keeps its count; otherwise the classes share
    ``size`` in proportion to their counts.
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    if size is None:
        per_class = counts
    else:
        per_class = np.maximum(1, np.round(counts * (size / y.size)).astype(np.int64))
    parts = [rng.choice(np.flatnonzero(y == c), size=int(n), replace=True) for c, n in zip(classes, per_class)]
    return np.sort(np.concatenate(parts))


class Committee:
    """A committee of ``n_members`` models built from one estimator template.

    Parameters
    ----------
    estimator : model name or scikit-learn classifier (see :func:`activemine.models.make_model`).
    n_members : committee size (2-3 is usually enough).
    bootstrap : train each member on a stratified bootstrap sample.
    feature_fraction : share of feature columns each member sees (1.0 = all).
    random_state : seed of all of the committee's random choices.
    min_class_count : a member trained on fewer rows of a class than this
        raises a :class:`RareClassWarning` (bootstrap duplicates count as rows).
    n_jobs : threads in all (None = the CPUs available to the process), shared by the
        members fitted and scored at once (joblib threads) and each member's own
        threads. Inside ``joblib.parallel_backend("ray")`` (after
        ``ray.util.joblib.register_ray()``) they run as Ray tasks on a cluster.
    """

    def __init__(
        self,
        estimator="lightgbm",
        *,
        n_members: int = 3,
        bootstrap: bool = True,
        feature_fraction: float = 1.0,
        random_state: int = 0,
        n_jobs: int | None = None,
        min_class_count: int = MIN_CLASS_COUNT,
    ):
        self.estimator = estimator
        self.n_jobs = n_jobs
        self.n_members = n_members
        self.bootstrap = bootstrap
        self.feature_fraction = feature_fraction
        self.random_state = random_state
        self.min_class_count = min_class_count

    def _member_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.random_state, index])

    def _fit_member(self, index: int, X, y, rows: np.ndarray | None):
        rng = self._member_rng(index)
        if rows is None:
            rows = stratified_bootstrap(y, rng=rng) if self.bootstrap else np.arange(len(y))
        n_features = X.shape[1]
        features = np.arange(n_features)
        if self.feature_fraction < 1.0:
            take = max(1, int(round(self.feature_fraction * n_features)))
            features = np.sort(rng.choice(n_features, size=take, replace=False))
        model = make_model(
            self.estimator,
            random_state=int(rng.integers(2**31 - 1)),
            n_jobs=threads_per_task(self.n_jobs, self.n_members),
        )
        model.fit(X[rows][:, features], y[rows])
        counts = np.array([(y[rows] == c).sum() for c in self.classes_], dtype=np.int64)  # (k,)
        return model, features, counts

    def _add_members(self, fitted: list) -> None:
        start = len(self.members_)
        self.members_.extend((model, features) for model, features, _ in fitted)
        counts = np.array([c for _, _, c in fitted], dtype=np.int64).reshape(len(fitted), self.classes_.size)
        self.member_class_counts_ = np.vstack([self.member_class_counts_, counts])
        below = zip(*np.nonzero(counts < self.min_class_count))
        rare = [(start + i, self.classes_[j].item(), int(counts[i, j])) for i, j in below]
        if rare:
            seen = ", ".join(f"member {i}: {n} of class {c!r}" for i, c, n in rare[:10])
            warnings.warn(
                f"{len(rare)} committee member/class pair(s) trained on fewer than {self.min_class_count} rows "
                f"({seen}); those members vote on those classes almost blindly. Label more of the rare classes "
                "or check member_class_counts_.",
                RareClassWarning,
                stacklevel=3,
            )

    def fit(self, X, y) -> Committee:
        """Fit ``n_members`` members on ``X`` ``(n, d)`` and labels ``y`` ``(n,)``.

        Sets ``members_``, ``classes_`` and ``member_class_counts_`` ``(m, k)``;
        warns with :class:`RareClassWarning` when a member saw fewer than
        ``min_class_count`` rows of a class.
        """
        if self.n_members < 1:
            raise InputError(f"n_members must be at least 1, got {self.n_members}")
        if not 0.0 < self.feature_fraction <= 1.0:
            raise InputError(f"feature_fraction must be in (0, 1], got {self.feature_fraction}")
        if int(self.min_class_count) != self.min_class_count or self.min_class_count < 0:
            raise InputError(f"min_class_count must be a non-negative integer, got {self.min_class_count}")
        X, y = np.asarray(X), np.asarray(y)
        self.classes_ = np.unique(y)
        if self.classes_.size < 2:
            raise SingleClassError(f"a committee needs at least two classes, got only {self.classes_.tolist()}")
        self.n_fits_ = 0
        self.members_ = []
        #: (m, k) training rows of each class (columns in the order of ``classes_``) per member
        self.member_class_counts_ = np.zeros((0, self.classes_.size), dtype=np.int64)
        # each member draws from its own seeded generator, so running them concurrently
        # gives the same members as one after the other
        self._add_members(
            run_parallel(self.n_jobs, [(self._fit_member, (i, X, y, None)) for i in range(self.n_members)])
        )
        self.n_fits_ = self.n_members
        return self

    def grow(self, X_new, y_new, X_old=None, y_old=None, *, resample_size: int | None = None) -> Committee:
        """Append one member trained on a new batch plus a stratified resample of the old labels.

        ``resample_size`` defaults to the size of the new batch. The resample is
        stratified, every class at least once; the new member's class counts
        join ``member_class_counts_`` (and may raise a :class:`RareClassWarning`).
        """
        X_new, y_new = np.asarray(X_new), np.asarray(y_new)
        unknown = np.setdiff1d(np.unique(y_new), self.classes_)
        if unknown.size:
            raise UnknownLabelError(
                f"new labels {unknown.tolist()} are not among the committee's classes {self.classes_.tolist()}"
            )
        X, y = X_new, y_new
        index = len(self.members_)
        if X_old is not None:
            X_old, y_old = np.asarray(X_old), np.asarray(y_old)
            rows = stratified_bootstrap(y_old, rng=self._member_rng(index + 10_000), size=resample_size or len(y_new))
            X = np.concatenate([X_new, X_old[rows]])
            y = np.concatenate([y_new, y_old[rows]])
        self._add_members([self._fit_member(index, X, y, np.arange(len(y)))])
        self.n_fits_ += 1
        return self

    def predict_proba_stack(self, X) -> np.ndarray:
        """Member probabilities ``(m, n, k)``, columns in the order of ``classes_``."""
        X = np.asarray(X)
        calls = [(predict_proba_aligned, (m, X[:, f], self.classes_)) for m, f in self.members_]
        return np.stack(run_parallel(self.n_jobs, calls))

    def predict_proba(self, X) -> np.ndarray:
        """Consensus probabilities ``(n, k)``: the members' mean."""
        return self.predict_proba_stack(X).mean(axis=0)

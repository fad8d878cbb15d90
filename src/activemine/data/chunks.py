"""In-memory containers for the labeled set and for pool chunks.

A :class:`PoolChunk` holds what a strategy needs to score some pool rows:
their ids and either features ``X`` or precomputed probabilities. Strategies
score chunk by chunk, so the same code serves an in-memory pool and a stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activemine.errors import InputError
from activemine.selection.batch import check_ids

__all__ = ["LabeledSet", "PoolChunk"]


def _check_rows(name: str, arr, n: int) -> None:
    if arr is not None and len(arr) != n:
        raise InputError(f"{name} has {len(arr)} rows but ids has {n}; they must be aligned")


@dataclass
class LabeledSet:
    """Labeled data: features ``X`` ``(n, d)`` (None when only probabilities are used),
    labels ``y`` ``(n,)`` and optional unique ``ids`` ``(n,)``. For images, ``image_shape``
    is ``(C, H, W)`` and each row of ``X`` is an image flattened channel-first."""

    X: np.ndarray | None
    y: np.ndarray
    ids: np.ndarray | None = None
    image_shape: tuple[int, int, int] | None = None

    def __post_init__(self):
        self.y = np.asarray(self.y)
        if self.y.ndim != 1:
            raise InputError(f"labels must be one-dimensional, got shape {self.y.shape}")
        if self.y.dtype.kind == "f" and np.isnan(self.y).any():
            raise InputError(f"labels contain {int(np.isnan(self.y).sum())} missing (NaN) values")
        if self.y.dtype.kind == "O" and any(v is None for v in self.y):
            raise InputError("labels contain missing (None) values")
        if self.X is not None:
            self.X = np.asarray(self.X)
            _check_rows("labeled X", self.X, self.y.size)
        if self.ids is not None:
            self.ids = check_ids(self.ids, name="labeled ids")
            _check_rows("labeled ids", self.ids, self.y.size)

    def __len__(self) -> int:
        return int(self.y.size)

    def in_id_order(self) -> LabeledSet:
        """The same rows ordered by id (numbers by value, strings by code point), or ``self`` when
        they have no ids or already are. Models may depend on row order (subsamples, folds, ties), so
        every engine trains on this order: the batch does not depend on how the rows came in."""
        if self.ids is None or self.ids.size < 2:
            return self
        order = np.argsort(self.ids, kind="stable")
        if (order[1:] > order[:-1]).all():
            return self
        X = None if self.X is None else self.X[order]
        return LabeledSet(X, self.y[order], self.ids[order])


@dataclass
class PoolChunk:
    """Some pool rows: ``ids`` ``(n,)``, features ``X`` ``(n, d)``, precomputed
    probabilities ``proba`` ``(n, k)``, ``weak_proba`` ``(n, k)`` (HW) or
    ``member_proba`` ``(m, n, k)`` (committee). Any of the last four may be None.

    For batches without copies (:mod:`activemine.diversity.select`): ``embedding``
    ``(n, e)`` and ``hashes`` ``(n,)`` (a content hash per row); strategies
    never read them."""

    ids: np.ndarray
    X: np.ndarray | None = None
    proba: np.ndarray | None = None
    weak_proba: np.ndarray | None = None
    member_proba: np.ndarray | None = None
    embedding: np.ndarray | None = None
    hashes: np.ndarray | None = None

    def __post_init__(self):
        self.ids = np.asarray(self.ids)
        n = self.ids.shape[0]
        for name in ("X", "proba", "weak_proba", "embedding", "hashes"):
            _check_rows(f"pool {name}", getattr(self, name), n)
        if self.member_proba is not None and np.shape(self.member_proba)[1] != n:
            raise InputError(f"member_proba covers {np.shape(self.member_proba)[1]} rows but ids has {n}")

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def rows(self, start: int, stop: int) -> PoolChunk:
        """The rows ``[start, stop)`` as a new chunk (views, no copies)."""
        cut = lambda a: None if a is None else a[start:stop]  # noqa: E731
        member = None if self.member_proba is None else self.member_proba[:, start:stop]
        return PoolChunk(
            self.ids[start:stop],
            cut(self.X),
            cut(self.proba),
            cut(self.weak_proba),
            member,
            cut(self.embedding),
            cut(self.hashes),
        )

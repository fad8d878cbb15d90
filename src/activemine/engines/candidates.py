"""Exact candidate reduction: keep few rows of a stream, select as if all were kept.

:func:`activemine.selection.select_batch` picks, in each quota group (a
predicted class, or the whole pool without quotas), the ``h`` highest scores
(ties by smaller id) and then the ``e`` smallest id keys among the group's
other rows, ``h + e = quota``. Two facts make a reduction exact:

* the hard rows are among the group's top-``h`` by (score desc, id asc);
* the easy rows are among the group's ``h + e`` smallest (key, id): at most
  ``h`` of those are taken by the hard stratum.

So per group it suffices to keep the top-``H`` by score and the smallest-``Q``
keys, where ``Q`` is an upper bound of the group's final quota and ``H`` its
hard share, plus the per-class counts of selectable rows (quotas depend only
on those). Quotas are not known until the stream ends, but the counts seen so
far are lower bounds of the final ones, which bounds the final quota
(:meth:`activemine.plan.SelectionPlan.quota_bounds`); the bound only shrinks as rows arrive,
so a row that falls out of a group's candidates can never come back. Kept rows
are at most about ``budget + easy share`` per group, whatever the pool size.
"""

from __future__ import annotations

import numpy as np

from activemine.errors import InputError
from activemine.plan import SelectionPlan
from activemine.selection import id_keys, split_hard_easy

__all__ = ["CandidateReducer"]

_MAX_KEY = np.uint64(np.iinfo(np.uint64).max)

#: Rows a candidate buffer may hold beyond twice its limit before it is pruned.
PRUNE_SLACK = 1024


class _Best:
    """The ``limit`` rows of smallest ``(primary, id)`` pushed so far.

    Rows are tuples of aligned arrays ``(primary, ids, *payload)``; :meth:`push`
    and :meth:`shrink` return the rows that can no longer be among the best
    (or None), so the caller can hand them on.
    """

    def __init__(self, limit: int):
        self.limit = int(limit)
        self.parts: list[tuple] = []
        self.size = 0
        self.cut = None  # once full, a row with a larger primary can never enter

    def push(self, rows: tuple) -> tuple | None:
        if self.limit == 0:
            return rows
        out = None
        if self.cut is not None:
            enter = rows[0] <= self.cut
            if not enter.all():
                rows, out = _split(rows, enter)
        if rows[1].size:
            self.parts.append(rows)
            self.size += rows[1].size
        # prune lazily: amortised over many chunks, each row is partitioned O(1) times
        if self.size > 2 * self.limit + PRUNE_SLACK:
            out = _join(out, self.prune())
        return out

    def shrink(self, limit: int) -> tuple | None:
        if limit < self.limit:
            self.limit = int(limit)
            if self.size > 2 * self.limit + PRUNE_SLACK:
                return self.prune()
        return None

    def prune(self) -> tuple | None:
        """Keep only the best ``limit`` rows; return the others."""
        if not self.parts:
            return None
        rows = self.parts[0] if len(self.parts) == 1 else tuple(np.concatenate(a) for a in zip(*self.parts))
        out = None
        if self.size > self.limit:
            primary = rows[0]
            threshold = np.partition(primary, self.limit - 1)[self.limit - 1]
            keep = primary < threshold
            ties = np.flatnonzero(primary == threshold)
            room = self.limit - int(np.count_nonzero(keep))
            if ties.size > room:
                ties = ties[np.argsort(rows[1][ties], kind="stable")[:room]]
            keep[ties] = True
            rows, out = _split(rows, keep)
        if rows[1].size >= self.limit and rows[1].size:
            self.cut = rows[0].max()
        self.parts = [rows]
        self.size = int(rows[1].size)
        return out

    def rows(self) -> tuple | None:
        self.prune()
        return self.parts[0] if self.parts else None


def _split(rows: tuple, mask: np.ndarray) -> tuple[tuple, tuple]:
    inside, outside = np.flatnonzero(mask), np.flatnonzero(~mask)
    return tuple(a.take(inside) for a in rows), tuple(a.take(outside) for a in rows)


def _join(a: tuple | None, b: tuple | None) -> tuple | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple(np.concatenate(pair) for pair in zip(a, b))


class CandidateReducer:
    """Feed scored rows in any order and chunking; get back a small candidate set on which
    :func:`~activemine.selection.select_batch` with ``available_counts`` gives the same
    batch as on all rows.

    Per group, a hard buffer keeps the best scores; a row that cannot be hard
    (filtered or pruned out of it) goes on to the easy buffer, which keeps the
    smallest id keys of such rows, so the easy buffer needs only the easy
    share of the quota. Rows given to :meth:`add` must be selectable
    (exclusions already applied).
    """

    def __init__(self, plan: SelectionPlan):
        self.plan = plan
        self.counts = np.zeros(plan.n_classes, dtype=np.int64)
        self.rows_seen = 0
        self.bounds = plan.quota_bounds(self.counts, 0)
        self.with_keys = plan.easy_share > 0
        self.hard = [_Best(self._split(q)[0]) for q in self.bounds]
        self.easy = [_Best(self._split(q)[1]) for q in self.bounds]
        self.score_dtype = np.dtype(np.float16)  # widened to the scores' dtype as they arrive

    def _split(self, quota) -> tuple[int, int]:
        # both parts grow with the quota, so bounds of the quota bound them
        return split_hard_easy(int(quota), self.plan.easy_share)

    def add(self, ids, scores, predicted, *, counts=None, rows: int | None = None) -> None:
        """Add selectable rows ``(n,)`` each; ``counts`` ``(n_classes,)`` and ``rows`` default to
        those of the rows themselves (give them when the rows are already a reduction)."""
        ids, scores = np.asarray(ids), np.asarray(scores)
        predicted = np.asarray(predicted, dtype=np.int64)
        n_classes = self.plan.n_classes
        if predicted.size and (predicted.min() < 0 or predicted.max() >= n_classes):
            raise InputError(
                f"predicted class indices must lie in [0, {n_classes}), got {predicted.min()}..{predicted.max()}"
            )
        self.counts += np.bincount(predicted, minlength=n_classes) if counts is None else np.asarray(counts)
        self.rows_seen += ids.size if rows is None else int(rows)
        self.bounds = np.minimum(self.bounds, self.plan.quota_bounds(self.counts, self.rows_seen))
        for g, q in enumerate(self.bounds):
            n_hard, n_easy = self._split(q)
            self._to_easy(g, self.hard[g].shrink(n_hard))
            self.easy[g].shrink(n_easy)
        if ids.size == 0:
            return
        self.score_dtype = np.result_type(self.score_dtype, scores.dtype)
        neg = -scores.astype(np.float64)
        keys = id_keys(ids, seed=self.plan.seed) if self.with_keys else np.zeros(ids.size, np.uint64)
        grouped = self.plan.n_groups > 1
        group = predicted if grouped else np.zeros(ids.size, np.int64)
        # drop at once the rows that neither buffer of their group can take (most rows, once both are full)
        hard_cut = np.array([np.inf if b.cut is None else b.cut for b in self.hard])
        maybe = neg <= hard_cut[group]
        if self.with_keys:
            easy_cut = np.array([_MAX_KEY if b.cut is None else b.cut for b in self.easy], dtype=np.uint64)
            maybe |= keys <= easy_cut[group]
        if not maybe.all():
            inside = np.flatnonzero(maybe)  # the rest is dropped: no copy of it
            neg, ids, keys, predicted = (a.take(inside) for a in (neg, ids, keys, predicted))
        if not grouped:  # a single group needs the predicted class carried along
            self._to_easy(0, self.hard[0].push((neg, ids, keys, predicted)))
            return
        for g in range(self.plan.n_groups):
            rows_of_g = np.flatnonzero(predicted == g)
            if rows_of_g.size:
                part = (neg.take(rows_of_g), ids.take(rows_of_g), keys.take(rows_of_g))
                self._to_easy(g, self.hard[g].push(part))

    def _to_easy(self, g: int, rows: tuple | None) -> None:
        if rows is None or not self.with_keys or not rows[1].size:
            return
        self.easy[g].push((rows[2], rows[1], rows[0], *rows[3:]))

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, scores, predicted, available_counts)``: the candidate rows, sorted by id, and
        the selectable rows per class of everything added."""
        parts = []
        for g in range(self.plan.n_groups):
            hard = self.hard[g]
            self._to_easy(g, hard.prune())
            for buffer, at in ((hard, 0), (self.easy[g], 2)):
                rows = buffer.rows()
                if rows is not None and rows[1].size:
                    predicted = rows[3] if len(rows) > 3 else np.full(rows[1].size, g, dtype=np.int64)
                    parts.append((rows[1], rows[at], predicted))
        if not parts:
            return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64), self.counts.copy()
        ids, neg, predicted = (np.concatenate(a) for a in zip(*parts))
        order = np.argsort(ids, kind="stable")
        # -(-x) is exact, and float32 -> float64 -> float32 too, so scores come back bit for bit
        scores = (-neg[order]).astype(self.score_dtype)
        return ids[order], scores, predicted[order], self.counts.copy()

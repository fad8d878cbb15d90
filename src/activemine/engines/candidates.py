"""Exact candidate reduction: keep few rows of a stream, select as if all were kept.

:func:`activemine.selection.batch.select_batch` picks, in each quota group (a
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
(:meth:`activemine.selection.plan.SelectionPlan.quota_bounds`); the bound only shrinks as rows arrive,
so a row that falls out of a group's candidates can never come back. Kept rows
are at most about ``budget + easy share`` per group, whatever the pool size.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from activemine.errors import InputError
from activemine.selection.batch import id_keys, split_hard_easy
from activemine.selection.plan import SelectionPlan

__all__ = ["CandidateReducer"]

_MAX_KEY = np.uint64(np.iinfo(np.uint64).max)

#: Rows a candidate buffer may hold beyond its limit before it is pruned (at least; half the limit
#: when that is more: a prune copies at most 1.5x the limit and lets half a limit go, so pruning
#: costs O(1) copies per row that entered). 0: prune whenever a buffer holds more than its limit (tests).
PRUNE_SLACK = 1024


class _Best:
    """The ``limit`` rows of smallest ``(primary, id)`` pushed so far.

    Rows are tuples of aligned arrays ``(primary, ids, *payload)`` (a payload may
    be 2-d, rows first); :meth:`push` and :meth:`shrink` return the rows that can
    no longer be among the best (or None), so the caller can hand them on. A
    ``handoff(column, out) -> wanted`` callable, given a getter of the rows'
    columns and the mask ``(n,)`` of rows let go, says which of those the
    receiver takes: the others are never copied. ``dropped`` tells whether any
    row pushed was ever let go.
    """

    def __init__(self, limit: int, handoff=None):
        self.limit = int(limit)
        self.parts: list[tuple] = []
        self.size = 0
        self.cut = None  # once full, a row with a larger primary can never enter
        self.dropped = False
        self.handoff = handoff

    def _overflow(self) -> int:
        return self.limit + (max(PRUNE_SLACK, self.limit // 2) if PRUNE_SLACK else 0)

    def push(self, rows: tuple) -> tuple | None:
        if not rows[1].size:
            return None
        if self.limit == 0:
            self.dropped = True
            wanted = self._wanted(lambda c: rows[c], np.ones(rows[1].size, dtype=bool))
            return _select([rows], wanted) if wanted.any() else None
        out = None
        if self.cut is not None:
            enter = rows[0] <= self.cut
            if not enter.all():
                self.dropped = True
                wanted = self._wanted(lambda c: rows[c], ~enter)
                rows, out = _select([rows], enter, also=wanted) if wanted.any() else (_select([rows], enter), None)
        if rows[1].size:
            self.parts.append(rows)
            self.size += rows[1].size
        # prune lazily: amortised over many chunks, each row is partitioned O(1) times
        if self.size > self._overflow():
            out = _join(out, self.prune())
        return out

    def shrink(self, limit: int) -> tuple | None:
        if limit < self.limit:
            self.limit = int(limit)
            if self.size > self._overflow():
                return self.prune()
        return None

    def _wanted(self, column, out: np.ndarray) -> np.ndarray:
        return out if self.handoff is None else self.handoff(column, out)

    def prune(self) -> tuple | None:
        """Keep only the best ``limit`` rows; return the others the handoff wants.

        Only the primary and id columns are joined; every other column is copied
        once, straight from the parts into the rows kept (and handed on).
        """
        if not self.parts:
            return None
        parts, self.parts = self.parts, []
        column = _columns(parts)
        out = None
        if self.size > self.limit:
            primary = column(0)
            keep = np.zeros(primary.size, dtype=bool)
            if self.limit:
                threshold = np.partition(primary, self.limit - 1)[self.limit - 1]
                keep = primary < threshold
                ties = np.flatnonzero(primary == threshold)
                room = self.limit - int(np.count_nonzero(keep))
                if ties.size > room:
                    ties = ties[np.argsort(column(1)[ties], kind="stable")[:room]]
                keep[ties] = True
            self.dropped = True
            wanted = self._wanted(column, ~keep)
            rows = _select(parts, keep, also=wanted)
            rows, out = rows if wanted.any() else (rows[0], None)
        else:
            rows = parts[0] if len(parts) == 1 else tuple(column(c) for c in range(len(parts[0])))
        del parts, column
        if rows[1].size >= self.limit and rows[1].size:
            self.cut = rows[0].max()
        self.parts = [rows]
        self.size = int(rows[1].size)
        return out

    def rows(self) -> tuple | None:
        self.prune()
        return self.parts[0] if self.parts else None

    def boundary(self) -> tuple | None:
        """The worst kept ``(primary, id)`` when rows were let go (rows past it may be missing), else None."""
        rows = self.rows()
        if not self.dropped:
            return None
        if rows is None or not rows[1].size:
            return "all"  # nothing kept: every row of the group may be missing
        worst = rows[0].max()
        return worst, np.sort(rows[1][rows[0] == worst])[-1]  # sort, not max: numpy has no max of strings


def _nothing(column, out: np.ndarray) -> np.ndarray:
    """The handoff of a buffer whose rows let go are dropped."""
    return np.zeros_like(out)


def _join(a: tuple | None, b: tuple | None) -> tuple | None:
    if a is None or b is None:
        return a if b is None else b
    return tuple(np.concatenate(pair) for pair in zip(a, b))


def _columns(parts: list[tuple]):
    """A getter of column ``c`` of ``parts`` joined (cached: primary and ids are read more than once)."""
    cache: dict = {}

    def column(c: int) -> np.ndarray:
        if c not in cache:
            cache[c] = parts[0][c] if len(parts) == 1 else np.concatenate([p[c] for p in parts])
        return cache[c]

    return column


def _select(parts: list[tuple], mask: np.ndarray, *, also: np.ndarray | None = None):
    """The rows of ``parts`` (joined) under ``mask`` ``(n,)``, column by column, each copied once
    into its place; with ``also``, the pair (rows under ``mask``, rows under ``also``)."""
    masks = [mask] if also is None else [mask, also]
    sizes = [p[1].size for p in parts]
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    counts = [[int(np.count_nonzero(m[bounds[i] : bounds[i + 1]])) for i in range(len(parts))] for m in masks]
    result = [[] for _ in masks]
    for c in range(len(parts[0])):
        dtype = np.result_type(*(p[c] for p in parts))
        arrays = [p[c].astype(dtype, copy=False) for p in parts]
        for k, m in enumerate(masks):
            out = np.empty((sum(counts[k]),) + arrays[0].shape[1:], dtype=dtype)
            at = 0
            for i, a in enumerate(arrays):
                if counts[k][i]:
                    np.compress(m[bounds[i] : bounds[i + 1]], a, axis=0, out=out[at : at + counts[k][i]])
                    at += counts[k][i]
            result[k].append(out)
    rows = tuple(result[0])
    return rows if also is None else (rows, tuple(result[1]))


class CandidateReducer:
    """Feed scored rows in any order and chunking; get back a small candidate set on which
    :func:`~activemine.selection.batch.select_batch` with ``available_counts`` gives the same
    batch as on all rows.

    Per group, a hard buffer keeps the best scores; a row that cannot be hard
    (filtered or pruned out of it) goes on to the easy buffer, which keeps the
    smallest id keys of such rows, so the easy buffer needs only the easy
    share of the quota. Rows given to :meth:`add` must be selectable
    (exclusions already applied).

    With the plan's diversity options (:mod:`activemine.diversity.select`) both buffers
    keep ``candidate_factor`` times as many rows, rows carry their embedding and
    content hash, a third buffer keeps the seeded sample (the ``sample_size``
    smallest sample keys, with embeddings), and :meth:`diverse_inputs` gives the
    selection what it needs to tell whether the candidates decide the batch.
    """

    def __init__(self, plan: SelectionPlan):
        self.plan = plan
        self.counts = np.zeros(plan.n_classes, dtype=np.int64)
        self.rows_seen = 0
        div = plan.diversity if plan.diversity is not None and plan.diversity.active else None
        self.diversity = div
        self.factor = div.factor if div is not None else 1.0
        self.with_keys = plan.easy_share > 0
        self.bounds = plan.quota_bounds(self.counts, 0)
        self.hard = [_Best(self._split(q)[0], handoff=partial(self._easy_wants, g)) for g, q in enumerate(self.bounds)]
        self.easy = [_Best(self._split(q)[1], handoff=_nothing) for q in self.bounds]
        self.sample = _Best(div.sample_size, handoff=_nothing) if div is not None and div.needs_embeddings else None
        self.score_dtype = np.dtype(np.float16)  # widened to the scores' dtype as they arrive
        self.payload_width = None  # embedding columns, fixed by the first rows with a payload
        self.attached_names: tuple | None = None  # names of the arrays carried along, fixed by the first rows

    def _split(self, quota) -> tuple[int, int]:
        # both parts grow with the quota, so bounds of the quota bound them
        hard, easy = split_hard_easy(int(quota), self.plan.easy_share)
        if self.factor > 1:
            hard, easy = int(np.ceil(self.factor * hard)), int(np.ceil(self.factor * easy))
        return hard, easy

    def add(
        self,
        ids,
        scores,
        predicted,
        *,
        counts=None,
        rows: int | None = None,
        embedding=None,
        hashes=None,
        sample: tuple | None = None,
        dropped: tuple | None = None,
        attached: dict | None = None,
    ) -> None:
        """Add selectable rows ``(n,)`` each; ``counts`` ``(n_classes,)`` and ``rows`` default to
        those of the rows themselves (give them when the rows are already a reduction).

        With diversity options: ``embedding`` ``(n, e)`` and ``hashes`` ``(n,)`` of the rows;
        a reduction also hands on its ``sample`` (``(ids, embedding)``) and which of its
        buffers ``dropped`` rows (``(hard (n_groups,), easy (n_groups,))`` bools).
        ``attached``: arrays ``(n, ...)`` by name, carried along with the rows (the same names in every call).
        """
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
        if dropped is not None:
            for g in range(self.plan.n_groups):
                self.hard[g].dropped |= bool(dropped[0][g])
                self.easy[g].dropped |= bool(dropped[1][g])
        payload = self._payload(ids, embedding, hashes) + self._attached(ids, attached)
        if self.sample is not None:
            from activemine.diversity.geometry import sample_keys

            s_ids, s_emb = (ids, payload[0]) if sample is None else sample
            if len(s_ids):
                self.sample.push((sample_keys(s_ids, seed=self.plan.seed), np.asarray(s_ids), np.asarray(s_emb)))
        if ids.size == 0:
            return
        self.score_dtype = np.result_type(self.score_dtype, scores.dtype)
        neg = -scores.astype(np.float64)
        keys = id_keys(ids, seed=self.plan.seed) if self.with_keys else np.zeros(ids.size, np.uint64)
        grouped = self.plan.n_groups > 1
        group = predicted if grouped else np.zeros(ids.size, np.int64)
        # drop at once the rows that neither buffer of their group can take (most rows, once both are full)
        hard_cut = np.array([np.inf if b.cut is None else b.cut for b in self.hard])
        to_hard = neg <= hard_cut[group]
        maybe = to_hard
        if self.with_keys:
            easy_cut = np.array([_MAX_KEY if b.cut is None else b.cut for b in self.easy], dtype=np.uint64)
            maybe = to_hard | (keys <= easy_cut[group])
        if not maybe.all():
            for g in np.unique(group[~maybe]).tolist():
                self.hard[g].dropped = self.easy[g].dropped = True
        columns = (neg, ids, keys, predicted, *payload)
        # each row kept is copied once, straight into the buffer that takes it
        for g in range(self.plan.n_groups) if grouped else [0]:
            in_g = group == g if grouped else None
            for buffer, mask in ((self.hard[g], to_hard), (None, maybe & ~to_hard)):
                mask = mask if in_g is None else mask & in_g
                if buffer is not None and mask.all():
                    self._to_easy(g, buffer.push(columns))
                    continue
                at = np.flatnonzero(mask)
                if not at.size:
                    continue
                part = tuple(a.take(at, axis=0) for a in columns)
                if buffer is None:  # rows past the hard cut that the easy buffer takes
                    self.hard[g].dropped = True
                    self._to_easy(g, part)
                else:
                    self._to_easy(g, buffer.push(part))

    def _easy_wants(self, g: int, column, out: np.ndarray) -> np.ndarray:
        """Which rows ``out`` ``(n,)`` let go by hard buffer ``g`` its easy buffer takes (``column(2)``: their keys)."""
        easy = self.easy[g]
        if not self.with_keys or easy.limit == 0:
            easy.dropped = easy.dropped or bool(out.any())
            return np.zeros_like(out)
        if easy.cut is None:
            return out
        wanted = out & (column(2) <= easy.cut)
        if np.count_nonzero(wanted) < np.count_nonzero(out):
            easy.dropped = True
        return wanted

    def _payload(self, ids, embedding, hashes) -> list:
        """The diversity payload of rows: ``[embedding (n, e)]`` and/or ``[hashes (n,)]``."""
        div = self.diversity
        if div is None:
            return []
        if len(ids) == 0:  # nothing to check or carry
            return ([np.empty((0, self.payload_width or 0), np.float32)] if div.needs_embeddings else []) + (
                [np.empty(0, np.int64)] if div.dedup else []
            )
        out = []
        if div.needs_embeddings:
            if embedding is None:
                raise InputError("the diversity options need an embedding for every pool row")
            from activemine.diversity.options import check_embeddings

            emb = check_embeddings(embedding, n_rows=len(ids), width=self.payload_width, where="pool embedding")
            self.payload_width = emb.shape[1]
            out.append(emb)
        if div.dedup:
            if hashes is None:
                raise InputError("dedup needs a content hash for every pool row (--dedup-col)")
            out.append(np.asarray(hashes))
        return out

    def _attached(self, ids, attached: dict | None) -> list:
        names = tuple(attached) if attached else ()
        if self.attached_names is None and names:
            self.attached_names = names
        if names != (self.attached_names or ()) and len(ids):
            raise InputError(
                f"every chunk must carry the same attached arrays; got {list(names)} after "
                f"{list(self.attached_names or ())}"
            )
        out = [np.asarray(attached[k]) for k in names]
        for name, values in zip(names, out):
            if values.shape[:1] != (len(ids),):
                raise InputError(f"attached array {name!r} has {values.shape[:1]} rows for {len(ids)} ids")
        return out

    def _to_easy(self, g: int, rows: tuple | None) -> None:
        if rows is None or not rows[1].size:
            return
        if not self.with_keys:
            self.easy[g].dropped = True
            return
        self.easy[g].push((rows[2], rows[1], rows[0], *rows[3:]))

    def _gather(self) -> tuple:
        parts = []
        for g in range(self.plan.n_groups):
            hard = self.hard[g]
            self._to_easy(g, hard.prune())
            for buffer, at in ((hard, 0), (self.easy[g], 2)):
                rows = buffer.rows()
                if rows is not None and rows[1].size:
                    parts.append((rows[1], rows[at], rows[3], *rows[4:]))
        return parts

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(ids, scores, predicted, available_counts)``: the candidate rows, sorted by id, and
        the selectable rows per class of everything added."""
        ids, scores, predicted, _payload = self._candidates_with_payload()
        return ids, scores, predicted, self.counts.copy()

    def _candidates_with_payload(self, release: bool = False):
        """The candidates sorted by id: ``(ids, scores, predicted, payload)``. Each column is copied
        once, from the buffers straight into its sorted place; with ``release`` the buffers let go
        of each column once it is copied (the reducer is spent: a rescan makes a new one)."""
        parts = [list(p) for p in self._gather()]
        if release:
            for buffer in (*self.hard, *self.easy):
                buffer.parts, buffer.size = [], 0
        if not parts:
            empty = (
                [np.empty((0, self.payload_width or 0), np.float32)]
                if self.diversity and self.diversity.needs_embeddings
                else []
            )
            if self.diversity is not None and self.diversity.dedup:
                empty.append(np.empty(0, np.int64))
            return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64), empty
        sizes = [p[0].shape[0] for p in parts]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        ids = np.concatenate([p[0] for p in parts])
        order = np.argsort(ids, kind="stable")
        place = np.empty_like(order)
        place[order] = np.arange(order.size)
        columns = [ids[order]]
        del ids
        for c in range(1, len(parts[0])):
            dtype = np.result_type(*(p[c] for p in parts))
            out = np.empty((order.size,) + parts[0][c].shape[1:], dtype=dtype)
            for i, p in enumerate(parts):
                out[place[starts[i] : starts[i + 1]]] = p[c]
                if release:
                    p[c] = None
            columns.append(out)
        ids, neg, predicted, *payload = columns
        # -(-x) is exact, and float32 -> float64 -> float32 too, so scores come back bit for bit
        scores = (-neg).astype(self.score_dtype)
        return ids, scores, predicted, payload

    def diverse_candidates(
        self, *, release: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """``(ids, scores, predicted, available_counts, extra)``: :meth:`candidates` and, in
        ``extra``, the keyword arguments of :meth:`SelectionPlan.select` for a diverse selection
        (``embedding``, ``hashes`` and ``diverse``: the sample and each group's boundaries).
        ``release``: let the buffers go while copying out (peak memory: the candidates once, not twice);
        the reducer cannot be used afterwards."""
        div = self.diversity
        diverse: dict = {}
        if div is not None:
            for g in range(self.plan.n_groups):
                self._to_easy(g, self.hard[g].prune())  # the rows the hard buffers let go reach the easy ones first
            diverse["hard_bounds"] = [b.boundary() for b in self.hard]
            diverse["easy_bounds"] = [b.boundary() for b in self.easy] if self.with_keys else None
            if self.sample is not None:
                rows = self.sample.rows()
                if rows is not None and rows[1].size:
                    order = np.lexsort((rows[1], rows[0]))
                    diverse["sample"] = rows[2].take(order, axis=0)
        ids, scores, predicted, payload = self._candidates_with_payload(release)
        extra: dict = {}
        names = self.attached_names or ()
        if names and len(payload) >= len(names):  # carried arrays come last
            extra["attached"] = dict(zip(names, payload[len(payload) - len(names) :]))
            payload = payload[: len(payload) - len(names)]
        if div is None:
            return ids, scores, predicted, self.counts.copy(), extra
        if div.needs_embeddings:
            extra["embedding"] = payload.pop(0)
        if div.dedup:
            extra["hashes"] = payload.pop(0)
        extra["diverse"] = diverse
        return ids, scores, predicted, self.counts.copy(), extra

    def sample_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(ids, embedding)`` of the sample buffer (for handing a block's sample on), or None."""
        if self.sample is None:
            return None
        rows = self.sample.rows()
        if rows is None:
            return np.empty(0, np.int64), np.empty((0, self.payload_width or 0), np.float32)
        return rows[1], rows[2]

    def dropped_flags(self) -> tuple[np.ndarray, np.ndarray]:
        """Per group, whether the hard and the easy buffer ever let a row go, ``(n_groups,)`` bools each."""
        for g in range(self.plan.n_groups):
            self._to_easy(g, self.hard[g].prune())
            self.easy[g].prune()
        return (np.array([b.dropped for b in self.hard]), np.array([b.dropped for b in self.easy]))

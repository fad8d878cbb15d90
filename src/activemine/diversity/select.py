"""Batches without copies: the selection walk of near-duplicate suppression, and Cluster-Margin diversity.

Both are pure functions of ``(id, score, predicted class, embedding)`` (plus a
content hash for exact duplicates) and of their settings, so a streaming engine
that keeps enough candidates reproduces the in-memory batch exactly.

* **Near-duplicate suppression** (:func:`select_diverse` with ``near_duplicates``
  a radius or ``"auto"``, and/or ``dedup`` hashes). Rows are walked in the
  order of :func:`activemine.selection.batch.select_batch`: first the hard rows of
  every quota group together by (score desc, id asc), then the easy rows by
  (seeded id key asc, id asc). A row is taken when its group still has room in
  that stratum and no row taken before it lies within ``radius`` (Euclidean,
  ``<=``) or has its hash; otherwise the walk goes on to the next row, so the
  batch is refilled from the next candidates. A group that runs out of distinct
  rows takes its best suppressed rows to fill its quota (counted in
  ``filled_with_duplicates``, never silently). Neighbours come from a k-d tree
  (``scipy.spatial.cKDTree``; never an all-pairs matrix) in a PCA projection, checked
  exactly; the walk is decided a block of rows at a time (:func:`_walk`), row for row
  the same as one row at a time.
* **``auto`` radius**: :data:`AUTO_FACTOR` times the median nearest-neighbour
  distance within a seeded sample of the selectable pool (the
  :data:`SAMPLE_SIZE` rows with the smallest seeded id keys).
* **Cluster-Margin** (Citovsky et al., NeurIPS 2021; ``clusters=K``): k-means
  centroids fitted once on the same seeded sample (:func:`~activemine.diversity.geometry.fit_centroids`),
  the top ``candidate_factor * h`` rows of each group by score assigned to
  their nearest centroid in batched matrix products, then round-robin over
  the clusters, smallest cluster first, one row per cluster per round in
  seeded random order (the paper samples within a cluster at random).

Higher acquisition score = more worth labeling, as everywhere in activemine.

Streaming (:mod:`activemine.engines.candidates`): per group the engine keeps
the top ``ceil(factor * H)`` rows by score and the ``ceil(factor * E)``
smallest keys of the others (``H``, ``E`` bounds of the hard and easy quota),
with their embeddings. With suppression a walk that reaches past what a group
kept (its *boundary*) before filling is *insufficient*; the engine then widens
the factor and scans again (:class:`InsufficientCandidates`), so the batch is
always the in-memory one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from activemine.diversity.geometry import (
    auto_radius,
    fit_centroids,
    nearest_centroid,
    principal_directions,
    sample_rows,
)
from activemine.diversity.options import DiversityOptions, DiversityReport, InsufficientCandidates, check_embeddings
from activemine.errors import InputError, PoolExhaustedError
from activemine.selection.batch import (
    Batch,
    allocate_quotas,
    check_ids,
    id_keys,
    rank_order,
    split_hard_easy,
    top_k_indices,
)

__all__ = ["select_diverse"]

#: Above this many neighbour pairs among the candidates, neighbours are looked up per taken row instead.
_MAX_PAIRS = 20_000_000


#: Dimensions of the projection in which neighbour pairs are looked for before the exact check.
_FILTER_DIMS = (4, 6, 8, 12, 16)
_FILTER_PAIRS_PER_ROW = 32
#: Up to this many candidates, pairs are counted on all of them, and listed at once when few (_MAX_PAIRS);
#: above, the dimensions are chosen on an evenly spaced sample and neighbours are looked up per block.
_ALL_PAIRS_ROWS = 200_000
_DIMS_SAMPLE = 20_000
#: Neighbours asked of the k-d tree per row (itself included) before a row falls back to a ball query.
_KNN = 4
_KNN_CROWDED = 32


def _filter_projection(emb: np.ndarray, radius: float):
    """A k-d tree over ``emb`` ``(n, d)`` projected on its top principal directions, the
    projection ``(n, m)`` float64 and the number of pairs within ``radius`` there (None when not counted).

    An orthonormal projection never lengthens a distance, so every pair within
    the radius in ``emb`` is within it in the projection: a k-d tree, which
    degrades in 32 dimensions, looks for pairs in few and the exact distance
    decides. The fewest of 4, 6, 8, 12, 16 dimensions whose pairs are not much more than
    those of the next are taken (counted on all rows up to ``_ALL_PAIRS_ROWS``,
    else on an evenly spaced sample). Which rows fit the directions and how many
    dimensions are taken change only the speed, never the pairs. ``emb`` may be
    float32: it is widened to float64 one block of rows at a time, never whole.
    """
    from scipy.spatial import cKDTree

    n, d = emb.shape
    dims = [m for m in _FILTER_DIMS if m < d] + [d]
    vectors = principal_directions(emb, dims[-2]) if len(dims) > 1 else np.empty((d, 0))  # (d, <= 16)

    def project(rows_of, m):
        if m >= d or m > vectors.shape[1]:  # too few rows to fit m directions: no projection
            return np.asarray(rows_of, dtype=np.float64)
        top = np.ascontiguousarray(vectors[:, :m])
        out = np.empty((len(rows_of), m))
        for start in range(0, len(rows_of), _PAIR_BLOCK):
            out[start : start + _PAIR_BLOCK] = np.asarray(rows_of[start : start + _PAIR_BLOCK], np.float64) @ top
        return out

    if n <= _ALL_PAIRS_ROWS:
        for m in dims:
            proj = project(emb, m)
            tree = cKDTree(proj)
            pairs = (int(tree.count_neighbors(tree, radius)) - n) // 2  # a dual-tree count: no lists built
            if m >= d or pairs <= _FILTER_PAIRS_PER_ROW * n:
                return tree, proj, pairs
    sample = emb[:: max(1, n // _DIMS_SAMPLE)]

    def sample_pairs(m):
        tree = cKDTree(project(sample, m))
        return (int(tree.count_neighbors(tree, radius)) - len(sample)) // 2

    # the fewest dimensions whose pairs are within 1.5x of those of the next (or a pair per 100 rows more)
    chosen = dims[-2] if len(dims) > 1 else d
    counts = [sample_pairs(dims[0])] if len(dims) > 2 else []
    for i, m in enumerate(dims[:-2]):
        counts.append(sample_pairs(dims[i + 1]))
        if counts[i] <= 1.5 * counts[i + 1] + len(sample) / 100:
            chosen = m
            break
    proj = project(emb, chosen)
    # an unbalanced tree of uncompacted nodes builds in half the time and answers as fast
    return cKDTree(proj, balanced_tree=False, compact_nodes=False), proj, None


#: Pairs (or rows) handled at once where float32 embeddings are widened to float64.
_PAIR_BLOCK = 1 << 16


def _within(emb: np.ndarray, i: np.ndarray, j: np.ndarray, radius: float) -> np.ndarray:
    """Exact check ``||emb[i] - emb[j]|| <= radius`` in float64 for index arrays, in blocks
    (``emb`` may be float32: the same decision as on a float64 copy, without the copy)."""
    out = np.empty(i.size, dtype=bool)
    for start in range(0, i.size, _PAIR_BLOCK):
        stop = start + _PAIR_BLOCK
        diff = emb[i[start:stop]].astype(np.float64) - emb[j[start:stop]].astype(np.float64)
        out[start:stop] = np.sqrt(np.einsum("ij,ij->i", diff, diff)) <= radius
    return out


class _Suppressor:
    """Which rows a taken row rules out: those within ``radius`` of it and those with its hash.

    Neighbour pairs (exact, within the radius) come from one pass over all
    candidates when they are few (:data:`_MAX_PAIRS`), else are looked up per
    block of rows against a k-d tree of all candidates; :meth:`resolve` decides a
    block of the walk at once.
    """

    def __init__(self, emb, radius, hashes):
        self.radius = radius
        n = len(emb) if emb is not None else len(hashes)
        self.taken = np.zeros(n, dtype=bool)
        self.where = np.full(n, -1, dtype=np.int64)  # position of a row in the block being resolved
        self.codes = self.code_taken = None
        if hashes is not None:
            _, codes = np.unique(np.asarray(hashes), return_inverse=True)
            self.codes = codes.ravel()
            self.code_taken = np.zeros(int(self.codes.max()) + 1 if n else 0, dtype=bool)
        self.tree = self.pairs = self.leaf_rank = None
        if radius is not None and n:
            self.emb = np.asarray(emb)  # float32 stays float32: _within widens pairs, not the matrix
            # a hair wider in the projection, so rounding cannot lose a pair the exact check keeps
            self.filter_radius = radius * (1 + 1e-9) + 1e-12
            self.tree, self.proj, count = _filter_projection(self.emb, self.filter_radius)
            if count is not None and count <= _MAX_PAIRS:
                pairs = self.tree.query_pairs(self.filter_radius, output_type="ndarray")
                if pairs.size:
                    pairs = pairs[_within(self.emb, pairs[:, 0], pairs[:, 1], radius)]
                both = np.concatenate([pairs, pairs[:, ::-1]]) if pairs.size else np.empty((0, 2), np.int64)
                del pairs
                order = np.argsort(both[:, 0], kind="stable")
                self.indptr = np.searchsorted(both[order, 0], np.arange(n + 1))
                self.pairs = both[order, 1]

    def neighbours(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All pairs ``(k, j)``: row ``j`` (any candidate, not ``rows[k]`` itself) lies within the radius of ``rows[k]``."""
        if self.tree is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        if self.pairs is not None:
            starts, stops = self.indptr[rows], self.indptr[rows + 1]
            lens = stops - starts
            src = np.repeat(np.arange(rows.size), lens)
            at = np.arange(src.size) - np.repeat(np.cumsum(lens) - lens, lens) + np.repeat(starts, lens)
            return src, self.pairs[at]
        # queries in the tree's own leaf order: each follows a near one (the tree's path stays in cache)
        if self.leaf_rank is None:
            self.leaf_rank = np.empty(self.tree.n, dtype=np.int64)
            self.leaf_rank[self.tree.indices] = np.arange(self.tree.n)
        at = np.argsort(self.leaf_rank[rows], kind="stable")  # positions in rows, in query order
        src, nbr = [], []
        for k in (_KNN, _KNN_CROWDED):  # few neighbours for most rows, more for copies (they come in groups)
            k = min(k, self.proj.shape[0])
            dist, near = self.tree.query(self.proj[rows[at]], k=k, distance_upper_bound=self.filter_radius)
            dist, near = dist.reshape(at.size, k), near.reshape(at.size, k)
            found = dist <= self.filter_radius
            crowded = found[:, -1].copy() if k < self.proj.shape[0] else np.zeros(at.size, dtype=bool)
            found[crowded] = False  # rows with k neighbours or more are asked again
            src.append(at[np.nonzero(found)[0]])
            nbr.append(near[found])
            at = at[crowded]
            if not at.size:
                break
        if at.size:  # still more: all of them from a ball query
            lists = self.tree.query_ball_point(self.proj[rows[at]], self.filter_radius)
            lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
            src.append(np.repeat(at, lengths))
            nbr.append(np.fromiter((j for x in lists for j in x), dtype=np.int64, count=int(lengths.sum())))
        src, nbr = np.concatenate(src).astype(np.int64), np.concatenate(nbr).astype(np.int64)
        keep = nbr != rows[src]
        src, nbr = src[keep], nbr[keep]
        keep = _within(self.emb, rows[src], nbr, self.radius)
        return src[keep], nbr[keep]

    def resolve(self, rows: np.ndarray, src: np.ndarray, nbr: np.ndarray) -> np.ndarray:
        """``(m,)`` bool: which of ``rows`` (in walk order) the greedy walk takes, rooms aside;
        ``(src, nbr)``: their :meth:`neighbours`.

        A row is taken when no row taken before it (earlier blocks: :attr:`taken`;
        this block: earlier in ``rows``) is its neighbour or shares its hash. Rounds
        settle at once every row whose earlier neighbours are all settled: blocked
        when one of them is taken, taken when none is. The first unsettled row is
        always settled, and chains of near rows are short, so a few rounds do;
        after :data:`_ROUNDS` the rest is walked one row at a time.
        """
        m = rows.size
        status = np.zeros(m, dtype=np.int8)  # 0 open, 1 taken, 2 blocked
        if src.size:
            status[src[self.taken[nbr]]] = 2  # near a row taken before this block
        codes = None
        if self.codes is not None:
            status[self.code_taken[self.codes[rows]]] = 2
            _, codes = np.unique(self.codes[rows], return_inverse=True)
            codes = codes.ravel()
        # pairs inside the block, earlier -> later, between rows still open
        self.where[rows] = np.arange(m)
        early = self.where[nbr]
        self.where[rows] = -1
        keep = (early >= 0) & (early < src)
        early, late = early[keep], src[keep]
        keep = (status[early] == 0) & (status[late] == 0)
        early, late = early[keep], late[keep]
        position = np.arange(m)
        for _ in range(_ROUNDS):
            open_ = status == 0
            if not open_.any():
                return status == 1
            before = status[early]
            near_taken = np.zeros(m, dtype=bool)
            near_taken[late[before == 1]] = True
            near_open = np.zeros(m, dtype=bool)
            near_open[late[before == 0]] = True
            blocked, free = near_taken, ~near_open
            if codes is not None:
                live = np.flatnonzero(status != 2)
                first_of_code = np.full(int(codes.max()) + 1, -1, dtype=np.int64)
                uniq, first = np.unique(codes[live], return_index=True)
                first_of_code[uniq] = live[first]
                code_taken = np.bincount(codes[status == 1], minlength=first_of_code.size) > 0
                blocked = blocked | code_taken[codes]
                free = free & (first_of_code[codes] == position)
            status[open_ & blocked] = 2
            status[open_ & ~blocked & free] = 1
            keep = status[late] == 0
            early, late = early[keep], late[keep]
        # a long chain of near rows: the rest one row at a time, in order
        by_late = np.argsort(late, kind="stable")
        early, late = early[by_late], late[by_late]
        starts = np.searchsorted(late, np.arange(m + 1))
        taken_codes = set() if codes is None else set(codes[status == 1].tolist())
        for k in np.flatnonzero(status == 0).tolist():
            if (status[early[starts[k] : starts[k + 1]]] == 1).any() or (
                codes is not None and int(codes[k]) in taken_codes
            ):
                status[k] = 2
            else:
                status[k] = 1
                if codes is not None:
                    taken_codes.add(int(codes[k]))
        return status == 1

    def take(self, rows: np.ndarray) -> None:
        self.taken[rows] = True
        if self.codes is not None:
            self.code_taken[self.codes[rows]] = True


#: Rows of the walk decided at once by :meth:`_Suppressor.resolve`.
_WALK_BLOCK = 1 << 18
#: Rounds of :meth:`_Suppressor.resolve` before the rest of a block is walked row by row.
_ROUNDS = 32


def _walk(order, group, room, sup: _Suppressor, beyond, short, suppressed: list) -> np.ndarray:
    """Take rows in ``order`` while their group has ``room`` and they are not blocked.

    The greedy walk of the module docstring, decided a block of ``_WALK_BLOCK``
    rows at a time: :meth:`_Suppressor.resolve` tells which rows the walk takes
    as if every group had room; where a group fills inside the block, the rows
    up to that point stand and the rest of the block is decided again without
    that group (at most once per group; its neighbours are not looked up again).
    A row marked ``beyond`` is past what its group kept: a group that has such
    rows and does not fill before them sets ``short[g]``. Returns the taken rows in walk order; ``suppressed[0]`` counts
    the rows skipped as duplicates while their group had room.
    """
    room = np.array(room, dtype=np.int64)
    has_beyond = np.zeros(room.size, dtype=bool)
    if beyond is not None:
        past = beyond[order]
        has_beyond[np.unique(group[order[past]])] = True
        order = order[~past]  # a group's rows past its boundary all come after those it kept
    taken = []
    pos = 0
    rest = None  # (rows, src, nbr): what is left of a block after a group filled inside it
    while (room > 0).any():
        if rest is None:
            if pos >= order.size:
                break
            # no block much longer than the rows the rooms still need (rows past them would be decided for nothing)
            block = order[pos : pos + min(_WALK_BLOCK, max(1024, int(1.25 * room[room > 0].sum())))]
            pos += block.size
            rows = block[room[group[block]] > 0]
            src, nbr = sup.neighbours(rows)
        else:  # the rest of a block, without the groups that filled: its neighbours are known
            rows, src, nbr = rest
            rest = None
            keep = room[group[rows]] > 0
            if not keep.all():
                at = np.full(rows.size, -1, dtype=np.int64)
                at[keep] = np.arange(int(keep.sum()))
                src = at[src]
                rows, src, nbr = rows[keep], src[src >= 0], nbr[src >= 0]
        took = np.flatnonzero(sup.resolve(rows, src, nbr))  # positions in rows
        g = group[rows[took]]
        end = None  # taken rows that stand: up to the first that fills its group
        for gg in np.unique(g).tolist():
            of_g = np.flatnonzero(g == gg)
            if of_g.size >= room[gg]:
                end = int(of_g[room[gg] - 1]) + 1 if end is None else min(end, int(of_g[room[gg] - 1]) + 1)
        if end is None:
            end = took.size
            suppressed[0] += rows.size - took.size
        else:  # the block stands up to the row that fills its group; the rest is decided again
            last = int(took[end - 1])
            suppressed[0] += last + 1 - end
            after = src > last
            rest = (rows[last + 1 :], src[after] - (last + 1), nbr[after])
        stand = rows[took[:end]]
        sup.take(stand)
        room -= np.bincount(group[stand], minlength=room.size)
        taken.append(stand)
    for g in np.flatnonzero(has_beyond & (room > 0)).tolist():
        short[g] = True
    return np.concatenate(taken) if taken else np.empty(0, np.int64)


def select_diverse(
    ids,
    scores,
    predicted,
    embeddings=None,
    *,
    budget: int,
    n_classes: int,
    options: DiversityOptions,
    weights=None,
    easy_share: float = 0.0,
    seed: int = 0,
    exclude=None,
    available_counts=None,
    classes: Sequence | None = None,
    hard_label: str = "hard",
    hashes=None,
    sample=None,
    hard_bounds=None,
    easy_bounds=None,
    embedding: str = "",
) -> tuple[Batch, DiversityReport]:
    """Select ``budget`` rows like :func:`~activemine.selection.batch.select_batch`, without near-duplicates
    or spread over clusters (see the module docstring).

    Parameters
    ----------
    ids, scores, predicted : ``(n,)`` each, as for ``select_batch``.
    embeddings : ``(n, d)`` float; needed for a radius and for clusters.
    options : what to do; ``options.clusters`` or suppression.
    hashes : ``(n,)`` content hashes (``options.dedup``); equal hashes are duplicates.
    sample : ``(s, d)`` embeddings of the seeded pool sample (:func:`sample_rows`); default
        the sample of these rows (right when they are the whole selectable pool).
    hard_bounds, easy_bounds : per group, the worst ``(-score, id)`` / ``(key, id)`` a streaming
        engine kept, or None where it kept everything; a walk that needs more raises
        :class:`InsufficientCandidates`.
    embedding : where the embeddings came from, for the report.

    Returns the batch and a :class:`DiversityReport`.
    """
    ids = check_ids(ids)
    scores = np.asarray(scores)
    predicted = np.asarray(predicted, dtype=np.int64)
    n = ids.size
    if scores.shape != ids.shape or predicted.shape != ids.shape:
        raise InputError(
            f"ids, scores and predicted must have the same length, got {n}, {scores.shape[0]}, {predicted.shape[0]}"
        )
    if not np.isfinite(scores).all():
        raise InputError("scores must be finite; found NaN or infinity")
    if int(budget) != budget or budget < 1:
        raise InputError(f"budget must be a positive integer, got {budget}")
    if not 0.0 <= easy_share <= 1.0:
        raise InputError(f"easy_share must be in [0, 1], got {easy_share}")
    if options.needs_embeddings:
        if embeddings is None:
            raise InputError(
                "near-duplicate suppression by radius and clusters need embeddings; give embedding "
                "columns (--embedding-cols/--embedding-prefix) or pool features to project"
            )
        embeddings = check_embeddings(embeddings, n_rows=n)
    if options.dedup:
        if hashes is None:
            raise InputError("dedup needs a content-hash column (--dedup-col)")
        hashes = np.asarray(hashes)
        if hashes.shape != ids.shape:
            raise InputError(f"hashes has {hashes.shape[0]} rows but there are {n} ids")
    if exclude is not None and len(exclude):
        keep = ~np.isin(ids, np.asarray(exclude))
        ids, scores, predicted = ids[keep], scores[keep], predicted[keep]
        embeddings = embeddings[keep] if embeddings is not None else None
        hashes = hashes[keep] if hashes is not None else None
        n = ids.size
    counts = (
        np.bincount(predicted, minlength=n_classes)
        if available_counts is None
        else np.asarray(available_counts, np.int64)
    )
    if budget > counts.sum():
        raise PoolExhaustedError(
            f"budget {budget} is larger than the {int(counts.sum())} selectable samples in the pool"
        )
    if weights is None:
        group, quotas, n_groups = np.zeros(n, dtype=np.int64), np.array([int(budget)]), 1
    else:
        group, quotas, n_groups = predicted, allocate_quotas(counts, int(budget), weights), n_classes
    split = [split_hard_easy(int(q), easy_share) for q in quotas]
    hard_q = np.array([h for h, _ in split], dtype=np.int64)
    easy_q = np.array([e for _, e in split], dtype=np.int64)
    if options.needs_embeddings and sample is None and n:
        sample = embeddings[sample_rows(ids, seed=seed, size=options.sample_size)]

    neg = -scores.astype(np.float64)
    hard_order = rank_order(neg, ids)  # (score desc, id asc)
    keys = id_keys(ids, seed=seed)
    report = dict(method=options.method, candidate_factor=options.factor, embedding=embedding)
    if options.clusters is not None:
        hard = _cluster_margin(ids, neg, group, hard_order, embeddings, hard_q, options, sample, seed)
        taken = np.zeros(n, dtype=bool)
        taken[hard] = True
        easy = _easy_plain(ids, keys, group, easy_q, taken)
        report.update(clusters=int(options.clusters))
        filled = 0
    else:
        radius = None
        if options.near_duplicates is not None:
            radius = auto_radius(sample) if options.near_duplicates == "auto" else float(options.near_duplicates)
            report.update(radius=radius, auto=options.near_duplicates == "auto")
        sup = _Suppressor(embeddings, radius, hashes if options.dedup else None)
        short = [False] * n_groups
        suppressed = [0]
        hard_bounds = _effective_bounds(hard_bounds, easy_bounds, n_groups, easy_share)
        beyond = _beyond(neg, ids, group, hard_bounds)
        hard = _walk(hard_order, group, hard_q, sup, beyond, short, suppressed)
        taken = np.zeros(n, dtype=bool)
        taken[hard] = True
        easy_order = rank_order(keys, ids)
        easy_order = easy_order[~taken[easy_order]]
        beyond_e = _beyond(keys, ids, group, easy_bounds)
        easy = _walk(easy_order, group, easy_q, sup, beyond_e, short, suppressed)
        for bounds, rows, quota in ((hard_bounds, hard, hard_q), (easy_bounds, easy, easy_q)):
            got = np.bincount(group[rows], minlength=n_groups) if rows.size else np.zeros(n_groups, np.int64)
            for g in np.flatnonzero(got < quota):  # the group ran out of candidates it did not see whole
                short[g] = short[g] or (bounds is not None and bounds[g] is not None)
        if any(short):
            raise InsufficientCandidates(f"the candidates of groups {[g for g, s in enumerate(short) if s]} ran out")
        taken[easy] = True
        # a group with too few distinct rows takes its best suppressed rows (hard: by score, easy: by key)
        hard, easy, filled = _fill_from_suppressed(hard, easy, hard_order, easy_order, group, hard_q, easy_q, taken)
        report.update(suppressed=suppressed[0], filled_with_duplicates=filled)
    hard = hard[rank_order(neg[hard], ids[hard])] if hard.size else hard
    easy = easy[np.lexsort((ids[easy], keys[easy], group[easy]))] if easy.size else easy  # as select_batch orders them
    rows = np.concatenate([hard, easy]).astype(np.int64)
    stratum = np.empty(rows.size, dtype=object)
    stratum[: hard.size] = hard_label
    stratum[hard.size :] = "easy"
    names = tuple(classes) if classes is not None else tuple(range(n_classes))
    quota_map = {names[c]: int(q) for c, q in enumerate(quotas)} if weights is not None else {}
    batch = Batch(
        ids=ids[rows], scores=scores[rows], predicted=predicted[rows], stratum=stratum, classes=names, quotas=quota_map
    )
    return batch, DiversityReport(**report)


def _effective_bounds(hard_bounds, easy_bounds, n_groups, easy_share):
    """A group whose rows past the hard boundary all went to the easy buffer (it never overflowed) is
    complete: its hard walk may go on into them, so it has no hard boundary."""
    if hard_bounds is None:
        return None
    return [
        None if hb is None or (easy_share > 0 and easy_bounds is not None and easy_bounds[g] is None) else hb
        for g, hb in enumerate(hard_bounds)
    ]


def _beyond(primary, ids, group, bounds) -> np.ndarray | None:
    """``(n,)`` True where a row sorts after its group's boundary ``(primary, id)`` (None: no bounds)."""
    if bounds is None or all(b is None for b in bounds):
        return None
    out = np.zeros(ids.size, dtype=bool)
    for g, b in enumerate(bounds):
        if b is None:
            continue
        rows = group == g
        if isinstance(b, str):  # "all": the group kept nothing
            out[rows] = True
            continue
        p, i = b
        out[rows] = (primary[rows] > p) | ((primary[rows] == p) & (ids[rows] > i))
    return out


def _fill_from_suppressed(hard, easy, hard_order, easy_order, group, hard_q, easy_q, taken):
    hard_n = np.bincount(group[hard], minlength=hard_q.size) if hard.size else np.zeros(hard_q.size, np.int64)
    easy_n = np.bincount(group[easy], minlength=easy_q.size) if easy.size else np.zeros(easy_q.size, np.int64)
    filled = 0
    extra_h, extra_e = [], []
    for g in range(hard_q.size):
        need_h, need_e = int(hard_q[g] - hard_n[g]), int(easy_q[g] - easy_n[g])
        for need, order, extra in ((need_h, hard_order, extra_h), (need_e, easy_order, extra_e)):
            if need <= 0:
                continue
            rest = order[(group[order] == g) & ~taken[order]][:need]
            taken[rest] = True
            extra.append(rest)
            filled += rest.size
    if extra_h:
        hard = np.concatenate([hard, *extra_h])
    if extra_e:
        easy = np.concatenate([easy, *extra_e])
    return hard, easy, filled


def _easy_plain(ids, keys, group, easy_q, taken) -> np.ndarray:
    parts = []
    for g, e in enumerate(easy_q):
        if e <= 0:
            continue
        rest = np.flatnonzero((group == g) & ~taken)
        parts.append(rest[top_k_indices(keys[rest], ids[rest], int(e))])
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _cluster_margin(ids, neg, group, hard_order, emb, hard_q, options, sample, seed) -> np.ndarray:
    """Per group: the top ``ceil(factor * h)`` rows by score, round-robin over their clusters."""
    centers = fit_centroids(sample, int(options.clusters), random_state=seed)
    rr_keys = id_keys(ids, seed=seed + 0x5A17)  # seeded random order within a cluster
    parts = []
    for g, h in enumerate(hard_q):
        if h <= 0:
            continue
        in_g = hard_order[group[hard_order] == g]
        cand = in_g[: int(math.ceil(options.factor * int(h)))]
        cluster = nearest_centroid(emb[cand], centers)
        size = np.bincount(cluster, minlength=centers.shape[0])
        # position of each candidate within its cluster, clusters visited smallest first (ties by index)
        within = np.empty(cand.size, dtype=np.int64)
        order = np.lexsort((ids[cand], rr_keys[cand], cluster))
        starts = np.searchsorted(cluster[order], np.arange(centers.shape[0]))
        within[order] = np.arange(cand.size) - starts[cluster[order]]
        cluster_rank = np.empty(size.size, dtype=np.int64)
        cluster_rank[np.lexsort((np.arange(size.size), size))] = np.arange(size.size)
        pick = np.lexsort((cluster_rank[cluster], within))[: int(h)]
        parts.append(cand[pick])
    return np.concatenate(parts) if parts else np.empty(0, np.int64)

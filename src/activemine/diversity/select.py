"""Batches without copies: near-duplicate suppression and Cluster-Margin diversity.

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
  centroids fitted once on the same seeded sample (:func:`fit_centroids`),
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
from dataclasses import dataclass, replace

import numpy as np

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

__all__ = [
    "AUTO_FACTOR",
    "DiversityOptions",
    "DiversityReport",
    "InsufficientCandidates",
    "Projection",
    "SAMPLE_SIZE",
    "auto_radius",
    "check_embeddings",
    "duplicate_stats",
    "fit_centroids",
    "fit_projection",
    "nearest_centroid",
    "plant_duplicates",
    "sample_keys",
    "sample_rows",
    "select_diverse",
]

#: Rows of the seeded pool sample used for the ``auto`` radius and the k-means centroids.
SAMPLE_SIZE = 10_000
#: ``auto`` radius = this factor times the median nearest-neighbour distance in the sample.
AUTO_FACTOR = 0.25
#: Default candidate factors: suppression needs few spares, Cluster-Margin takes the top 5x budget by score.
DEFAULT_FACTOR = {"near-duplicates": 2.0, "clusters": 5.0}
#: Salt of the diversity sample's id keys, so it is independent of the easy-share draw of the same seed.
_SAMPLE_SALT = 0xD17E
#: Above this many neighbour pairs among the candidates, neighbours are looked up per taken row instead.
_MAX_PAIRS = 20_000_000


class InsufficientCandidates(InputError):
    """The candidates a streaming engine kept do not decide the batch; scan again with a larger factor."""


@dataclass(frozen=True)
class DiversityOptions:
    """How to keep copies out of a batch.

    ``near_duplicates``: a radius ``>= 0`` in embedding space, ``"auto"``, or
    None (off). ``dedup``: rows carry a content hash and equal hashes are
    duplicates. ``clusters``: Cluster-Margin with this many k-means clusters
    (not combinable with suppression). ``candidate_factor``: candidates kept
    per unit of quota (>= 1; default 2 for suppression, 5 for clusters).
    """

    near_duplicates: float | str | None = None
    dedup: bool = False
    clusters: int | None = None
    candidate_factor: float | None = None
    sample_size: int = SAMPLE_SIZE

    def __post_init__(self):
        nd = self.near_duplicates
        if isinstance(nd, str):
            if nd == "off":
                object.__setattr__(self, "near_duplicates", None)
            elif nd != "auto":
                try:
                    object.__setattr__(self, "near_duplicates", float(nd))
                except ValueError:
                    raise InputError(f"near-duplicates must be a radius, 'auto' or 'off', got {nd!r}") from None
        nd = self.near_duplicates
        if nd is not None and nd != "auto":
            if not math.isfinite(float(nd)) or float(nd) < 0:
                raise InputError(f"the near-duplicate radius must be a finite number >= 0, got {nd}")
            object.__setattr__(self, "near_duplicates", float(nd))
        if self.clusters is not None:
            if int(self.clusters) != self.clusters or self.clusters < 1:
                raise InputError(f"clusters must be a positive integer, got {self.clusters}")
            if self.suppress:
                raise InputError(
                    "choose one of near-duplicate suppression (--near-duplicates/--dedup-col) and --diversity clusters"
                )
        f = self.candidate_factor
        if f is not None and (not math.isfinite(float(f)) or float(f) < 1):
            raise InputError(f"the candidate factor must be a number >= 1, got {f}")
        if int(self.sample_size) != self.sample_size or self.sample_size < 2:
            raise InputError(f"the diversity sample size must be an integer >= 2, got {self.sample_size}")

    @classmethod
    def from_cli(
        cls,
        *,
        near_duplicates: str | None = None,
        dedup_col: str | None = None,
        diversity: str | None = None,
        clusters: int | None = None,
        candidate_factor: float | None = None,
    ) -> DiversityOptions | None:
        """The options of the CLI flags, or None when none is on."""
        if diversity not in (None, "none", "clusters"):
            raise InputError(f"--diversity must be clusters or none, got {diversity!r}")
        if clusters is not None and diversity != "clusters":
            raise InputError("--clusters needs --diversity clusters")
        k = (clusters if clusters is not None else 1000) if diversity == "clusters" else None
        opts = cls(
            near_duplicates=near_duplicates, dedup=dedup_col is not None, clusters=k, candidate_factor=candidate_factor
        )
        if not opts.active:
            if candidate_factor is not None:
                raise InputError("--candidate-factor needs --near-duplicates, --dedup-col or --diversity clusters")
            return None
        return opts

    @property
    def suppress(self) -> bool:
        return self.near_duplicates is not None or self.dedup

    @property
    def active(self) -> bool:
        return self.suppress or self.clusters is not None

    @property
    def needs_embeddings(self) -> bool:
        return self.near_duplicates is not None or self.clusters is not None

    @property
    def method(self) -> str:
        return "clusters" if self.clusters is not None else "near-duplicates"

    @property
    def factor(self) -> float:
        return float(self.candidate_factor) if self.candidate_factor is not None else DEFAULT_FACTOR[self.method]

    def widened(self) -> DiversityOptions:
        """The same options with twice the candidate factor (the fallback of an insufficient scan)."""
        return replace(self, candidate_factor=2.0 * self.factor)

    def check_pool_rows(self, n_rows: int | None) -> None:
        """Raise when the pool has fewer rows than clusters (before any model is fitted)."""
        if self.clusters is not None and n_rows is not None and self.clusters > n_rows:
            raise InputError(f"--clusters {self.clusters} is more than the {n_rows} rows of the pool")


@dataclass(frozen=True)
class DiversityReport:
    """What a diverse selection did: the radius used (and whether ``auto`` chose it), the rows
    skipped as duplicates, rows taken from suppressed ones because a group ran out, clusters."""

    method: str
    radius: float | None = None
    auto: bool = False
    suppressed: int = 0
    filled_with_duplicates: int = 0
    clusters: int | None = None
    candidate_factor: float = 1.0
    embedding: str = ""
    rescans: int = 0

    def describe(self) -> str:
        if self.method == "clusters":
            return (
                f"Cluster-Margin: {self.clusters} clusters, top {self.candidate_factor:g}x quota by score, round-robin"
            )
        parts = []
        if self.radius is not None:
            parts.append(
                f"radius {self.radius:.6g}"
                + (
                    f" (auto: {AUTO_FACTOR:g} x median nearest-neighbour distance of a seeded sample)"
                    if self.auto
                    else ""
                )
            )
        text = f"near-duplicates: {', '.join(parts) or 'exact hashes only'}; {self.suppressed} rows skipped"
        if self.filled_with_duplicates:
            text += f"; {self.filled_with_duplicates} near-duplicates taken because a class ran out of distinct rows"
        return text


# -- embeddings --------------------------------------------------------------------------------


def check_embeddings(
    emb, *, n_rows: int | None = None, width: int | None = None, where: str = "embeddings"
) -> np.ndarray:
    """Embeddings as a finite float ``(n, d)`` array; raise naming NaN rows or a wrong width."""
    arr = np.asarray(emb)
    if arr.ndim != 2:
        raise InputError(f"{where} must be a 2-d array (rows, dims), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{where} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise InputError(f"{where} has {arr.shape[0]} rows but there are {n_rows} ids")
    if width is not None and arr.shape[1] != width:
        raise InputError(f"{where} has width {arr.shape[1]}, expected {width}")
    if arr.shape[1] == 0:
        raise InputError(f"{where} has no dimensions")
    # a float64 sum is finite when every value is (NaN and infinity propagate; float32 values cannot
    # overflow it): one pass and no (n, d) mask; otherwise the rows decide (huge float64 values overflow)
    if np.isfinite(arr.sum(dtype=np.float64)):
        return arr
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(
            f"{where} holds NaN or infinite values in {int(bad.sum())} rows, e.g. row {int(np.flatnonzero(bad)[0])}"
        )
    return arr


@dataclass(frozen=True)
class Projection:
    """A fitted linear projection ``(x - mean) @ components.T``: ``mean`` ``(d,)``, ``components`` ``(m, d)``."""

    mean: np.ndarray
    components: np.ndarray

    def __call__(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        return ((X - self.mean) @ self.components.T).astype(np.float32)

    @property
    def width(self) -> int:
        return int(self.components.shape[0])


def fit_projection(X, *, dims: int = 50, random_state: int = 0) -> Projection:
    """Seeded PCA of ``X`` ``(n, d)`` to ``min(dims, n, d)`` dimensions (for pools without embeddings)."""
    from sklearn.decomposition import PCA

    X = np.asarray(X, dtype=np.float32)
    m = int(min(dims, X.shape[0], X.shape[1]))
    pca = PCA(n_components=m, svd_solver="randomized", random_state=random_state).fit(X)
    return Projection(pca.mean_.astype(np.float32), pca.components_.astype(np.float32))


# -- the seeded sample, auto radius and centroids ---------------------------------------------


def sample_keys(ids, *, seed: int) -> np.ndarray:
    """Keys ``(n,)`` whose ``sample_size`` smallest (ties by id) are the diversity sample."""
    return id_keys(ids, seed=(int(seed) * 1_000_003 + _SAMPLE_SALT) & 0x7FFFFFFFFFFFFFFF)


def sample_rows(ids, *, seed: int, size: int) -> np.ndarray:
    """Indices of the seeded sample, in key order (so the sample is the same array in any engine)."""
    ids = np.asarray(ids)
    return top_k_indices(sample_keys(ids, seed=seed), ids, size)


def auto_radius(sample, *, factor: float = AUTO_FACTOR) -> float:
    """``factor`` times the median distance from each sample row to its nearest other sample row.

    Near-duplicates sit far closer together than typical neighbours, so a
    quarter of the median neighbour distance separates them; the sample is the
    pool's (not the candidates'), so the radius does not depend on the scores.
    Exact copies (distance 0) are left out of the median.
    """
    from scipy.spatial import cKDTree

    sample = np.asarray(sample, dtype=np.float64)
    if sample.shape[0] < 2:
        raise InputError(f"the auto radius needs at least 2 sample rows, got {sample.shape[0]}")
    dist, _ = cKDTree(sample).query(sample, k=2)
    nn = dist[:, 1]
    nn = nn[nn > 0]
    return float(factor * np.median(nn)) if nn.size else 0.0


def fit_centroids(sample, k: int, *, random_state: int = 0, iterations: int = 25) -> np.ndarray:
    """k-means centroids ``(k, d)`` of ``sample`` ``(s, d)``: seeded k-means++ start, Lloyd steps in matrix products."""
    X = np.asarray(sample, dtype=np.float64)
    s = X.shape[0]
    if k > s:
        raise InputError(f"cannot fit {k} clusters on {s} sample rows; use at most {s} clusters")
    rng = np.random.default_rng([int(random_state), 0xC1])
    sq = np.einsum("ij,ij->i", X, X)
    centers = np.empty((k, X.shape[1]))
    centers[0] = X[rng.integers(s)]
    best = np.maximum(sq - 2 * X @ centers[0] + centers[0] @ centers[0], 0)
    for j in range(1, k):  # k-means++: each next center drawn in proportion to the squared distance
        total = best.sum()
        pick = int(rng.choice(s, p=best / total)) if total > 0 else int(rng.integers(s))
        centers[j] = X[pick]
        best = np.minimum(best, np.maximum(sq - 2 * X @ centers[j] + centers[j] @ centers[j], 0))
    for _ in range(iterations):
        label = nearest_centroid(X, centers)
        counts = np.bincount(label, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, label, X)
        moved = counts > 0  # an empty cluster keeps its center
        new = centers.copy()
        new[moved] = sums[moved] / counts[moved, None]
        if np.array_equal(new, centers):
            break
        centers = new
    return centers


def nearest_centroid(X, centers, *, block: int = 65_536) -> np.ndarray:
    """Index ``(n,)`` of the nearest centroid of each row, in blocks of matrix products (ties to the lower index)."""
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    c2 = np.einsum("ij,ij->i", centers, centers)
    out = np.empty(X.shape[0], dtype=np.int64)
    for start in range(0, X.shape[0], block):
        part = X[start : start + block]
        out[start : start + block] = np.argmin(c2[None, :] - 2.0 * part @ centers.T, axis=1)
    return out


# -- selection -------------------------------------------------------------------------------


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
    fit = np.asarray(emb[: min(n, 50_000)], dtype=np.float64)
    centered = fit - fit.mean(axis=0)
    _, vectors = np.linalg.eigh(centered.T @ centered)  # (d, d), ascending eigenvalues
    vectors = vectors[:, ::-1]

    def project(rows_of, m):
        if m >= d:
            return np.asarray(rows_of, dtype=np.float64)
        top = np.ascontiguousarray(vectors[:, :m])  # a reversed view would keep the product off BLAS
        out = np.empty((len(rows_of), m))
        for start in range(0, len(rows_of), _PAIR_BLOCK):
            out[start : start + _PAIR_BLOCK] = np.asarray(rows_of[start : start + _PAIR_BLOCK], np.float64) @ top
        return out

    dims = [m for m in _FILTER_DIMS if m < d] + [d]
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


# -- experiments: planted near-duplicate campaigns -------------------------------------------


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


# -- experiments: strategy names and planting -------------------------------------------------


def hard_sources(scores, rows, count: int) -> np.ndarray:
    """The ``count`` rows of ``rows`` with the highest ``scores`` (ties by row index): the templates
    a planted campaign copies, hard for the model that scored them."""
    rows = np.asarray(rows)
    if count > rows.size:
        raise InputError(f"cannot plant {count} sources in a pool of {rows.size} rows")
    return np.sort(rows[top_k_indices(-np.asarray(scores, dtype=np.float64), rows, int(count))])

"""Batch selection: turn acquisition scores into a batch, separate from scoring.

A selection is a pure function of ``(id, score, predicted class)`` triples plus
its settings, so it does not depend on row order, chunk size or engine:

* **Quotas.** The budget is split over predicted classes by weights
  (:class:`activemine.selection.plan.SelectionPlan` derives them), water-filling: a class that has fewer selectable
  samples than its share gives the rest to the others (:func:`allocate_quotas`).
  Without weights the whole pool is one group.
* **Strata.** In each group ``round((1 - easy_share) * quota)`` samples are the
  highest scores (``hard``), ties broken by the smaller id; the rest of the
  quota (``easy``) is a uniform random draw from the group's remaining samples.
* **Randomness by id.** The uniform draw takes the samples with the smallest
  seeded hash of their id (:func:`id_keys`), which is a uniform sample without
  replacement that any streaming pass can reproduce exactly.

Higher acquisition score = more worth labeling, as everywhere in activemine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from activemine.errors import DuplicateIdError, EmptyPoolError, InputError, PoolExhaustedError

__all__ = [
    "Batch",
    "allocate_quotas",
    "check_ids",
    "duplicated_values",
    "id_keys",
    "string_hash",
    "select_batch",
    "split_hard_easy",
    "top_k_indices",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_POLY_PRIME = np.uint64(0x100000001B3)  # odd, so every power is invertible modulo 2**64


def check_ids(ids, *, name: str = "ids", unique: bool = True) -> np.ndarray:
    """Return ids as a 1-d integer or string array; raise on other types, and on duplicates
    unless ``unique`` is False (a caller that checks uniqueness over a whole stream)."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "O":
        if arr.size and all(isinstance(v, str) for v in arr):
            arr = arr.astype(str)
        elif arr.size and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in arr):
            arr = arr.astype(np.int64)
        elif arr.size:
            raise InputError(f"{name} must be all integers or all strings, got mixed values such as {arr[:3].tolist()}")
        else:
            arr = arr.astype(np.int64)
    if arr.dtype.kind == "u":
        if arr.size and arr.max() > np.iinfo(np.int64).max:
            raise InputError(f"{name} must fit in int64, got {int(arr.max())}")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iU":
        raise InputError(f"{name} must be integers or strings, got dtype {arr.dtype}")
    # sorted ids (the usual export order) need no sort to prove them unique
    if unique and arr.size > 1 and not (arr[1:] > arr[:-1]).all():
        dup = duplicated_values(arr)
        if dup.size:
            raise DuplicateIdError(f"{name} must be unique: {dup.size} duplicated, e.g. {dup[:5].tolist()}")
    return arr


def duplicated_values(arr: np.ndarray) -> np.ndarray:
    """The values that occur more than once in ``arr`` ``(n,)``, sorted.

    Strings are compared by a 64-bit hash first (sorting integers is an order
    of magnitude faster than sorting strings); only the strings whose hash
    occurs twice are compared as strings, so a hash collision is never taken
    for a duplicate.
    """
    if arr.dtype.kind in "US" and arr.size:
        keys = np.sort(string_hash(arr))
        twice = keys[1:][keys[1:] == keys[:-1]]
        if not twice.size:
            return arr[:0]
        arr = arr[np.isin(string_hash(arr), twice)]
    uniq, counts = np.unique(arr, return_counts=True)
    return uniq[counts > 1]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
        return x


def string_hash(arr: np.ndarray) -> np.ndarray:
    """A 64-bit polynomial hash of the code points of each string ``(n,)`` -> ``(n,)`` uint64:
    ``sum_j c_j * P**j`` modulo 2**64 (Horner, last position first). numpy pads fixed-width
    strings with zero code points, which add nothing, so the hash does not depend on the
    array's width; :func:`id_keys` mixes it with the seed."""
    if arr.dtype.kind == "S":
        arr = arr.astype("U")
    n = arr.size
    if n == 0 or arr.dtype.itemsize == 0:
        return np.zeros(n, dtype=np.uint64)
    codes = arr.view(np.uint32).reshape(n, -1)  # (n, width), zero-padded
    x = codes[:, -1].astype(np.uint64)
    with np.errstate(over="ignore"):
        for j in range(codes.shape[1] - 2, -1, -1):
            x *= _POLY_PRIME
            x += codes[:, j]
    return x


def id_keys(ids, *, seed: int) -> np.ndarray:
    """Seeded 64-bit hash of each id, ``(n,)`` uint64.

    Depends only on the id's value and the seed (not on position, dtype width or
    chunking), so "the r smallest keys" is a reproducible uniform sample.
    """
    arr = np.asarray(ids)
    if arr.dtype.kind in "iu":
        x = arr.astype(np.int64, copy=False).view(np.uint64)
    elif arr.dtype.kind in "US":
        x = string_hash(arr)
    else:
        raise InputError(f"ids must be integers or strings, got dtype {arr.dtype}")
    salt = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    return _splitmix64(x ^ salt)


def uniform_from_keys(keys: np.ndarray) -> np.ndarray:
    """Map uint64 keys to floats in ``[0, 1)`` (the top 53 bits)."""
    return (keys >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def top_k_indices(primary: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k rows with the smallest ``primary``, ties by smaller id, in that order.

    Uses a partition so the cost is O(n + k log k), not a full sort.
    """
    chosen = top_k_unordered(primary, ids, k)
    return chosen[rank_order(primary[chosen], ids[chosen])]


def top_k_unordered(primary: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """The same rows as :func:`top_k_indices`, in no particular order (O(n))."""
    n = primary.shape[0]
    k = min(int(k), n)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    if k == n:
        return np.arange(n)
    part = np.argpartition(primary, k - 1)[:k]
    threshold = primary[part].max()
    below = np.flatnonzero(primary < threshold)
    ties = np.flatnonzero(primary == threshold)
    if below.size + ties.size > k:
        ties = ties[np.argsort(ids[ties], kind="stable")[: k - below.size]]
    return np.concatenate([below, ties])


def rank_order(primary: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The permutation ``(n,)`` that sorts rows by ``primary``, ties by smaller id,
    as ``np.lexsort((ids, primary))`` does; one stable sort when ids already rise."""
    if ids.size > 1 and (ids[1:] > ids[:-1]).all():
        return np.argsort(primary, kind="stable")
    return np.lexsort((ids, primary))


def allocate_quotas(available, budget: int, weights) -> np.ndarray:
    """Split ``budget`` over classes by ``weights`` without exceeding ``available``.

    Water-filling: a class whose share exceeds what it has takes all it has and
    its unfilled share goes to the others in proportion to their weights;
    rounding by largest remainder, ties to the lower class index. If every
    weighted class runs out, classes of weight zero fill the rest equally.
    Returns ``(k,)`` int64 summing to ``budget``.
    """
    available = np.asarray(available, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    if budget > available.sum():
        raise PoolExhaustedError(f"budget {budget} is larger than the {int(available.sum())} selectable samples")
    quota = np.zeros_like(available)
    remaining = int(budget)
    for w in (weights, (weights == 0).astype(np.float64)):
        active = (w > 0) & (available > quota)
        while remaining > 0 and active.any():
            share = np.where(active, w, 0.0)
            ideal = remaining * share / share.sum()
            room = available - quota
            full = active & (ideal >= room)
            if full.any():
                remaining -= int(room[full].sum())
                quota[full] = available[full]
                active &= ~full
                continue
            base = np.floor(ideal).astype(np.int64)
            left = remaining - int(base.sum())
            frac = np.where(active, ideal - base, -1.0)
            bonus = np.argsort(-frac, kind="stable")[:left]
            quota += base
            quota[bonus] += 1
            remaining = 0
    return quota


def split_hard_easy(quota: int, easy_share: float) -> tuple[int, int]:
    """Split a quota into ``(hard, easy)`` counts; hard = round half up of ``(1 - easy_share) * quota``."""
    hard = int(np.floor((1.0 - easy_share) * quota + 0.5))
    return hard, quota - hard


@dataclass(frozen=True)
class Batch:
    """A selected batch, rows ordered by stratum (hard then easy), then by rank.

    ``predicted`` holds class indices into ``classes``; ``quotas`` maps class
    -> selected count (empty when no quotas were used); ``diversity`` is the
    :class:`~activemine.diversity.options.DiversityReport` of a selection without copies.
    ``attached`` maps a name to an array of rows first, aligned with ``ids``:
    what an engine carried along with the rows (the pool row number, say; see
    :attr:`activemine.engines.base.ChunkScorer.attach`).
    """

    ids: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray
    stratum: np.ndarray
    classes: tuple = ()
    quotas: dict = field(default_factory=dict)
    diversity: object | None = None
    attached: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def stratum_codes(self) -> tuple[list[str], np.ndarray]:
        """``(names, codes)``: the distinct strata in order of appearance and each row's index
        ``(n,)`` into them, without a Python object per row (computed once per batch)."""
        cached = self.__dict__.get("_stratum_codes")
        if cached is not None:
            return cached
        names: list[str] = []
        codes = np.zeros(len(self), dtype=np.int32)
        left = np.ones(len(self), dtype=bool)
        while left.any():  # one pass per stratum: two or three in all
            name = self.stratum[int(np.argmax(left))]
            mask = left & (self.stratum == name)
            codes[mask] = len(names)
            names.append(str(name))
            left &= ~mask
        self.__dict__["_stratum_codes"] = (names, codes)  # a cache, not state: the batch is frozen
        return names, codes

    def predicted_labels(self) -> np.ndarray:
        """The predicted class of each row as a class label (not an index)."""
        if not self.classes:
            return self.predicted
        return np.asarray(self.classes, dtype=object)[self.predicted] if self.predicted.size else np.array([])


def select_batch(
    ids,
    scores,
    predicted,
    *,
    budget: int,
    n_classes: int,
    weights=None,
    easy_share: float = 0.0,
    seed: int = 0,
    exclude=None,
    available_counts=None,
    classes: Sequence | None = None,
    hard_label: str = "hard",
) -> Batch:
    """Select ``budget`` rows by score with optional class quotas and an easy share.

    Parameters
    ----------
    ids : (n,) unique ints or strings.
    scores : (n,) acquisition scores, higher = more worth labeling.
    predicted : (n,) predicted class indices in ``[0, n_classes)``.
    budget : number of rows to select.
    weights : (n_classes,) class weights for quotas, or None for one group.
    easy_share : share of each quota drawn uniformly from the non-hard rows.
    seed : seed of the id hash used for the uniform draw.
    exclude : ids that may not be selected (already labeled or queued).
    available_counts : (n_classes,) selectable rows per class in the whole pool
        when ``ids`` is only a candidate subset of it (streaming engines);
        quotas are computed from these counts.
    hard_label : stratum name of the score-ranked rows ("hard"; "random" for
        the random strategy).
    """
    ids = check_ids(ids)
    scores = np.asarray(scores)
    predicted = np.asarray(predicted, dtype=np.int64)
    if scores.shape != ids.shape or predicted.shape != ids.shape:
        raise InputError(
            f"ids, scores and predicted must have the same length, got {ids.shape[0]}, {scores.shape[0]}, {predicted.shape[0]}"
        )
    if not np.isfinite(scores).all():
        raise InputError("scores must be finite; found NaN or infinity")
    if predicted.size and (predicted.min() < 0 or predicted.max() >= n_classes):
        raise InputError(
            f"predicted class indices must lie in [0, {n_classes}), got {predicted.min()}..{predicted.max()}"
        )
    if not 0.0 <= easy_share <= 1.0:
        raise InputError(f"easy_share must be in [0, 1], got {easy_share}")
    if int(budget) != budget or budget < 1:
        raise InputError(f"budget must be a positive integer, got {budget}")
    budget = int(budget)

    if exclude is not None and len(exclude):
        excluded = np.asarray(exclude)
        if (
            excluded.dtype.kind in "iu"
            and ids.dtype.kind == "U"
            or excluded.dtype.kind == "U"
            and ids.dtype.kind == "i"
        ):
            raise InputError(
                f"excluded ids are of dtype {excluded.dtype} but pool ids are {ids.dtype}; they must match"
            )
        keep = ~np.isin(ids, excluded)
        ids, scores, predicted = ids[keep], scores[keep], predicted[keep]
    counts = np.bincount(predicted, minlength=n_classes)
    if available_counts is not None:
        counts = np.asarray(available_counts, dtype=np.int64)
    if counts.sum() == 0:
        raise EmptyPoolError("the pool holds no selectable sample (empty, or every id excluded)")
    if budget > counts.sum():
        raise PoolExhaustedError(
            f"budget {budget} is larger than the {int(counts.sum())} selectable samples in the pool"
        )

    if weights is None:
        groups = [(np.arange(ids.size), budget)]
        quotas = np.array([])
    else:
        quotas = allocate_quotas(counts, budget, weights)
        order = np.argsort(predicted, kind="stable")
        bounds = np.searchsorted(predicted[order], np.arange(n_classes + 1))
        groups = [(order[bounds[c] : bounds[c + 1]], int(quotas[c])) for c in range(n_classes)]

    keys = id_keys(ids, seed=seed) if easy_share > 0 else None
    hard_parts, easy_parts = [], []
    taken = np.zeros(ids.size, dtype=bool)
    for rows, quota in groups:
        n_hard, n_easy = split_hard_easy(quota, easy_share)
        # only the set matters here: all hard rows are ranked together below
        hard = rows[top_k_unordered(-scores[rows].astype(np.float64), ids[rows], n_hard)]
        hard_parts.append(hard)
        if n_easy:
            taken[hard] = True
            rest = rows[~taken[rows]]
            easy_parts.append(rest[top_k_indices(keys[rest], ids[rest], n_easy)])
    hard = np.concatenate(hard_parts) if hard_parts else np.empty(0, np.int64)
    easy = np.concatenate(easy_parts) if easy_parts else np.empty(0, np.int64)
    hard.sort()  # row order, so ids rise here whenever they rise in the input
    hard = hard[rank_order(-scores[hard].astype(np.float64), ids[hard])]
    rows = np.concatenate([hard, easy])
    stratum = np.empty(rows.size, dtype=object)
    stratum[: hard.size] = hard_label
    stratum[hard.size :] = "easy"
    class_names = tuple(classes) if classes is not None else tuple(range(n_classes))
    quota_map = {class_names[c]: int(q) for c, q in enumerate(quotas)} if weights is not None else {}
    return Batch(
        ids=ids[rows],
        scores=scores[rows],
        predicted=predicted[rows],
        stratum=stratum,
        classes=class_names,
        quotas=quota_map,
    )

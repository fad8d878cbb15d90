"""Acquisition scores: probabilities in, one score per sample out.

Direction, fixed once for the whole package: **a higher acquisition score means
a sample is more worth labeling**.

Single-model scores take probabilities of shape ``(n, k)`` and return ``(n,)``.
Committee scores take a stack of shape ``(m, n, k)`` (m members) and return
``(n,)``. Every function works row by row, so a pool may be scored chunk by
chunk and the pieces concatenated. The output dtype follows the input
(float32 stays float32), except for :func:`ranked_vote_entropy`, which is
always float64 because it carries two keys in one number.

**Vote entropy ties.** With a small committee vote entropy takes very few
values (3 members, 2 classes: only ``0`` and ``H(1/3, 2/3)``), so most of a
pool ties at 0 and a top-k would be decided by the id, a random batch in
disguise. :func:`ranked_vote_entropy` orders rows first by their votes and
then by a secondary key of the consensus (its least confidence by default),
packed into one float so the score stays a pure function of the row and
every engine ranks it the same way; the id breaks only exact ties of both.
"""

from __future__ import annotations

import functools

import numpy as np

from activemine.errors import InputError, ProbabilityError

__all__ = [
    "argmax_rows",
    "bald",
    "check_proba",
    "entropy",
    "kl_to_consensus",
    "least_confidence",
    "ranked_vote_entropy",
    "smallest_margin",
    "split_ranked_vote_entropy",
    "vote_entropy",
    "vote_entropy_levels",
]

#: Secondary keys of :func:`ranked_vote_entropy`: the consensus's least confidence or its entropy.
SECONDARY_KEYS = ("lc", "entropy")
#: Largest committee :func:`ranked_vote_entropy` accepts.
MAX_RANKED_MEMBERS = 30
#: Vote-entropy values closer than this are one level (equal in exact arithmetic, apart by rounding).
_LEVEL_TOLERANCE = 1e-9

#: Largest deviation of a row sum from one that is accepted as rounding.
SUM_TOLERANCE = 1e-3


def check_proba(proba, *, name: str = "proba", ndim: int = 2) -> np.ndarray:
    """Validate class probabilities and return them as a float array.

    ``proba`` has shape ``(n, k)`` (or ``(m, n, k)`` with ``ndim=3``), k >= 2,
    finite, non-negative, each row summing to one within :data:`SUM_TOLERANCE`.
    Raises :class:`ProbabilityError` naming the first offending row otherwise.
    """
    p = np.asarray(proba)
    if p.dtype.kind not in "fiub":
        raise ProbabilityError(f"{name} must be numeric, got dtype {p.dtype}")
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    if p.ndim != ndim:
        shape = "(n, k)" if ndim == 2 else "(m, n, k)"
        raise ProbabilityError(f"{name} must have shape {shape}, got shape {p.shape}")
    if p.shape[-1] < 2:
        raise ProbabilityError(f"{name} needs at least 2 class columns, got {p.shape[-1]}")
    flat = p.reshape(-1, p.shape[-1])
    # fast path for valid input (the usual case on big pools): a few column-wise passes;
    # any doubt falls through to the row-by-row checks below, which name the bad row
    sums = _row_reduce(np.add, flat, dtype=np.float64)
    if np.isfinite(sums).all() and (not flat.size or flat.min() >= 0) and (np.abs(sums - 1.0) <= SUM_TOLERANCE).all():
        return p
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ProbabilityError(
            f"{name} holds NaN or infinite values: {int(bad.sum())} row(s), first at row {row}: {flat[row].tolist()}"
        )
    neg = (flat < 0).any(axis=1)
    if neg.any():
        row = int(np.flatnonzero(neg)[0])
        raise ProbabilityError(f"{name} holds negative values, first at row {row}: {flat[row].tolist()}")
    sums = flat.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise ProbabilityError(
            f"{name} rows must sum to 1 (tolerance {SUM_TOLERANCE}): {int(off.sum())} row(s) do not, "
            f"first at row {row} sums to {sums[row]:.6g}"
        )
    return p


def _row_reduce(ufunc, flat: np.ndarray, dtype=None) -> np.ndarray:
    # (n, k) -> (n,) one column at a time: much faster than axis=1 reductions for small k
    out = flat[:, 0].astype(dtype or flat.dtype, copy=True)
    for j in range(1, flat.shape[1]):
        ufunc(out, flat[:, j], out=out)
    return out


def _top2(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # (n, k) -> two (n,) arrays: largest and second largest probability per row
    part = np.partition(proba, -2, axis=1)[:, -2:]  # (n, 2), unordered within the pair
    return part.max(axis=1), part.min(axis=1)


def argmax_rows(proba: np.ndarray) -> np.ndarray:
    """Index of each row's largest value, ties to the lowest index, ``(n, k)`` -> ``(n,)`` int64.

    Same result as ``proba.argmax(axis=1)``; for two columns a comparison,
    which is several times faster than a strided argmax over big pools.
    """
    if proba.ndim == 2 and proba.shape[1] == 2:
        return (proba[:, 1] > proba[:, 0]).astype(np.int64)
    return proba.argmax(axis=1)


def least_confidence(proba, *, validate: bool = True) -> np.ndarray:
    """Least confidence ``1 - max_c p(c | x)``, shape ``(n, k)`` -> ``(n,)``.

    In ``[0, 1 - 1/k]``; higher means the model is less sure of its top class.
    ``validate=False`` skips :func:`check_proba`, for arrays the caller has
    already checked (the same holds for every single-model score).
    """
    p = check_proba(proba) if validate else proba
    return (1.0 - _row_reduce(np.maximum, p)).astype(p.dtype, copy=False)


def smallest_margin(proba, *, validate: bool = True) -> np.ndarray:
    """Smallest margin as ``1 - (p1 - p2)``, p1 >= p2 the two largest probabilities.

    Shape ``(n, k)`` -> ``(n,)``, in ``[0, 1]``; higher means the top two classes
    are closer, i.e. the sample is more easily confused.
    """
    p = check_proba(proba) if validate else proba
    p1, p2 = _top2(p)
    return (1.0 - (p1 - p2)).astype(p.dtype, copy=False)


def entropy(proba, *, validate: bool = True) -> np.ndarray:
    """Shannon entropy ``-sum_c p log p`` in nats, ``0 log 0 = 0``.

    Shape ``(n, k)`` -> ``(n,)``, in ``[0, log k]``; higher means more spread.
    """
    p = check_proba(proba) if validate else proba
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)  # (n, k)
    return np.maximum(-terms.sum(axis=1), 0.0).astype(p.dtype, copy=False)


def vote_entropy(stack) -> np.ndarray:
    """Entropy of the committee's hard votes, shape ``(m, n, k)`` -> ``(n,)``.

    Each member votes for its most probable class (ties to the lowest class
    index); the score is the entropy of the vote fractions, in
    ``[0, log min(m, k)]``. Zero when all members agree.
    """
    s = check_proba(stack, name="committee stack", ndim=3)
    m, n, k = s.shape
    votes = s.argmax(axis=2)  # (m, n)
    counts = np.zeros((n, k), dtype=np.float64)
    np.add.at(counts, (np.broadcast_to(np.arange(n), (m, n)), votes), 1.0)
    frac = counts / m  # (n, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(frac > 0, frac * np.log(frac), 0.0)
    return np.maximum(-terms.sum(axis=1), 0.0).astype(s.dtype, copy=False)


def kl_to_consensus(stack) -> np.ndarray:
    """Mean KL divergence of each member to the consensus, ``(m, n, k)`` -> ``(n,)``.

    The consensus is the members' mean distribution; the score is
    ``1/m sum_i KL(p_i || mean)``, >= 0, zero when all members agree, at most
    ``log m``. Higher means more disagreement.
    """
    s = check_proba(stack, name="committee stack", ndim=3)
    consensus = s.mean(axis=0)  # (n, k)
    with np.errstate(divide="ignore", invalid="ignore"):
        # members put mass only where the consensus has some, so the ratio is finite; a subnormal member
        # probability can make the mean underflow to 0, and its term (< 1e-320) is then taken as 0
        terms = np.where((s > 0) & (consensus > 0)[None], s * (np.log(s) - np.log(consensus)[None]), 0.0)  # (m, n, k)
    return np.maximum(terms.sum(axis=2).mean(axis=0), 0.0).astype(s.dtype, copy=False)


def bald(stack) -> np.ndarray:
    """BALD, the mutual information of the class and the committee member, ``(m, n, k)`` -> ``(n,)``.

    ``H(mean_i p_i) - mean_i H(p_i)`` (Houlsby et al., 2011): the consensus's entropy less the
    members' mean entropy; >= 0, zero when all members agree, at most ``log min(m, k)``. Members are
    dropout passes, seeded networks or snapshots. Equal to :func:`kl_to_consensus` in exact arithmetic
    (the mean KL to the mean is this difference); computed here as the difference of entropies.
    """
    s = check_proba(stack, name="committee stack", ndim=3)
    m, n, k = s.shape
    consensus = entropy(s.mean(axis=0), validate=False)  # (n,)
    members = entropy(s.reshape(m * n, k), validate=False).reshape(m, n).mean(axis=0)  # (n,)
    return np.maximum(consensus - members, 0.0).astype(s.dtype, copy=False)


def _partitions(total: int, max_parts: int, largest: int | None = None):
    # partitions of ``total`` into at most ``max_parts`` positive parts, each part <= ``largest``, parts descending
    largest = total if largest is None else largest
    if total == 0:
        yield ()
        return
    if max_parts == 0:
        return
    for first in range(min(total, largest), 0, -1):
        for rest in _partitions(total - first, max_parts - 1, first):
            yield (first, *rest)


@functools.lru_cache(maxsize=128)
def _levels(n_members: int, n_classes: int) -> tuple[float, ...]:
    parts = _partitions(n_members, min(n_members, n_classes))
    fractions = [np.array(part, dtype=np.float64) / n_members for part in parts]
    values = sorted(max(0.0, float(-(f * np.log(f)).sum())) for f in fractions)
    levels = [values[0]]
    for v in values[1:]:
        if v - levels[-1] > _LEVEL_TOLERANCE:
            levels.append(v)
    return tuple(levels)


def vote_entropy_levels(n_members: int, n_classes: int) -> np.ndarray:
    """Every value vote entropy can take with ``n_members`` members and ``n_classes`` classes, ascending.

    A row's votes are a partition of ``n_members`` into at most
    ``min(n_members, n_classes)`` parts (the vote counts per class, order
    forgotten), and its vote entropy depends only on that partition; so the
    values are the entropies of those partitions (3 members, 2 classes: ``0``
    and ``H(1/3, 2/3) = 0.637``; 5 members: ``0, 0.500, 0.673``). Returns
    ``(L,)`` float64. Committees of more than 30 members are refused: the
    partitions become many (5,604 at 30) and the smallest gap tiny (4e-6), and
    so large a committee rarely ties anyway (use ``kl``).
    """
    if int(n_members) != n_members or not 1 <= n_members <= MAX_RANKED_MEMBERS:
        raise InputError(
            f"ranked vote entropy needs a committee of 1 to {MAX_RANKED_MEMBERS} members, got {n_members}; "
            "use disagreement 'kl' for larger committees"
        )
    if int(n_classes) != n_classes or n_classes < 2:
        raise InputError(f"ranked vote entropy needs at least 2 classes, got {n_classes}")
    return np.array(_levels(int(n_members), int(n_classes)))


def _secondary_scale(levels: np.ndarray) -> float:
    # half the smallest gap between two vote levels; one level (one member) leaves the whole unit to the secondary key
    return float(np.diff(levels).min()) / 2 if levels.size > 1 else 1.0


def _consensus_key(stack: np.ndarray, secondary: str) -> np.ndarray:
    # (m, n, k) -> (n,) in [0, 1]: the consensus's least confidence or entropy, divided by its maximum
    consensus = stack.mean(axis=0, dtype=np.float64)  # (n, k)
    k = consensus.shape[1]
    if secondary == "lc":
        key = least_confidence(consensus, validate=False) / (1.0 - 1.0 / k)
    else:
        key = entropy(consensus, validate=False) / np.log(k)
    return np.clip(key, 0.0, 1.0)


def ranked_vote_entropy(stack, *, secondary: str = "lc") -> np.ndarray:
    """Vote entropy with its ties ordered by the consensus, ``(m, n, k)`` -> ``(n,)`` float64.

    The score is ``v + c * s``: ``v`` is the row's vote entropy (exactly one of
    :func:`vote_entropy_levels`), ``s`` in ``[0, 1]`` the secondary key of the
    consensus (the members' mean distribution), ``"lc"`` its least confidence
    divided by ``1 - 1/k`` or ``"entropy"`` its entropy divided by ``log k``
    (for two classes the two order rows identically), and ``c`` half the
    smallest gap ``g`` between two vote levels. Higher = more worth labeling.

    Why the vote order is kept exactly: two rows with different votes differ
    by at least ``g`` in ``v`` and by at most ``c = g / 2`` in ``c * s``, so the
    composite differs by at least ``g / 2 > 0`` in the same direction (``g`` is
    at least 1e-6 up to 30 members, far above float64 rounding of numbers below ``log k``).
    Rows with the same votes are ordered by ``s`` (float addition is monotone,
    so never reversed; keys closer than about ``1e-16 / c`` may merge), and
    rows equal on both keys have equal scores, left to the id by the selection.
    :func:`split_ranked_vote_entropy` recovers ``v`` exactly.
    """
    if secondary not in SECONDARY_KEYS:
        raise InputError(f"unknown secondary key {secondary!r}; expected one of {SECONDARY_KEYS}")
    s = check_proba(stack, name="committee stack", ndim=3)
    m, _, k = s.shape
    levels = vote_entropy_levels(m, k)
    votes = _snap(vote_entropy(s).astype(np.float64), levels)
    return votes + _secondary_scale(levels) * _consensus_key(s, secondary)


def _snap(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    # each value to the nearest level, so rounding never makes two rows with the same votes differ
    mid = (levels[1:] + levels[:-1]) / 2
    return levels[np.searchsorted(mid, values)]


def split_ranked_vote_entropy(scores, *, n_members: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Undo :func:`ranked_vote_entropy`: ``(n,)`` scores -> vote entropy ``(n,)`` and secondary key ``(n,)``.

    The vote entropy comes back exactly (a level of :func:`vote_entropy_levels`),
    the secondary key up to rounding.
    """
    levels = vote_entropy_levels(n_members, n_classes)
    scores = np.asarray(scores, dtype=np.float64)
    # a score lies in [v, v + g / 2] and the next level is at least v + g, so the level is the last one <= score
    votes = levels[np.clip(np.searchsorted(levels, scores, side="right") - 1, 0, levels.size - 1)]
    return votes, (scores - votes) / _secondary_scale(levels)

"""Acquisition scores: probabilities in, one score per sample out.

Direction, fixed once for the whole package: **a higher acquisition score means
a sample is more worth labeling**.

Single-model scores take probabilities of shape ``(n, k)`` and return ``(n,)``.
Committee scores take a stack of shape ``(m, n, k)`` (m members) and return
``(n,)``. Every function works row by row, so a pool may be scored chunk by
chunk and the pieces concatenated. The output dtype follows the input
(float32 stays float32).
"""

from __future__ import annotations

import numpy as np

from activemine.errors import ProbabilityError

__all__ = [
    "argmax_rows",
    "check_proba",
    "entropy",
    "kl_to_consensus",
    "least_confidence",
    "smallest_margin",
    "vote_entropy",
]

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
        # members put mass only where the consensus has some, so the ratio is finite
        terms = np.where(s > 0, s * (np.log(s) - np.log(consensus)[None]), 0.0)  # (m, n, k)
    return np.maximum(terms.sum(axis=2).mean(axis=0), 0.0).astype(s.dtype, copy=False)

"""Find ids in a fixed set of ids fast: a hash table in numpy arrays.

Streaming engines look up every pool row in the exclusions (millions of
labeled and queued ids at a campaign's later rounds), and a round looks up
its batch among the candidates. A binary search costs ~22 cache misses per
lookup into a few million ids (and string comparisons for string ids);
here an id costs one 64-bit hash, one bucket read and, on a hash match, one
comparison of the ids themselves, so a hash collision is never taken for a
match.

The table: the ids' 64-bit hashes sorted, and the first position of each
bucket of the hashes' top bits (about one id per bucket).
"""

from __future__ import annotations

import numpy as np

from activemine.selection.batch import string_hash

__all__ = ["IdIndex", "id_hash"]

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def id_hash(ids: np.ndarray) -> np.ndarray:
    """A 64-bit hash ``(n,)`` uint64 of integer or string ids, spread over all 64 bits."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "US":
        x = string_hash(ids)
    elif ids.dtype.kind in "iu":
        x = ids.astype(np.int64, copy=False).view(np.uint64)
    else:
        raise TypeError(f"ids must be integers or strings, got dtype {ids.dtype}")
    with np.errstate(over="ignore"):  # splitmix64's finalizer: the top bits depend on every bit
        x = x ^ (x >> np.uint64(30))
        x = x * _MIX1
        x ^= x >> np.uint64(27)
        x *= _MIX2
        x ^= x >> np.uint64(31)
    return x


class IdIndex:
    """The ids ``values`` ``(m,)`` (unique, any order; integers or strings), for :meth:`find`."""

    def __init__(self, values: np.ndarray):
        self.values = np.asarray(values)
        keys = id_hash(self.values)
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]
        bits = int(min(26, max(1, np.ceil(np.log2(max(self.keys.size, 2))))))
        self.shift = np.uint64(64 - bits)
        self.start = np.searchsorted(self.keys >> self.shift, np.arange(2**bits + 1, dtype=np.uint64)).astype(np.int64)

    def __len__(self) -> int:
        return int(self.values.size)

    def find(self, ids: np.ndarray, *, keys: np.ndarray | None = None) -> np.ndarray:
        """Position in ``values`` of each of ``ids`` ``(n,)``, or -1 where absent; ``(n,)`` int64.
        ``keys``: :func:`id_hash` of ``ids`` when the caller has it already."""
        ids = np.asarray(ids)
        out = np.full(ids.size, -1, dtype=np.int64)
        if not ids.size or not self.values.size:
            return out
        k = id_hash(ids) if keys is None else keys
        bucket = (k >> self.shift).astype(np.intp)
        lo, hi = self.start[bucket], self.start[bucket + 1]
        active = np.flatnonzero(lo < hi)
        step = 0
        while active.size:  # each bucket holds about one hash: a few rounds over ever fewer rows
            at = lo[active] + step
            same = self.keys[at] == k[active]
            if same.any():
                rows, where = active[same], self.order[at[same]]
                equal = self.values[where] == ids[rows]  # the ids themselves, not only their hashes
                out[rows[equal]] = where[equal]
            step += 1
            active = active[(out[active] < 0) & (lo[active] + step < hi[active])]
        return out

    def contains(self, ids: np.ndarray, *, keys: np.ndarray | None = None) -> np.ndarray:
        """Whether each of ``ids`` ``(n,)`` is in the index, ``(n,)`` bool (``keys``: see :meth:`find`)."""
        return self.find(ids, keys=keys) >= 0

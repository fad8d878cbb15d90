"""The local streaming engine: fit, then score the pool chunk by chunk and keep only candidates.

Peak memory is one chunk plus the candidates (about ``budget`` rows, see
:mod:`activemine.engines.candidates`) plus, while duplicate ids are checked,
8 bytes per pool row (a 64-bit hash of each id; pass
``check_duplicates=False`` to drop it, and duplicates are then caught only
within a chunk and among the candidates). The batch equals the in-memory one
for any chunk size and row order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from activemine.data import LabeledSet
from activemine.engines.candidates import CandidateReducer, SelectionPlan
from activemine.errors import DuplicateIdError, EmptyPoolError, InputError
from activemine.selection import Batch, check_ids, id_keys
from activemine.sources import DEFAULT_CHUNK_SIZE, PoolColumns, PoolSource, open_pool
from activemine.strategies import Strategy

__all__ = ["ENGINES", "ExcludedIds", "mine_stream", "run_engine"]

ENGINES = ("local", "ray")

_HASH_SEED = 0x5EED


class ExcludedIds:
    """Ids that may not be selected, looked up per chunk by binary search in a sorted array."""

    def __init__(self, exclude=None, labeled: LabeledSet | None = None):
        parts = [] if exclude is None else [np.asarray(exclude).ravel()]
        if labeled is not None and labeled.ids is not None:
            parts.append(labeled.ids)
        parts = [p for p in parts if p.size]
        self.values = np.unique(np.concatenate(parts)) if parts else None

    def mask(self, ids: np.ndarray) -> np.ndarray | None:
        """True where an id ``(n,)`` is excluded, or None when nothing is."""
        if self.values is None:
            return None
        values = self.values
        if (values.dtype.kind in "iu") != (ids.dtype.kind == "i"):
            raise InputError(f"excluded ids are of dtype {values.dtype} but pool ids are {ids.dtype}; they must match")
        if ids.dtype.kind == "i":
            values = values.astype(np.int64)
        pos = np.minimum(np.searchsorted(values, ids), values.size - 1)
        return values[pos] == ids


class DuplicateCheck:
    """Finds ids that occur twice anywhere in a stream.

    Keeps integer ids as they are and string ids as 64-bit hashes (8 bytes per
    row); a hash collision is told apart from a true duplicate by a second
    pass. A stream whose ids rise strictly from chunk to chunk (a sorted pool)
    needs no final sort.
    """

    def __init__(self):
        self.kept: list[np.ndarray] = []
        self.rising = True
        self.last = None

    def add(self, ids: np.ndarray) -> None:
        if not ids.size:
            return
        if self.rising and (self.last is None or ids[0] > self.last) and _strictly_rising(ids):
            self.last = ids[-1]
        else:
            self.rising = False
        self.kept.append(ids.copy() if ids.dtype.kind == "i" else id_keys(ids, seed=_HASH_SEED))

    def raise_on_duplicates(self, source: PoolSource, chunk_size: int, where: str) -> None:
        kept, self.kept = self.kept, []
        if self.rising or len(kept) < 2:  # a single chunk was checked by check_ids
            return
        values = np.sort(np.concatenate(kept))
        suspects = np.unique(values[1:][values[1:] == values[:-1]])
        if not suspects.size:
            return
        if values.dtype.kind == "u":  # hashes: find the ids behind them
            found = []
            for chunk in source.chunks(chunk_size):
                ids = np.asarray(chunk.ids)
                found.append(ids[np.isin(id_keys(ids, seed=_HASH_SEED), suspects)])
            found, counts = np.unique(np.concatenate(found), return_counts=True)
            suspects = found[counts > 1]
        if suspects.size:
            raise DuplicateIdError(f"{where} ids must be unique: {suspects.size} duplicated, e.g. {suspects[:5].tolist()}")


def _strictly_rising(ids: np.ndarray) -> bool:
    return bool(ids.size < 2 or (ids[1:] > ids[:-1]).all())


def mine_stream(strategy: Strategy, source, *, budget: int, labeled: LabeledSet | None = None,
                exclude=None, columns: PoolColumns | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                progress: Callable[[int], None] | None = None, check_duplicates: bool = True) -> Batch:  # fmt: skip
    """Select ``budget`` rows of a pool read as a stream (see :func:`activemine.sources.open_pool`).

    The strategy is fitted on ``labeled`` (unless the pool brings probabilities
    and no features), every chunk is scored, rows whose id is in ``exclude`` or
    ``labeled.ids`` are dropped, and only selection candidates are kept.
    ``progress`` is called with the number of rows of every chunk scored.
    """
    src = open_pool(source, columns)
    if src.num_rows == 0:
        raise EmptyPoolError(f"the pool {src.where!r} has no rows")
    strategy.fit(labeled, n_proba_columns=src.columns.n_proba_columns)
    plan = SelectionPlan.from_strategy(strategy, budget=budget, total_rows=src.num_rows)
    excluded = ExcludedIds(exclude, labeled)
    reducer = CandidateReducer(plan)
    duplicates = DuplicateCheck() if check_duplicates else None
    id_kind = None
    for chunk in src.chunks(chunk_size):
        ids = check_ids(chunk.ids, name=f"{src.where} ids")
        if id_kind is None:
            id_kind = ids.dtype.kind
        elif ids.dtype.kind != id_kind:
            raise InputError(f"{src.where} ids must be all integers or all strings; chunks mix {id_kind!r} and {ids.dtype.kind!r}")
        scores, predicted = strategy.score(chunk)
        add_scored_rows(reducer, ids, scores, predicted, excluded)
        if duplicates is not None:
            duplicates.add(ids)
        if progress is not None:
            progress(ids.size)
    if reducer.rows_seen == 0:
        raise EmptyPoolError(f"the pool {src.where!r} has no rows")
    if duplicates is not None:
        duplicates.raise_on_duplicates(src, chunk_size, src.where)
    ids, scores, predicted, counts = reducer.candidates()
    return strategy.select(ids, scores, predicted, budget=budget, available_counts=counts)


def add_scored_rows(reducer: CandidateReducer, ids, scores, predicted, excluded: ExcludedIds) -> None:
    """Check one chunk's scores, drop excluded ids and give the rest to ``reducer``."""
    scores = np.asarray(scores)
    if scores.shape != ids.shape:
        raise InputError(f"a strategy returned {scores.shape[0]} scores for {ids.shape[0]} rows")
    if not np.isfinite(scores).all():
        raise InputError("scores must be finite; found NaN or infinity")
    n = ids.size
    drop = excluded.mask(ids)
    if drop is not None and drop.any():
        keep = ~drop
        ids, scores, predicted = ids[keep], scores[keep], np.asarray(predicted)[keep]
    reducer.add(ids, scores, predicted, rows=n)


def run_engine(engine: str, strategy: Strategy, source, *, budget: int, ray_address: str | None = None,
               **kwargs) -> Batch:  # fmt: skip
    """:func:`mine_stream` (``engine="local"``) or :func:`activemine.engines.ray.mine_ray` (``"ray"``)."""
    if engine == "local":
        if ray_address is not None:
            raise InputError("--ray-address needs --engine ray")
        return mine_stream(strategy, source, budget=budget, **kwargs)
    if engine == "ray":
        from activemine.engines.ray import mine_ray

        kwargs.pop("check_duplicates", None)
        return mine_ray(strategy, source, budget=budget, address=ray_address, **kwargs)
    raise InputError(f"unknown engine {engine!r}; expected one of {list(ENGINES)}")

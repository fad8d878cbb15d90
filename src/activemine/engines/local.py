"""The local executor: score the pool chunk by chunk on this machine, keeping only candidates.

Peak memory is one chunk plus the candidates (about ``budget`` rows, see
:mod:`activemine.engines.candidates`) plus, while duplicate ids are checked,
8 bytes per pool row (a 64-bit hash of each id; pass
``check_duplicates=False`` to drop it, and duplicates are then caught only
within a chunk and among the candidates). The batch equals the in-memory one
for any chunk size and row order. The steps around it are
:mod:`activemine.engines.base`.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from queue import Empty, Full, Queue

import numpy as np

from activemine.data.chunks import LabeledSet
from activemine.data.idindex import id_hash
from activemine.data.sources import DEFAULT_CHUNK_SIZE, ChunkSource, PoolColumns, PoolSource
from activemine.engines.base import MiningRun, prepare_run
from activemine.engines.candidates import CandidateReducer
from activemine.errors import DuplicateIdError, InputError
from activemine.selection.batch import Batch, check_ids
from activemine.selection.plan import SelectionPlan

__all__ = ["DuplicateCheck", "LocalExecutor", "mine_stream", "read_ahead"]


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

    def add(self, ids: np.ndarray, keys: np.ndarray | None = None) -> None:
        """Remember a chunk's ids (string ids by their :func:`id_hash`, ``keys`` when given)."""
        if not ids.size:
            return
        if self.rising and (self.last is None or ids[0] > self.last) and _strictly_rising(ids):
            self.last = ids[-1]
        else:
            self.rising = False
        self.kept.append(ids.copy() if ids.dtype.kind == "i" else (id_hash(ids) if keys is None else keys))

    def raise_on_duplicates(self, source: PoolSource, chunk_size: int, where: str) -> None:
        kept, self.kept = self.kept, []
        if self.rising or not kept:  # ids rising strictly through the stream are unique
            return
        values = np.sort(np.concatenate(kept))
        suspects = np.unique(values[1:][values[1:] == values[:-1]])
        if not suspects.size:
            return
        if values.dtype.kind == "u":  # hashes: find the ids behind them
            found = []
            for chunk in source.chunks(chunk_size):
                ids = np.asarray(chunk.ids)
                found.append(ids[np.isin(id_hash(ids), suspects)])
            found, counts = np.unique(np.concatenate(found), return_counts=True)
            suspects = found[counts > 1]
        if suspects.size:
            raise DuplicateIdError(
                f"{where} ids must be unique: {suspects.size} duplicated, e.g. {suspects[:5].tolist()}"
            )


def _strictly_rising(ids: np.ndarray) -> bool:
    return bool(ids.size < 2 or (ids[1:] > ids[:-1]).all())


def read_ahead(chunks: Iterator, depth: int = 2) -> Iterator:
    """The items of ``chunks``, in order, read by a background thread up to ``depth`` ahead.

    Reading and decoding Parquet release the GIL, so the next chunk is read
    while this one is scored; an error of the reader is raised here, in order.
    """
    if depth < 1:
        yield from chunks
        return
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in chunks:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:
            queue.put((done, exc))
            return
        queue.put((done, None))

    thread = threading.Thread(target=produce, name="activemine-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = queue.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()  # the consumer stopped early (an error while scoring): let the reader end
        while thread.is_alive():
            with contextlib.suppress(Empty):
                queue.get(timeout=0.1)


class LocalExecutor:
    """Scores chunks of ``chunk_size`` rows in this process (see the module docstring); the next
    chunk is read by a background thread while one is scored (``read_ahead`` chunks, 0 for none)."""

    def __init__(self, *, chunk_size: int = DEFAULT_CHUNK_SIZE, check_duplicates: bool = True, read_ahead: int = 2):
        if isinstance(chunk_size, bool) or int(chunk_size) != chunk_size or chunk_size < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.check_duplicates = check_duplicates
        self.read_ahead = int(read_ahead)

    def reduce(self, run: MiningRun, progress: Callable[[int], None] | None = None) -> CandidateReducer:
        src = run.source
        reducer = CandidateReducer(run.plan)
        duplicates = DuplicateCheck() if self.check_duplicates else None
        id_kind = None
        first_row = 0
        depth = 0 if isinstance(src, ChunkSource) else self.read_ahead  # arrays in memory: nothing to read
        for chunk in read_ahead(src.chunks(self.chunk_size), depth):
            # with the stream-wide check below, a chunk's own duplicates are found there
            ids = check_ids(chunk.ids, name=f"{src.where} ids", unique=duplicates is None)
            if id_kind is None:
                id_kind = ids.dtype.kind
            elif ids.dtype.kind != id_kind:
                raise InputError(
                    f"{src.where} ids must be all integers or all strings; chunks mix {id_kind!r} and {ids.dtype.kind!r}"
                )
            # one hash of the ids for both the exclusions and the duplicate check
            keys = (
                id_hash(ids) if ids.dtype.kind in "US" and (duplicates is not None or run.plan.exclude.size) else None
            )
            run.scorer.add(reducer, chunk, ids, first_row=first_row, keys=keys)
            if duplicates is not None:
                duplicates.add(ids, keys)
            first_row += ids.size
            if progress is not None:
                progress(ids.size)
        if duplicates is not None and reducer.rows_seen:
            duplicates.raise_on_duplicates(src, self.chunk_size, src.where)
        return reducer


def mine_stream(
    strategy,
    source,
    *,
    budget: int | None = None,
    plan: SelectionPlan | None = None,
    labeled: LabeledSet | None = None,
    exclude=None,
    columns: PoolColumns | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Callable[[int], None] | None = None,
    check_duplicates: bool = True,
) -> Batch:
    """Select ``budget`` rows of a pool read as a stream (see :func:`activemine.data.sources.open_pool`).

    The selection settings are ``plan``, or those of ``budget`` and
    ``exclude`` with the strategy's defaults; every setting is checked before
    the strategy is fitted on ``labeled`` (unless the pool brings
    probabilities and no features). Every chunk is scored, rows whose id is
    excluded or in ``labeled.ids`` are dropped, and only selection candidates
    are kept. ``progress`` is called with the number of rows of every chunk scored.
    """
    executor = LocalExecutor(chunk_size=chunk_size, check_duplicates=check_duplicates)
    run = prepare_run(strategy, source, plan=plan, budget=budget, exclude=exclude, labeled=labeled, columns=columns)
    return run.run(executor, progress)

"""A round's per-row data, kept beside its ids: one Arrow IPC blob per round in ``round_rows``.

``batches`` holds only ``(round, sid, rank)``, keyed by ``(round, sid)``; what
each batch row carries besides its id, in rank order, is one blob of the
round: the acquisition score (higher = more worth labeling), the stratum, the
predicted class, the model's class probabilities ``(k,)`` (float32) and the
row number in the pool. Both are written in the round's one transaction.

Why not columns of ``batches``: binding seven values per row from Python was
most of the time a round of a million rows took to write; a blob is one value,
and the ids go in through ``json_each`` in one statement
(:func:`insert_batch_ids`). Readers gather rows by ``(round, rank)``
(:func:`gather`), loading each round's blob once.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

import numpy as np

from activemine.campaign.store import ANY_ROUND, CampaignStore

__all__ = [
    "RoundRows",
    "batch_proba",
    "gather",
    "insert_batch_ids",
    "newest_rows",
    "read_batch",
    "read_round",
    "write_round",
]


@dataclass(frozen=True)
class RoundRows:
    """One round's batch rows in rank order: ``score`` ``(b,)``, ``stratum`` and ``predicted`` ``(b,)`` text,
    ``proba`` ``(b, k)`` float64 (stored as float32), ``row`` ``(b,)`` int64 (-1: not a pool row)."""

    score: np.ndarray
    stratum: np.ndarray
    predicted: np.ndarray
    proba: np.ndarray
    row: np.ndarray

    def __len__(self) -> int:
        return int(self.score.size)


def insert_batch_ids(conn: sqlite3.Connection, round_no: int, sids: list[str]) -> None:
    """``(round_no, sid, rank)`` for each of ``sids`` in rank order, in one statement, sorted by id
    (SQLite's sorter) so that the rows append to ``batches``' key."""
    conn.execute(
        "INSERT INTO batches (round, sid, rank) SELECT ?, value, key FROM json_each(?) ORDER BY value",
        (int(round_no), json.dumps(sids)),
    )


def _text_column(values):
    """Text ``(b,)``, or ``(names, codes)``: each row's index into ``names`` (no Python object per row)."""
    import pyarrow as pa

    if isinstance(values, tuple):
        names, codes = values
        return pa.DictionaryArray.from_arrays(
            pa.array(np.asarray(codes, dtype=np.int32)), pa.array([str(v) for v in names])
        )
    return pa.array([str(v) for v in values], type=pa.string()).dictionary_encode()


def write_round(conn: sqlite3.Connection, round_no: int, *, score, stratum, predicted, proba, row) -> None:
    """Store a round's per-row data (see :class:`RoundRows`), ``b`` rows in rank order; ``stratum`` and
    ``predicted``: text ``(b,)`` or ``(names, codes)``."""
    import pyarrow as pa

    proba = np.ascontiguousarray(np.asarray(proba, dtype=np.float32))
    b = proba.shape[0]
    k = proba.shape[1] if proba.ndim == 2 else 0
    table = pa.table(
        {
            "score": pa.array(np.asarray(score, dtype=np.float64)),
            "stratum": _text_column(stratum),
            "predicted": _text_column(predicted),
            "proba": pa.FixedSizeListArray.from_arrays(pa.array(proba.reshape(-1)), k) if k else pa.nulls(b, pa.null()),
            "row": pa.array(np.asarray(row, dtype=np.int64)),
        }
    )
    if table.num_rows != b:
        raise ValueError(f"round {round_no}: {table.num_rows} rows of data for {b} rows of probabilities")
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    conn.execute("INSERT INTO round_rows VALUES (?, ?)", (int(round_no), sink.getvalue().to_pybytes()))


def read_round(conn: sqlite3.Connection, round_no: int) -> RoundRows:
    """The per-row data of round ``round_no`` (empty when the round has none)."""
    import pyarrow as pa

    found = conn.execute("SELECT data FROM round_rows WHERE round = ?", (int(round_no),)).fetchone()
    if found is None:
        return RoundRows(
            np.empty(0), np.empty(0, dtype=str), np.empty(0, dtype=str), np.empty((0, 0)), np.empty(0, dtype=np.int64)
        )
    table = pa.ipc.open_stream(found[0]).read_all()
    b = table.num_rows
    proba_col = table.column("proba").combine_chunks()
    if pa.types.is_fixed_size_list(proba_col.type):
        proba = proba_col.values.to_numpy().reshape(b, proba_col.type.list_size).astype(np.float64)
    else:
        proba = np.empty((b, 0))

    def text(name: str) -> np.ndarray:
        return np.asarray(table.column(name).cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)

    return RoundRows(
        score=table.column("score").to_numpy(),
        stratum=text("stratum"),
        predicted=text("predicted"),
        proba=proba,
        row=table.column("row").to_numpy(),
    )


def read_batch(conn: sqlite3.Connection, round_no: int) -> tuple[list[str], RoundRows]:
    """Round ``round_no``'s ids in rank order and their :class:`RoundRows`."""
    sids = [s for (s,) in conn.execute("SELECT sid FROM batches WHERE round = ? ORDER BY rank", (int(round_no),))]
    return sids, read_round(conn, round_no)


def gather(conn: sqlite3.Connection, rounds, ranks, field: str) -> np.ndarray:
    """``field`` of :class:`RoundRows` for each batch row ``(rounds[i], ranks[i])``, ``(m, ...)``; each round read once."""
    rounds = np.asarray(rounds, dtype=np.int64)
    ranks = np.asarray(ranks, dtype=np.int64)
    parts: dict[int, np.ndarray] = {}
    for r in np.unique(rounds).tolist():
        parts[r] = getattr(read_round(conn, r), field)
    if not parts:
        return np.empty(0)
    first = next(iter(parts.values()))
    out = np.empty((rounds.size, *first.shape[1:]), dtype=first.dtype)
    for r, values in parts.items():
        at = rounds == r
        out[at] = values[ranks[at]]
    return out


def newest_rows(conn: sqlite3.Connection, sids, field: str) -> dict[str, np.ndarray]:
    """``field`` of the newest batch row of each of ``sids`` that is in some batch."""
    found: dict[str, tuple[int, int]] = {}
    sids = list(sids)
    for start in range(0, len(sids), 900):  # SQLite caps bound parameters per statement
        part = sids[start : start + 900]
        marks = ",".join("?" * len(part))
        query = f"SELECT b.sid, b.round, b.rank FROM batches b WHERE {ANY_ROUND.format('b')} AND b.sid IN ({marks}) ORDER BY b.round"
        for sid, r, rank in conn.execute(query, part):
            found[sid] = (r, rank)
    if not found:
        return {}
    keys = list(found)
    values = gather(conn, [found[s][0] for s in keys], [found[s][1] for s in keys], field)
    return dict(zip(keys, values))


def batch_proba(store: CampaignStore, sids, *, conn: sqlite3.Connection | None = None) -> dict[str, np.ndarray]:
    """The model's class probabilities ``(k,)`` stored with the newest batch row of each id that has one."""
    if conn is not None:
        return newest_rows(conn, sids, "proba")
    with store.snapshot() as own:
        return newest_rows(own, sids, "proba")

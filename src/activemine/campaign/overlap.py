"""Overlap: samples of a round that several distinct annotators should label.

A round's sample normally wants one label. :func:`assign_overlap` picks a
seeded share of a round for ``per_item`` labels; a relabel round wants one
label more than each sample has. The wish is kept in the table ``wanted``
(``round, sid, labels``; absent = 1); a store made before the table existed
gets it from its first writer, and its readers see an empty temporary one
(:func:`wanted_readable`), so a read never takes the write lock. The labeling
page (:mod:`activemine.campaign.leases`), exports, ``campaign status`` and
relabel rounds all ask :data:`OPEN_FOR` / :func:`open_sids` which samples
still want a label, so they count outstanding work the same way; an annotator
is never offered a sample they have labeled.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from activemine.campaign.store import CampaignStore
from activemine.errors import InputError

__all__ = [
    "OPEN_FOR",
    "WANTED_TABLE",
    "assign_overlap",
    "check_overlap",
    "ensure_wanted_table",
    "mark_overlap",
    "open_sids",
    "waiting_sids",
    "wanted_counts",
    "wanted_readable",
]

#: the ``wanted`` table (also in the store's schema; ``{temp}`` is empty or ``TEMP``)
WANTED_TABLE = (
    "CREATE {temp} TABLE IF NOT EXISTS wanted (round INTEGER NOT NULL, sid TEXT NOT NULL, labels INTEGER NOT NULL, "
    "PRIMARY KEY (round, sid))"
)
_TABLE = WANTED_TABLE.format(temp="")

#: SQL condition on a batch row ``b`` (round, sid): the sample still wants a label. Needs :func:`ensure_wanted_table`.
OPEN_FOR = (
    "(SELECT COUNT(DISTINCT l.annotator) FROM labels l WHERE l.sid = {0}.sid AND l.retracted_at IS NULL) < "
    "COALESCE((SELECT w.labels FROM wanted w WHERE w.round = {0}.round AND w.sid = {0}.sid), 1)"
)


#: the most distinct annotators one sample may ask for: more is no overlap check but a poll, and the labeling
#: page would hold such samples open until that many people have come by
MAX_PER_ITEM = 20


def check_overlap(overlap: float, per_item: int) -> None:
    """Raise :class:`InputError` unless ``0 <= overlap < 1`` and ``2 <= per_item <= MAX_PER_ITEM``."""
    if not 0.0 <= float(overlap) < 1.0:
        raise InputError(f"overlap must be in [0, 1), got {overlap}")
    if int(per_item) != per_item or not 2 <= per_item <= MAX_PER_ITEM:
        raise InputError(
            f"per-item must be an integer from 2 to {MAX_PER_ITEM} (distinct annotators per overlapping sample), "
            f"got {per_item}"
        )


def ensure_wanted_table(store: CampaignStore, conn: sqlite3.Connection | None = None) -> None:
    """Create the ``wanted`` table if the campaign has none yet."""
    if conn is not None:
        conn.execute(_TABLE)
        return
    with store.transaction() as c:
        c.execute(_TABLE)


def wanted_readable(conn: sqlite3.Connection) -> None:
    """Make :data:`OPEN_FOR` usable on a reading connection without writing to the store.

    A store made before the ``wanted`` table existed gets an empty temporary
    one on this connection (no sample there wants more than one label);
    temporary tables live outside the database file, so no write lock is taken.
    """
    if conn.execute("SELECT 1 FROM main.sqlite_master WHERE type = 'table' AND name = 'wanted'").fetchone() is None:
        conn.execute(WANTED_TABLE.format(temp="TEMP"))


def mark_overlap(conn: sqlite3.Connection, round_no: int, *, overlap: float, per_item: int, seed: int = 0) -> list[str]:
    """In the caller's write transaction ``conn``: mark a seeded share ``overlap`` of round ``round_no``'s
    samples for ``per_item`` labels; returns their ids.

    ``round(overlap * size)`` samples, drawn by ``numpy.random.default_rng([seed, round_no])``
    over the round's rows in rank order, so the same round and seed give the same samples.
    """
    check_overlap(overlap, per_item)
    conn.execute(_TABLE)
    sids = [s for (s,) in conn.execute("SELECT sid FROM batches WHERE round = ? ORDER BY rank", (round_no,))]
    if not sids:
        raise InputError(f"round {round_no} has no samples")
    count = int(round(overlap * len(sids)))
    chosen = np.random.default_rng([seed, round_no]).choice(len(sids), size=count, replace=False)
    picked = [sids[i] for i in sorted(chosen.tolist())]
    conn.executemany("INSERT OR REPLACE INTO wanted VALUES (?, ?, ?)", [(round_no, s, int(per_item)) for s in picked])
    return picked


def assign_overlap(store: CampaignStore, round_no: int, *, overlap: float, per_item: int, seed: int = 0) -> list[str]:
    """:func:`mark_overlap` in a transaction of its own (``campaign mine`` marks its round in the round's)."""
    check_overlap(overlap, per_item)
    with store.transaction() as conn:
        return mark_overlap(conn, round_no, overlap=overlap, per_item=per_item, seed=seed)


def wanted_counts(store: CampaignStore, round_no: int) -> dict[str, int]:
    """Ids of round ``round_no`` that want more than one label -> how many."""
    with store.snapshot() as conn:
        wanted_readable(conn)
        return dict(conn.execute("SELECT sid, labels FROM wanted WHERE round = ?", (round_no,)).fetchall())


def open_sids(store: CampaignStore, round_no: int, *, conn: sqlite3.Connection | None = None) -> set[str]:
    """Ids of round ``round_no`` that still want a label (fewer distinct annotators than wanted)."""
    if conn is None:
        with store.snapshot() as own:
            return open_sids(store, round_no, conn=own)
    wanted_readable(conn)
    sql = f"SELECT b.sid FROM batches b WHERE b.round = ? AND {OPEN_FOR.format('b')}"
    return {s for (s,) in conn.execute(sql, (round_no,))}


def waiting_sids(conn: sqlite3.Connection) -> set[str]:
    """Ids that already have a label and still want another in some round (overlap or a second opinion)."""
    wanted_readable(conn)
    return {
        s
        for (s,) in conn.execute(
            f"SELECT DISTINCT b.sid FROM wanted w JOIN batches b ON b.round = w.round AND b.sid = w.sid "
            f"WHERE {OPEN_FOR.format('b')}"
        )
    }

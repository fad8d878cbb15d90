"""Overlap: samples of a round that several distinct annotators should label.

A round's sample normally wants one label. :func:`assign_overlap` picks a
seeded share of a round for ``per_item`` labels; a relabel round wants one
label more than each sample has. The wish is kept in the table ``wanted``
(``round, sid, labels``; absent = 1), created on first use, so campaigns made
before it keep working. The labeling page (:mod:`activemine.campaign.leases`)
and exports ask :data:`OPEN_FOR` / :func:`open_sids` which samples still want
a label; an annotator is never offered a sample they have labeled.
"""

from __future__ import annotations

import sqlite3

import numpy as np

from activemine.campaign.store import CampaignStore
from activemine.errors import InputError

__all__ = ["OPEN_FOR", "assign_overlap", "check_overlap", "ensure_wanted_table", "open_sids", "wanted_counts"]

_TABLE = "CREATE TABLE IF NOT EXISTS wanted (round INTEGER NOT NULL, sid TEXT NOT NULL, labels INTEGER NOT NULL, PRIMARY KEY (round, sid))"

#: SQL condition on a batch row ``b`` (round, sid): the sample still wants a label. Needs :func:`ensure_wanted_table`.
OPEN_FOR = (
    "(SELECT COUNT(DISTINCT l.annotator) FROM labels l WHERE l.sid = {0}.sid AND l.retracted_at IS NULL) < "
    "COALESCE((SELECT w.labels FROM wanted w WHERE w.round = {0}.round AND w.sid = {0}.sid), 1)"
)


def check_overlap(overlap: float, per_item: int) -> None:
    """Raise :class:`InputError` unless ``0 <= overlap < 1`` and ``per_item >= 2``."""
    if not 0.0 <= float(overlap) < 1.0:
        raise InputError(f"overlap must be in [0, 1), got {overlap}")
    if int(per_item) != per_item or per_item < 2:
        raise InputError(f"per-item must be an integer of at least 2 (labels per overlapping sample), got {per_item}")


def ensure_wanted_table(store: CampaignStore, conn: sqlite3.Connection | None = None) -> None:
    """Create the ``wanted`` table if the campaign has none yet."""
    if conn is not None:
        conn.execute(_TABLE)
        return
    with store.transaction() as c:
        c.execute(_TABLE)


def assign_overlap(store: CampaignStore, round_no: int, *, overlap: float, per_item: int, seed: int = 0) -> list[str]:
    """Mark a seeded share ``overlap`` of round ``round_no``'s samples for ``per_item`` labels; returns their ids.

    ``round(overlap * size)`` samples, drawn by ``numpy.random.default_rng([seed, round_no])``
    over the round's rows in rank order, so the same round and seed give the same samples.
    """
    check_overlap(overlap, per_item)
    with store.transaction() as conn:
        ensure_wanted_table(store, conn)
        sids = [s for (s,) in conn.execute("SELECT sid FROM batches WHERE round = ? ORDER BY rank", (round_no,))]
        if not sids:
            raise InputError(f"round {round_no} has no samples")
        count = int(round(overlap * len(sids)))
        chosen = np.random.default_rng([seed, round_no]).choice(len(sids), size=count, replace=False)
        picked = [sids[i] for i in sorted(chosen.tolist())]
        conn.executemany(
            "INSERT OR REPLACE INTO wanted VALUES (?, ?, ?)", [(round_no, s, int(per_item)) for s in picked]
        )
    return picked


def wanted_counts(store: CampaignStore, round_no: int) -> dict[str, int]:
    """Ids of round ``round_no`` that want more than one label -> how many."""
    ensure_wanted_table(store)
    return dict(store.read("SELECT sid, labels FROM wanted WHERE round = ?", (round_no,)))


def open_sids(store: CampaignStore, round_no: int) -> set[str]:
    """Ids of round ``round_no`` that still want a label (fewer distinct annotators than wanted)."""
    ensure_wanted_table(store)
    return {
        s
        for (s,) in store.read(f"SELECT b.sid FROM batches b WHERE b.round = ? AND {OPEN_FOR.format('b')}", (round_no,))
    }

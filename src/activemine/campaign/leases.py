"""The labeling queue behind the labeling page: leases, labels, skips and undo.

An annotator asking for work gets the best-ranked sample of the round that
still wants a label (one, or more with overlap: :mod:`activemine.campaign.overlap`),
that they have not labeled, is not leased to anyone else and was not skipped by them; the
sample is leased to them for ``lease_seconds``. Two annotators never hold the
same sample at once, because every step runs in one ``BEGIN IMMEDIATE``
transaction (SQLite serializes writers). A lease that expires frees the sample.

Each thread keeps one connection with ``synchronous=NORMAL``: closing the last
connection of a WAL database checkpoints it, and an fsync per click buys
nothing a power cut could cost here (the sample would simply be offered again).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from activemine.campaign.checks import (
    DEFAULT_SUSPECT_THRESHOLD,
    judge_labels,
    lift_spared_flags,
    returned_label_disagreements,
)
from activemine.campaign.overlap import OPEN_FOR, ensure_wanted_table
from activemine.campaign.store import CampaignStore, now
from activemine.errors import InputError, LeaseError, UnknownLabelError

__all__ = ["LabelingQueue"]

_ACTIVE_LABEL = "SELECT 1 FROM labels l WHERE l.sid = {0} AND l.retracted_at IS NULL"
# a round's ids in rank order, made the first time the queue serves the round: ``batches`` is keyed by
# (round, sid) so that writing a round appends, and finding the best-ranked open sample of a million-row
# round by a sort of all of them took 2.5 to 3.7 s a click; walking this key stops at the first open one
_ORDER_TABLE = (
    "CREATE TABLE IF NOT EXISTS queue_order (round INTEGER NOT NULL, rank INTEGER NOT NULL, "
    "sid TEXT NOT NULL, PRIMARY KEY (round, rank)) WITHOUT ROWID"
)
# the annotator (the query's parameter) already labeled it: with overlap, others may still be asked
_LABELED_BY = "SELECT 1 FROM labels l WHERE l.sid = {0} AND l.retracted_at IS NULL AND l.annotator = ?"


#: seconds a click waits for another process's write before the page is told the store is busy: a person
#: is waiting, and a page that hangs for a minute looks broken (the command-line default is a minute)
PAGE_BUSY_TIMEOUT_S = 10.0


#: the longest lease: a sample held longer is as good as lost to the other annotators
MAX_LEASE_SECONDS = 7 * 24 * 3600


class LabelingQueue:
    """Hands out the samples of ``round_no`` (default: the newest round) one at a time per annotator."""

    def __init__(
        self,
        store: CampaignStore,
        *,
        round_no: int | None = None,
        lease_seconds: float = 300.0,
        suspect_threshold: float = DEFAULT_SUSPECT_THRESHOLD,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = PAGE_BUSY_TIMEOUT_S,
    ):
        if not (isinstance(lease_seconds, (int, float)) and 0 < lease_seconds <= MAX_LEASE_SECONDS):
            raise InputError(
                f"lease seconds must be a number of seconds above 0 and at most {MAX_LEASE_SECONDS:,} (a week), "
                f"got {lease_seconds}"
            )
        self.store = store
        self.round_no = None if round_no is None else store.require_round(round_no)
        self.lease_seconds = lease_seconds
        self.suspect_threshold = suspect_threshold
        self.clock = clock
        self.busy_timeout = float(busy_timeout)
        self._local = threading.local()
        self._ordered: set[int] = set()
        self._probas: dict = {}  # each round's stored probabilities, for the suspect check (a round never changes)
        self._stored = None  # (label_id when read, the returned labels for the suspect check)
        with store.transaction() as conn:
            ensure_wanted_table(store, conn)  # a store older than the table (activemine.campaign.overlap)
            conn.execute(_ORDER_TABLE)

    def _ensure_order(self, conn, round_no: int) -> None:
        """Fill ``queue_order`` for ``round_no`` once (a round's rows never change after its transaction)."""
        if round_no in self._ordered:
            return
        if conn.execute("SELECT 1 FROM queue_order WHERE round = ? LIMIT 1", (round_no,)).fetchone() is None:
            conn.execute(
                "INSERT INTO queue_order (round, rank, sid) SELECT round, rank, sid FROM batches "
                "WHERE round = ? ORDER BY rank",
                (round_no,),
            )
        self._ordered.add(round_no)

    def _conn(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.store.connect(synchronous="NORMAL", busy_timeout=self.busy_timeout)
        return conn

    def current_round(self) -> int | None:
        return self.round_no if self.round_no is not None else self.store.last_round(conn=self._conn())

    @staticmethod
    def _check_annotator(annotator: str) -> str:
        name = (annotator or "").strip()
        if not name or len(name) > 100:
            raise InputError(f"annotator must be a name of 1 to 100 characters, got {annotator!r}")
        return name

    def _check_submission(self, annotator: str, sid, label) -> tuple[str, str, str]:
        """``(annotator, sid, label)`` of a submitted label, checked: a name, the campaign's id spelling, a known class."""
        annotator, sid, label = self._check_annotator(annotator), self.store.normalize_id(sid), str(label)
        if label not in self.store.class_names:
            raise UnknownLabelError(f"unknown class {label!r}; expected one of {self.store.class_names}")
        return annotator, sid, label

    def _lease(self, conn, sid: str, annotator: str, start: float) -> str:
        """Lease ``sid`` to ``annotator`` from ``start`` (inside the caller's transaction); returns ``sid``."""
        conn.execute(
            "INSERT OR REPLACE INTO assignments VALUES (?, ?, ?)", (sid, annotator, start + self.lease_seconds)
        )
        return sid

    def remaining(self) -> int:
        """Samples of the round that still want a label."""
        (n,) = self.store.read(
            f"SELECT COUNT(*) FROM batches b WHERE b.round = ? AND {OPEN_FOR.format('b')}",
            (self.current_round(),),
            conn=self._conn(),
        )[0]
        return n

    def next(self, annotator: str) -> str | None:
        """Lease the next sample to ``annotator`` (or renew the one they hold); None when nothing is left."""
        annotator = self._check_annotator(annotator)
        t = self.clock()
        with self.store.transaction(self._conn()) as conn:
            round_no = self.current_round()
            if round_no is None:
                return None
            conn.execute("DELETE FROM assignments WHERE expires_at <= ?", (t,))
            held = conn.execute(
                # CROSS JOIN keeps the few leases as the outer loop: left to itself SQLite walked the round's
                # million batch rows (1.1 s a click on a 1M-row round)
                f"SELECT a.sid FROM assignments a CROSS JOIN batches b ON b.sid = a.sid AND b.round = ? WHERE a.annotator = ? "
                f"AND NOT EXISTS ({_LABELED_BY.format('a.sid')}) AND {OPEN_FOR.format('b')}",
                (round_no, annotator, annotator),
            ).fetchone()
            if held is None:
                self._ensure_order(conn, round_no)
                held = conn.execute(
                    "SELECT q.sid FROM queue_order q JOIN batches b ON b.round = q.round AND b.sid = q.sid "
                    f"WHERE q.round = ? AND {OPEN_FOR.format('b')} AND NOT EXISTS ({_LABELED_BY.format('q.sid')}) "
                    "AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.sid = q.sid) "
                    "AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.sid = q.sid AND s.annotator = ?) "
                    "ORDER BY q.rank LIMIT 1",
                    (round_no, annotator, annotator),
                ).fetchone()
            if held is None:
                return None
            return self._lease(conn, held[0], annotator, t)

    def submit(self, annotator: str, sid: str, label: str) -> None:
        """Record ``label`` for ``sid`` by ``annotator`` and release the lease.

        Raises :class:`LeaseError` when another annotator holds a live lease on
        the sample or it already has a label (a retry of the same label is a no-op).
        """
        annotator, sid, label = self._check_submission(annotator, sid, label)
        flagged, limits = judge_labels(
            self.store,
            [(sid, label)],
            threshold=self.suspect_threshold,
            conn=self._conn(),
            cache=self._probas,
            stored=self._returned_labels(),
        )
        suspect = bool(flagged)
        t = self.clock()
        with self.store.transaction(self._conn()) as conn:
            if not self.store.is_known(sid, conn=conn):
                raise InputError(f"unknown id {sid!r}")
            lease = conn.execute("SELECT annotator, expires_at FROM assignments WHERE sid = ?", (sid,)).fetchone()
            if lease is not None and lease[0] != annotator and lease[1] > t:
                raise LeaseError(f"sample {sid!r} is being labeled by {lease[0]!r}")
            existing = conn.execute(
                "SELECT annotator, label FROM labels WHERE sid = ? AND retracted_at IS NULL", (sid,)
            ).fetchall()
            if (annotator, label) in existing:
                return
            if any(who == annotator for who, _ in existing):
                raise LeaseError(f"sample {sid!r} was already labeled by {annotator!r}; undo to change it")
            (wanted,) = conn.execute("SELECT COALESCE(MAX(labels), 1) FROM wanted WHERE sid = ?", (sid,)).fetchone()
            if len({who for who, _ in existing}) >= wanted:
                raise LeaseError(f"sample {sid!r} already has a label from {existing[0][0]!r}")
            conn.execute(
                "INSERT INTO labels (sid, label, annotator, created_at, source, suspect) VALUES (?, ?, ?, ?, 'web', ?)",
                (sid, label, annotator, now(), int(suspect)),
            )
            conn.execute("DELETE FROM assignments WHERE sid = ?", (sid,))
            if limits is not None:
                index = {c: i for i, c in enumerate(self.store.class_names)}
                lift_spared_flags(conn, index, limits, self.suspect_threshold, cache=self._probas)

    def _returned_labels(self):
        """The campaign's returned labels for the suspect check, read again once labels grew by 2% (at least 20):
        reading every label is too much for every click of a large campaign; a label is checked against these
        and itself."""
        conn = self._conn()
        (last,) = conn.execute("SELECT COALESCE(MAX(label_id), 0) FROM labels").fetchone()
        if self._stored is None or last - self._stored[0] > max(20, 0.02 * self._stored[0]):
            index = {c: i for i, c in enumerate(self.store.class_names)}
            self._stored = (last, returned_label_disagreements(conn, index, cache=self._probas))
        return self._stored[1]

    def skip(self, annotator: str, sid: str) -> None:
        """Release ``sid`` and never offer it to ``annotator`` again."""
        annotator, sid = self._check_annotator(annotator), self.store.normalize_id(sid)
        with self.store.transaction(self._conn()) as conn:
            if not self.store.is_known(sid, conn=conn):
                raise InputError(f"unknown id {sid!r}")
            conn.execute("INSERT OR IGNORE INTO skips VALUES (?, ?)", (sid, annotator))
            conn.execute("DELETE FROM assignments WHERE sid = ? AND annotator = ?", (sid, annotator))

    def undo(self, annotator: str) -> str | None:
        """Retract ``annotator``'s last label from the page and lease that sample back to them; None if none."""
        annotator = self._check_annotator(annotator)
        with self.store.transaction(self._conn()) as conn:
            last = conn.execute(
                "SELECT label_id, sid FROM labels WHERE annotator = ? AND source = 'web' AND retracted_at IS NULL "
                "ORDER BY label_id DESC LIMIT 1",
                (annotator,),
            ).fetchone()
            if last is None:
                return None
            conn.execute("UPDATE labels SET retracted_at = ? WHERE label_id = ?", (now(), last[0]))
            conn.execute("DELETE FROM assignments WHERE annotator = ?", (annotator,))
            return self._lease(conn, last[1], annotator, self.clock())

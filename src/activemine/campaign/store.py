"""The campaign store: one SQLite database (WAL mode) next to the campaign's Parquet data.

Layout of a campaign folder::

    DIR/campaign.db             rounds, batches, labels, imports, leases (assignments), the labeled set's ids
    DIR/data/pool/*.parquet     the unlabeled pool U: its files, copied as files at init (never read whole),
                                unless init recorded the original paths instead (``meta["pool_files"]``)
    DIR/data/labeled.parquet    the initial labeled set L

The pool never goes into SQLite: ``samples`` holds L's rows only, and a pool
sample enters the store when a round selects it (``batches`` keeps its row
number in the pool, ``row``). So the store grows with what is mined and
labeled, not with the pool.

Ids and labels are stored as text (``sid``, ``label``) so that ids from CSV,
JSON and Parquet compare equal; ``meta`` remembers whether they were integers
so :meth:`CampaignStore.typed_ids` and the dataset give them back as such.
A batch row's score, stratum, predicted class, probabilities (float32) and pool
row are kept per round beside the ids (:mod:`activemine.campaign.batchdata`).

Every change happens in one ``BEGIN IMMEDIATE`` transaction
(:meth:`CampaignStore.transaction`): a killed process leaves the store as it
was before the change. Reads that must agree with each other run in one read
transaction (:meth:`CampaignStore.snapshot`). A label is never deleted: undo
sets ``retracted_at``. An id with two different active labels, or whose label
the dirty-data check doubts (``suspect``), is *flagged* and left out of the
dataset until resolved.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from activemine.errors import CampaignError, InputError, StoreBusyError

__all__ = ["ANY_ROUND", "INIT_MARKER", "CampaignStore", "DB_NAME", "normalize_id", "now"]

DB_NAME = "campaign.db"
#: seconds a command waits for another process's write to finish before it gives up (StoreBusyError)
BUSY_TIMEOUT_S = 60.0
#: present in a campaign folder from the start of ``campaign init`` until its store is in place
INIT_MARKER = ".init-incomplete"
SCHEMA_VERSION = 3  # 3: `batches` keyed by (round, sid), its rows' data in `round_rows`

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- the initial labeled set L; pool samples live in the pool's Parquet files and enter batches when mined
CREATE TABLE samples (
    sid TEXT PRIMARY KEY,
    origin TEXT NOT NULL CHECK (origin IN ('pool', 'labeled')),
    row INTEGER NOT NULL
);
CREATE TABLE rounds (
    round INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    strategy TEXT NOT NULL,
    budget INTEGER NOT NULL,
    params TEXT NOT NULL
);
-- keyed by (round, sid): a round's ids go in sorted, after every earlier round's, so writing a round of a
-- million appends to the b-tree; an index on sid alone (or on (round, rank)) would take a million random
-- inserts. Look an id up with ANY_ROUND. What a batch row carries besides its id (score, stratum, predicted
-- class, probabilities, pool row) is in round_rows, in rank order (batchdata.py).
CREATE TABLE batches (
    round INTEGER NOT NULL REFERENCES rounds(round),
    sid TEXT NOT NULL,
    rank INTEGER NOT NULL,
    PRIMARY KEY (round, sid)
) WITHOUT ROWID;
-- one Arrow IPC stream per round: its batch rows' data in rank order
CREATE TABLE round_rows (
    round INTEGER PRIMARY KEY REFERENCES rounds(round),
    data BLOB NOT NULL
);
-- how many distinct annotators a batch row wants (absent = 1): overlap and relabel rounds (overlap.py)
CREATE TABLE wanted (
    round INTEGER NOT NULL,
    sid TEXT NOT NULL,
    labels INTEGER NOT NULL,
    PRIMARY KEY (round, sid)
);
CREATE TABLE assignments (
    sid TEXT PRIMARY KEY,
    annotator TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE skips (
    sid TEXT NOT NULL,
    annotator TEXT NOT NULL,
    PRIMARY KEY (sid, annotator)
);
CREATE TABLE imports (
    import_id INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256 TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_at TEXT NOT NULL,
    n_added INTEGER NOT NULL
);
CREATE TABLE labels (
    label_id INTEGER PRIMARY KEY AUTOINCREMENT,
    sid TEXT NOT NULL,
    label TEXT NOT NULL,
    annotator TEXT NOT NULL,
    created_at TEXT NOT NULL,
    source TEXT NOT NULL,
    import_id INTEGER REFERENCES imports(import_id),
    suspect INTEGER NOT NULL DEFAULT 0,
    retracted_at TEXT
);
-- the same label for the same id by the same annotator counts once, which makes re-imports no-ops
CREATE UNIQUE INDEX labels_once ON labels(sid, label, annotator) WHERE retracted_at IS NULL;
CREATE INDEX labels_sid ON labels(sid);
-- the few suspect labels, without a scan of every label (campaign mine and status list them)
CREATE INDEX labels_suspect ON labels(sid) WHERE suspect = 1 AND retracted_at IS NULL;
"""

#: The condition that makes a lookup of ``{0}.sid`` in ``batches`` use its key (one search per round).
ANY_ROUND = "{0}.round IN (SELECT round FROM rounds)"
#: Ids of the queued samples: in some batch, with no active label.
QUEUED_SQL = (
    "SELECT DISTINCT b.sid FROM batches b WHERE NOT EXISTS "
    "(SELECT 1 FROM labels l WHERE l.sid = b.sid AND l.retracted_at IS NULL)"
)
# FLAGGED_SQL's two tests, each the cheap way, for the current labels: no conflict is MIN(label) = MAX(label),
# read from the labels_once index alone in id order; the few suspect ids come from the labels_suspect index
_AGREED_SQL = (
    "SELECT sid, MIN(label) AS label FROM labels WHERE retracted_at IS NULL GROUP BY sid HAVING MIN(label) = MAX(label)"
)
_SUSPECT_SIDS_SQL = "SELECT sid FROM labels WHERE suspect = 1 AND retracted_at IS NULL"
#: Flagged ids and why: two different active labels, or a label the dirty-data check doubts.
FLAGGED_SQL = (
    "SELECT sid, 'conflict' AS why FROM labels WHERE retracted_at IS NULL GROUP BY sid HAVING COUNT(DISTINCT label) > 1 "
    "UNION ALL SELECT DISTINCT sid, 'suspect' FROM labels WHERE retracted_at IS NULL AND suspect = 1"
)


def now() -> str:
    """The current UTC time as ISO 8601 text, the format of every time in the store."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Connection(sqlite3.Connection):
    """A connection that remembers how long it waits for the write lock (``busy_wait``)."""

    busy_wait = BUSY_TIMEOUT_S


_INTEGER = re.compile(r"[+-]?[0-9]+(\.0*)?")
_INT64 = (-(2**63), 2**63 - 1)


def normalize_id(value, kind: str) -> str:
    """The stored text of an id given by a user (a CSV cell, a JSON value, a request of the labeling page).

    The one rule every reader of ids follows. ``kind`` is the campaign's id
    type. String ids are taken exactly as they are (spaces included: init,
    mine and export keep them). Integer ids are read as integers: ``19632``,
    ``"19632"``, ``" 19632 "``, ``"00019632"`` and ``19632.0`` are one id;
    ``"abc"`` or ``1915.5`` are not ids of such a campaign. Raises
    :class:`InputError` saying what was wrong.
    """
    if value is None or (isinstance(value, str) and value.strip() == "" and (kind == "int" or value == "")):
        raise InputError("missing id")
    if isinstance(value, bool) or not isinstance(value, (str, int, float, np.integer, np.floating)):
        raise InputError(f"id {value!r} is a {type(value).__name__}; expected an integer or a string")
    if kind != "int":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, np.integer)):
            return str(int(value))
        raise InputError(f"id {value!r} is a decimal number; this campaign's ids are strings")
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value) or not float(value).is_integer():
            raise InputError(f"id {value!r} is not a whole number; this campaign's ids are integers")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INTEGER.fullmatch(text):
            raise InputError(f"id {value!r} is not an integer; this campaign's ids are integers")
        number = int(text.split(".")[0])
    else:
        number = int(value)
    if not _INT64[0] <= number <= _INT64[1]:
        raise InputError(f"id {value!r} does not fit in a 64-bit integer, as this campaign's ids do")
    return str(number)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def sorted_ids(values) -> np.ndarray:
    """Stored ids (text) as a sorted, unique numpy string array ``(n,)``; the form exclusions take."""
    arr = np.asarray(values, dtype=str) if len(values) else np.empty(0, dtype="<U1")
    if arr.size < 2 or (arr[1:] > arr[:-1]).all():  # SQLite sorted them (UTF-8 bytes sort as code points)
        return arr
    return np.unique(arr)


class CampaignStore:
    """Access to one campaign folder's database. Cheap to create; opens a connection per call.

    Use :meth:`create` for a new folder and the constructor for an existing one.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        if not self.db_path.is_file() and (self.folder / INIT_MARKER).exists():
            raise CampaignError(
                f"{str(self.folder)!r} is not a campaign folder yet: its `campaign init` was interrupted before "
                "it finished; run the same `activemine campaign init` again (it starts over)"
            )
        if not self.db_path.is_file():
            raise CampaignError(
                f"{str(self.folder)!r} is not a campaign folder: {DB_NAME} not found; run `activemine campaign init` first"
            )
        self._meta = None
        version = self.meta.get("schema_version")
        if version != SCHEMA_VERSION:
            raise CampaignError(
                f"{str(self.folder)!r} was made by another activemine version (store schema {version}, "
                f"this version reads {SCHEMA_VERSION}); create a new campaign with `campaign init`"
            )

    # -- connections ---------------------------------------------------------------
    def connect(self, *, synchronous: str = "FULL", busy_timeout: float | None = None) -> sqlite3.Connection:
        """A new connection in autocommit mode; writes go through :meth:`transaction`.

        ``synchronous="NORMAL"`` skips the fsync at each commit: still safe
        against a killed process, but a power cut may lose the last commits.
        ``busy_timeout``: seconds a write waits for another process's write
        (default :data:`BUSY_TIMEOUT_S`); then :class:`StoreBusyError`.
        """
        wait = BUSY_TIMEOUT_S if busy_timeout is None else float(busy_timeout)
        conn = sqlite3.connect(
            self.db_path, timeout=wait, isolation_level=None, check_same_thread=False, factory=_Connection
        )
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        conn.busy_wait = wait  # for the message of StoreBusyError
        return conn

    def busy(self, conn: sqlite3.Connection | None = None) -> StoreBusyError:
        """The error of a write that waited in vain for another process's write lock."""
        wait = getattr(conn, "busy_wait", BUSY_TIMEOUT_S)
        return StoreBusyError(
            f"the campaign store {str(self.folder)!r} is busy: another process (a `campaign mine`, an import or the "
            f"labeling page) kept it locked for writing for more than {wait:g} s; nothing was changed, "
            "try again when it has finished"
        )

    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls everything back.

        IMMEDIATE takes the write lock up front, so two writers queue instead of
        failing half-way with "database is locked", and what the transaction
        reads cannot change before it commits.
        """
        own = conn is None
        conn = self.connect() if own else conn
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise (self.busy(conn) if _is_busy(exc) else exc) from exc
            try:
                yield conn
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                    raise self.busy(conn) from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise (self.busy(conn) if _is_busy(exc) else exc) from exc
        finally:
            if own:
                conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query on the connection sees the store as of its first read (WAL).

        It never takes the write lock, so it does not wait behind a writer; what
        it creates (``TEMP`` tables) lives outside the database file.
        """
        conn = self.connect()
        try:
            conn.execute("BEGIN DEFERRED")
            try:
                yield conn
            except sqlite3.OperationalError as exc:
                raise (self.busy(conn) if _is_busy(exc) else exc) from exc
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        finally:
            conn.close()

    @contextmanager
    def mine_lock(self) -> Iterator[None]:
        """Hold the campaign's mining lock: concurrent ``campaign mine`` runs take turns.

        An advisory ``flock`` on ``DIR/.mine.lock``, released by the system when
        the process ends (even by SIGKILL). Correctness does not rest on it: a
        round re-checks its batch against the store inside its write transaction.
        """
        try:
            import fcntl
        except ImportError:  # not on POSIX: rounds still re-check their batch when they write it
            yield
            return
        fd = os.open(self.folder / ".mine.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def read(self, sql: str, params=(), *, conn: sqlite3.Connection | None = None) -> list[tuple]:
        """Rows of one read-only query, on ``conn`` or a connection of its own."""
        if conn is not None:
            return conn.execute(sql, params).fetchall()
        conn = self.connect()
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    # -- creation and metadata -----------------------------------------------------
    @classmethod
    def create(
        cls, folder, *, meta: dict, samples: list[tuple[str, str, int]], initial_labels: list[tuple[str, str]]
    ) -> CampaignStore:
        """Create ``folder/campaign.db`` with ``meta``, L's samples ``(sid, "labeled", row)`` and labels ``(sid, label)``.

        The database is built under a temporary name and renamed into place, so
        a crash during init leaves no half-made campaign.
        """
        folder = Path(folder)
        db_path = folder / DB_NAME
        if db_path.exists():
            raise CampaignError(f"{str(folder)!r} already holds a campaign ({DB_NAME}); choose another folder")
        tmp = folder / f".{DB_NAME}.init"
        tmp.unlink(missing_ok=True)
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            rows = dict(meta, schema_version=SCHEMA_VERSION, created_at=now())
            conn.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()])
            conn.executemany("INSERT INTO samples VALUES (?, ?, ?)", samples)
            created = now()
            conn.executemany(
                "INSERT INTO labels (sid, label, annotator, created_at, source) VALUES (?, ?, 'initial', ?, 'initial')",
                [(sid, label, created) for sid, label in initial_labels],
            )
            conn.execute("COMMIT")
            conn.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()
        tmp.replace(db_path)
        return cls(folder)

    @property
    def meta(self) -> dict:
        """The campaign's settings (id and label columns, classes, pool files and columns, view)."""
        if self._meta is None:
            self._meta = {k: json.loads(v) for k, v in self.read("SELECT key, value FROM meta")}
        return self._meta

    @property
    def classes(self) -> list:
        """Class labels in their original type, in the campaign's fixed order."""
        return list(self.meta["classes"])

    @property
    def class_names(self) -> list[str]:
        """Class labels as the text stored in ``labels.label``."""
        return [str(c) for c in self.classes]

    def typed_label(self, text: str):
        """A stored label back in the type of the campaign's classes."""
        return dict(zip(self.class_names, self.classes))[text]

    def typed_labels(self, texts) -> np.ndarray:
        """Stored labels ``(n,)`` back in the type of the campaign's classes."""
        index = {c: i for i, c in enumerate(self.class_names)}
        classes = np.asarray(self.classes)
        return classes[np.fromiter((index[t] for t in texts), dtype=np.int64, count=len(texts))]

    def normalize_id(self, value) -> str:
        """:func:`normalize_id` for this campaign's id type: the stored text of an id a user gave."""
        return normalize_id(value, self.meta["id_kind"])

    def typed_ids(self, sids):
        """Stored ids back in the type of the campaign's ids."""
        return [int(s) for s in sids] if self.meta["id_kind"] == "int" else list(sids)

    def typed_id_array(self, sids) -> np.ndarray:
        """Stored ids ``(n,)`` as an int64 or string array, the campaign's id type."""
        arr = np.asarray(sids, dtype=str) if len(sids) else np.empty(0, dtype="<U1")
        return arr.astype(np.int64) if self.meta["id_kind"] == "int" else arr

    def data_path(self, origin: str) -> Path:
        """The Parquet file of the labeled set (``"labeled"``), inside the campaign folder."""
        return self.folder / "data" / f"{origin}.parquet"

    def pool_files(self) -> list[Path]:
        """The pool's Parquet files, in row order (paths relative to the campaign folder are resolved)."""
        return [self.folder / f if not Path(f).is_absolute() else Path(f) for f in self.meta["pool_files"]]

    def own_files(self) -> dict[Path, str]:
        """Every file an output must never replace -> what it is: the store and its side files, the data
        folder, and the pool's files wherever they are (a ``--no-copy`` pool's files are the user's own)."""
        from activemine.data.outputs import campaign_files

        out = campaign_files(self.folder)
        out.update({f: "a file of the campaign's pool" for f in self.pool_files()})
        out[self.data_path("labeled")] = "the campaign's labeled set L"
        return out

    # -- state queries -------------------------------------------------------------
    def last_round(self, *, conn: sqlite3.Connection | None = None) -> int | None:
        (r,) = self.read("SELECT MAX(round) FROM rounds", conn=conn)[0]
        return r

    def round_exists(self, round_no: int, *, conn: sqlite3.Connection | None = None) -> bool:
        return bool(self.read("SELECT 1 FROM rounds WHERE round = ?", (int(round_no),), conn=conn))

    def require_round(self, round_no: int, *, conn: sqlite3.Connection | None = None) -> int:
        """``round_no`` if the campaign has that round; else a :class:`CampaignError` naming the rounds there are."""
        if self.round_exists(round_no, conn=conn):
            return int(round_no)
        last = self.last_round(conn=conn)
        raise CampaignError(
            f"round {round_no} does not exist; the campaign has rounds 1..{last}"
            if last
            else f"round {round_no} does not exist; the campaign has no round yet (run `campaign mine`)"
        )

    def is_known(self, sid: str, *, conn: sqlite3.Connection | None = None) -> bool:
        """Whether ``sid`` is a sample of L or a pool sample some round selected."""
        return bool(
            self.read(
                "SELECT 1 FROM samples WHERE sid = ? UNION ALL "
                f"SELECT 1 FROM batches b WHERE {ANY_ROUND.format('b')} AND b.sid = ? LIMIT 1",
                (sid, sid),
                conn=conn,
            )
        )

    def labeled_sids(self, *, conn: sqlite3.Connection | None = None) -> set[str]:
        """Ids with at least one active label (initial ones included)."""
        return {r[0] for r in self.read("SELECT DISTINCT sid FROM labels WHERE retracted_at IS NULL", conn=conn)}

    def queued_sids(self, *, conn: sqlite3.Connection | None = None) -> set[str]:
        """Ids in some round's batch that have no active label yet."""
        return {r[0] for r in self.read(QUEUED_SQL, conn=conn)}

    def excluded_ids(self, *, conn: sqlite3.Connection | None = None) -> np.ndarray:
        """Sorted string array of every id a new round may not select: labeled, queued or flagged.

        Queued ids are in a batch, flagged ids have labels, so this is every
        batch id and every id with an active label.
        """
        rows = self.read(
            "SELECT sid FROM batches UNION SELECT sid FROM labels WHERE retracted_at IS NULL ORDER BY sid", conn=conn
        )
        return sorted_ids([r[0] for r in rows])

    def flagged(self, *, conn: sqlite3.Connection | None = None) -> dict[str, list[str]]:
        """Flagged ids -> reasons (``conflict``: two different active labels; ``suspect``: doubted by the dirty-data check)."""
        out: dict[str, list[str]] = {}
        for sid, why in self.read(FLAGGED_SQL, conn=conn):
            out.setdefault(sid, []).append(why)
        return out

    def current_labels(self, *, conn: sqlite3.Connection | None = None) -> dict[str, str]:
        """Each labeled, unflagged id -> its one active label."""
        suspect = {s for (s,) in self.read(_SUSPECT_SIDS_SQL, conn=conn)}
        rows = self.read(f"{_AGREED_SQL} ORDER BY sid", conn=conn)
        return dict(rows) if not suspect else {sid: label for sid, label in rows if sid not in suspect}

    def current_label_counts(self, *, conn: sqlite3.Connection | None = None) -> dict[str, int]:
        """How many labeled, unflagged ids have each label (:meth:`current_labels` counted in SQL)."""
        rows = self.read(
            f"SELECT label, COUNT(*) FROM ({_AGREED_SQL}) WHERE sid NOT IN ({_SUSPECT_SIDS_SQL}) GROUP BY label",
            conn=conn,
        )
        return dict(rows)

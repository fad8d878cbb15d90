"""The campaign store: one SQLite database (WAL mode) next to the campaign's Parquet data.

Layout of a campaign folder::

    DIR/campaign.db        samples, rounds, batches, assignments (leases), labels, imports
    DIR/data/pool.parquet  the unlabeled pool U, copied at init (features never go into SQLite)
    DIR/data/labeled.parquet  the initial labeled set L

Ids and labels are stored as text (``sid``, ``label``) so that ids from CSV,
JSON and Parquet compare equal; ``meta`` remembers whether they were integers
so :meth:`CampaignStore.typed_ids` and the dataset give them back as such.

Every change happens in one ``BEGIN IMMEDIATE`` transaction
(:meth:`CampaignStore.transaction`): a killed process leaves the store as it
was before the change. A label is never deleted: undo sets ``retracted_at``.
An id with two different active labels, or whose label the dirty-data check
doubts (``suspect``), is *flagged* and left out of the dataset until resolved.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from activemine.errors import CampaignError

__all__ = ["CampaignStore", "DB_NAME", "now"]

DB_NAME = "campaign.db"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
CREATE TABLE batches (
    round INTEGER NOT NULL REFERENCES rounds(round),
    sid TEXT NOT NULL REFERENCES samples(sid),
    rank INTEGER NOT NULL,
    score REAL NOT NULL,
    stratum TEXT NOT NULL,
    predicted TEXT NOT NULL,
    proba TEXT NOT NULL,
    PRIMARY KEY (round, sid)
);
CREATE INDEX batches_sid ON batches(sid);
CREATE INDEX batches_rank ON batches(round, rank);
CREATE TABLE assignments (
    sid TEXT PRIMARY KEY REFERENCES samples(sid),
    annotator TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE skips (
    sid TEXT NOT NULL REFERENCES samples(sid),
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
    sid TEXT NOT NULL REFERENCES samples(sid),
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
"""


def now() -> str:
    """The current UTC time as ISO 8601 text, the format of every time in the store."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class CampaignStore:
    """Access to one campaign folder's database. Cheap to create; opens a connection per call.

    Use :meth:`create` for a new folder and the constructor for an existing one.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.db_path = self.folder / DB_NAME
        if not self.db_path.is_file():
            raise CampaignError(f"{str(self.folder)!r} is not a campaign folder: {DB_NAME} not found; run `activemine campaign init` first")
        self._meta = None

    # -- connections ---------------------------------------------------------------
    def connect(self, *, synchronous: str = "FULL") -> sqlite3.Connection:
        """A new connection in autocommit mode; writes go through :meth:`transaction`.

        ``synchronous="NORMAL"`` skips the fsync at each commit: still safe
        against a killed process, but a power cut may lose the last commits.
        """
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute(f"PRAGMA synchronous = {'NORMAL' if synchronous == 'NORMAL' else 'FULL'}")
        return conn

    @contextmanager
    def transaction(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; any exception rolls everything back.

        IMMEDIATE takes the write lock up front, so two writers queue instead of
        failing half-way with "database is locked".
        """
        own = conn is None
        conn = self.connect() if own else conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if own:
                conn.close()

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
    def create(cls, folder, *, meta: dict, samples: list[tuple[str, str, int]],
               initial_labels: list[tuple[str, str]]) -> "CampaignStore":  # fmt: skip
        """Create ``folder/campaign.db`` with ``meta``, the samples ``(sid, origin, row)`` and L's labels ``(sid, label)``.

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
        """The campaign's settings (id and label columns, classes, features, view)."""
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

    def typed_ids(self, sids):
        """Stored ids back in the type of the campaign's ids."""
        return [int(s) for s in sids] if self.meta["id_kind"] == "int" else list(sids)

    def data_path(self, origin: str) -> Path:
        """The Parquet file of ``origin`` (``"pool"`` or ``"labeled"``), inside the campaign folder."""
        return self.folder / "data" / f"{origin}.parquet"

    # -- state queries -------------------------------------------------------------
    def last_round(self, *, conn: sqlite3.Connection | None = None) -> int | None:
        (r,) = self.read("SELECT MAX(round) FROM rounds", conn=conn)[0]
        return r

    def labeled_sids(self) -> set[str]:
        """Ids with at least one active label (initial ones included)."""
        return {r[0] for r in self.read("SELECT DISTINCT sid FROM labels WHERE retracted_at IS NULL")}

    def queued_sids(self) -> set[str]:
        """Ids in some round's batch that have no active label yet."""
        return {r[0] for r in self.read(
            "SELECT DISTINCT b.sid FROM batches b WHERE NOT EXISTS "
            "(SELECT 1 FROM labels l WHERE l.sid = b.sid AND l.retracted_at IS NULL)"
        )}  # fmt: skip

    def flagged(self) -> dict[str, list[str]]:
        """Flagged ids -> reasons (``conflict``: two different active labels; ``suspect``: doubted by the dirty-data check)."""
        out: dict[str, list[str]] = {}
        for (sid,) in self.read(
            "SELECT sid FROM labels WHERE retracted_at IS NULL GROUP BY sid HAVING COUNT(DISTINCT label) > 1"
        ):
            out.setdefault(sid, []).append("conflict")
        for (sid,) in self.read("SELECT DISTINCT sid FROM labels WHERE retracted_at IS NULL AND suspect = 1"):
            out.setdefault(sid, []).append("suspect")
        return out

    def current_labels(self) -> dict[str, str]:
        """Each labeled, unflagged id -> its one active label."""
        flagged = self.flagged()
        rows = self.read("SELECT sid, MIN(label) FROM labels WHERE retracted_at IS NULL GROUP BY sid")
        return {sid: label for sid, label in rows if sid not in flagged}

    def batch_proba(self, sids, *, conn: sqlite3.Connection | None = None) -> dict[str, list[float]]:
        """The model's class probabilities stored with the newest batch row of each id that has one."""
        out: dict[str, list[float]] = {}
        sids = list(sids)
        for start in range(0, len(sids), 900):  # SQLite caps bound parameters per statement
            part = sids[start : start + 900]
            marks = ",".join("?" * len(part))
            for sid, proba in self.read(f"SELECT sid, proba FROM batches WHERE sid IN ({marks}) ORDER BY round", part, conn=conn):
                out[sid] = json.loads(proba)
        return out

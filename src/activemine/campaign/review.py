"""The review queue behind the labeling page's review mode: flagged samples, one reviewer's label each.

A sample is *flagged* when its label is doubted (``suspect``) or two active
labels disagree (``conflict``; :data:`activemine.campaign.store.FLAGGED_SQL`).
A reviewer's label settles it, as ``campaign import --review`` does: the
sample's earlier labels are retracted and the reviewer's is kept, unchecked,
which clears its flags. :class:`ReviewQueue` has the interface of
:class:`~activemine.campaign.leases.LabelingQueue` (next, submit, skip, undo,
remaining), and shares its leases and skips: two reviewers never hold the same
sample, and a reviewer's skip is remembered. Undo of a review retracts the
reviewer's label and brings back the labels it replaced.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from activemine.campaign.leases import LabelingQueue
from activemine.campaign.store import ANY_ROUND, FLAGGED_SQL, CampaignStore, now
from activemine.errors import InputError, LeaseError

__all__ = ["REVIEW_SOURCE", "ReviewQueue"]

#: ``labels.source`` of a label given on the page's review queue.
REVIEW_SOURCE = "web-review"
# flagged ids that some round selected (the page shows a sample from its pool row), each once
_FLAGGED_IN_BATCH = (
    f"SELECT DISTINCT f.sid FROM ({FLAGGED_SQL}) f WHERE EXISTS "
    f"(SELECT 1 FROM batches b WHERE {ANY_ROUND.format('b')} AND b.sid = f.sid)"
)


class ReviewQueue(LabelingQueue):
    """Hands out flagged samples, in id order, one reviewer at a time; a label replaces the sample's labels."""

    def __init__(
        self, store: CampaignStore, *, lease_seconds: float = 300.0, clock: Callable[[], float] = time.time, **kwargs
    ):
        super().__init__(store, lease_seconds=lease_seconds, clock=clock, **kwargs)

    def remaining(self) -> int:
        """Flagged samples still to review."""
        (n,) = self.store.read(f"SELECT COUNT(*) FROM ({_FLAGGED_IN_BATCH})", conn=self._conn())[0]
        return n

    def next(self, annotator: str) -> str | None:
        """Lease the next flagged sample to ``annotator`` (or renew the one they hold); None when none is left."""
        annotator = self._check_annotator(annotator)
        t = self.clock()
        with self.store.transaction(self._conn()) as conn:
            conn.execute("DELETE FROM assignments WHERE expires_at <= ?", (t,))
            held = conn.execute(
                f"SELECT f.sid FROM ({_FLAGGED_IN_BATCH}) f JOIN assignments a ON a.sid = f.sid "
                "WHERE a.annotator = ? ORDER BY f.sid LIMIT 1",
                (annotator,),
            ).fetchone()
            if held is None:
                held = conn.execute(
                    f"SELECT f.sid FROM ({_FLAGGED_IN_BATCH}) f "
                    "WHERE NOT EXISTS (SELECT 1 FROM assignments a WHERE a.sid = f.sid) "
                    "AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.sid = f.sid AND s.annotator = ?) "
                    "ORDER BY f.sid LIMIT 1",
                    (annotator,),
                ).fetchone()
            if held is None:
                return None
            return self._lease(conn, held[0], annotator, t)

    def submit(self, annotator: str, sid: str, label: str) -> None:
        """``annotator``'s review of ``sid``: earlier labels retracted, ``label`` kept unchecked, the lease released.

        Raises :class:`LeaseError` when another reviewer holds a live lease on
        the sample or it is no longer flagged (a retry of the same label is a no-op).
        """
        annotator, sid, label = self._check_submission(annotator, sid, label)
        t = self.clock()
        with self.store.transaction(self._conn()) as conn:
            if not self.store.is_known(sid, conn=conn):
                raise InputError(f"unknown id {sid!r}")
            lease = conn.execute("SELECT annotator, expires_at FROM assignments WHERE sid = ?", (sid,)).fetchone()
            if lease is not None and lease[0] != annotator and lease[1] > t:
                raise LeaseError(f"sample {sid!r} is being reviewed by {lease[0]!r}")
            if conn.execute(f"SELECT 1 FROM ({FLAGGED_SQL}) f WHERE f.sid = ?", (sid,)).fetchone() is None:
                done = conn.execute(
                    "SELECT 1 FROM labels WHERE sid = ? AND label = ? AND annotator = ? AND source = ? "
                    "AND retracted_at IS NULL",
                    (sid, label, annotator, REVIEW_SOURCE),
                ).fetchone()
                if done:
                    return
                raise LeaseError(f"sample {sid!r} is no longer flagged; someone reviewed it")
            stamp = now()
            conn.execute("UPDATE labels SET retracted_at = ? WHERE sid = ? AND retracted_at IS NULL", (stamp, sid))
            conn.execute(
                "INSERT INTO labels (sid, label, annotator, created_at, source, suspect) VALUES (?, ?, ?, ?, ?, 0)",
                (sid, label, annotator, stamp, REVIEW_SOURCE),
            )
            conn.execute("DELETE FROM assignments WHERE sid = ?", (sid,))

    def undo(self, annotator: str) -> str | None:
        """Retract ``annotator``'s last review, bring back the labels it replaced, lease the sample back; None if none."""
        annotator = self._check_annotator(annotator)
        with self.store.transaction(self._conn()) as conn:
            last = conn.execute(
                "SELECT label_id, sid, created_at FROM labels WHERE annotator = ? AND source = ? "
                "AND retracted_at IS NULL ORDER BY label_id DESC LIMIT 1",
                (annotator, REVIEW_SOURCE),
            ).fetchone()
            if last is None:
                return None
            label_id, sid, stamp = last
            conn.execute("UPDATE labels SET retracted_at = ? WHERE label_id = ?", (now(), label_id))
            # the labels this review replaced were retracted in its transaction, with its time stamp
            conn.execute(
                "UPDATE labels SET retracted_at = NULL WHERE sid = ? AND retracted_at = ? AND label_id < ?",
                (sid, stamp, label_id),
            )
            conn.execute("DELETE FROM assignments WHERE annotator = ?", (annotator,))
            return self._lease(conn, sid, annotator, self.clock())

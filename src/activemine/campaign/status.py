"""Progress of a campaign per round, class and annotator, read in one snapshot."""

from __future__ import annotations

from activemine.campaign.overlap import OPEN_FOR, wanted_readable
from activemine.campaign.stopset import stopping_status
from activemine.campaign.store import FLAGGED_SQL, CampaignStore

__all__ = ["campaign_status"]

_ACTIVE = "SELECT DISTINCT sid FROM labels WHERE retracted_at IS NULL"


def campaign_status(store: CampaignStore) -> dict:
    """Counts for people and scripts, all from one read transaction (so they agree with each other).

    Top level: ``pool`` (pool samples), ``initial`` (L), ``labeled`` (pool
    samples with an active label), ``queued`` (samples of some round that
    still want a label: none yet, or fewer than an overlap or relabel round
    asks for; what an export of the round writes), ``flagged`` (conflicting or suspect labels). ``rounds``, ``classes`` and
    ``annotators`` break these down. Counting happens in SQLite, so the cost
    grows with what was mined and labeled, never with the pool.
    """
    from activemine.campaign.pool import CampaignPool

    pool_rows = CampaignPool(store).num_rows
    with store.snapshot() as conn:
        # keyed temp tables, so every join below is an index lookup whatever plan SQLite picks
        conn.execute("CREATE TEMP TABLE st_active (sid TEXT PRIMARY KEY)")
        conn.execute(f"INSERT INTO st_active {_ACTIVE}")
        conn.execute("CREATE TEMP TABLE st_flagged (sid TEXT PRIMARY KEY, why TEXT)")
        conn.execute(f"INSERT INTO st_flagged SELECT sid, GROUP_CONCAT(why) FROM ({FLAGGED_SQL}) GROUP BY sid")
        wanted_readable(conn)
        try:
            return _status(conn, store, pool_rows)
        finally:
            conn.execute("DROP TABLE IF EXISTS temp.st_active")
            conn.execute("DROP TABLE IF EXISTS temp.st_flagged")


def _status(conn, store: CampaignStore, pool_rows: int) -> dict:
    one = lambda sql, params=(): conn.execute(sql, params).fetchone()[0]  # noqa: E731
    initial = one("SELECT COUNT(*) FROM samples WHERE origin = 'labeled'")
    labeled_l = one("SELECT COUNT(*) FROM st_active a JOIN samples s ON s.sid = a.sid AND s.origin = 'labeled'")
    labeled = one("SELECT COUNT(*) FROM st_active") - labeled_l
    # a batch row is queued while it wants a label (overlap and relabel rounds want more than one): the same
    # test as exports and the labeling page (OPEN_FOR); a row with no active label at all is open, uncounted
    is_open = f"CASE WHEN a.sid IS NULL THEN 1 WHEN {OPEN_FOR.format('b')} THEN 1 ELSE 0 END"
    queued = one(
        f"SELECT COUNT(DISTINCT b.sid) FROM batches b LEFT JOIN st_active a ON a.sid = b.sid WHERE {is_open} = 1"
    )
    rounds = []
    for r, created, strategy, size, n_queued, n_flagged in conn.execute(
        f"SELECT r.round, r.created_at, r.strategy, COUNT(b.sid), COALESCE(SUM({is_open}), 0), COUNT(f.sid) "
        "FROM rounds r LEFT JOIN batches b ON b.round = r.round "
        "LEFT JOIN st_active a ON a.sid = b.sid LEFT JOIN st_flagged f ON f.sid = b.sid GROUP BY r.round ORDER BY r.round"
    ).fetchall():
        rounds.append(
            {
                "round": r,
                "created_at": created,
                "strategy": strategy,
                "size": size,
                "labeled": size - n_queued,
                "queued": n_queued,
                "flagged": n_flagged,
            }
        )
    classes = {c: {"initial": 0, "new": 0} for c in store.class_names}
    for label, is_initial, n in conn.execute(
        "SELECT l.label, s.sid IS NOT NULL, COUNT(*) FROM (SELECT sid, MIN(label) AS label FROM labels "
        "WHERE retracted_at IS NULL GROUP BY sid) l LEFT JOIN samples s ON s.sid = l.sid AND s.origin = 'labeled' "
        "WHERE l.sid NOT IN (SELECT sid FROM st_flagged) GROUP BY l.label, s.sid IS NOT NULL"
    ):
        classes.setdefault(label, {"initial": 0, "new": 0})["initial" if is_initial else "new"] += n
    annotators = {}
    for who, n, ids, n_flagged in conn.execute(
        "SELECT l.annotator, COUNT(*), COUNT(DISTINCT l.sid), COUNT(DISTINCT f.sid) FROM labels l "
        "LEFT JOIN st_flagged f ON f.sid = l.sid WHERE l.retracted_at IS NULL AND l.source != 'initial' "
        "GROUP BY l.annotator ORDER BY l.annotator"
    ):
        annotators[who] = {"labels": n, "samples": ids, "flagged": n_flagged}
    n_flagged = one("SELECT COUNT(*) FROM st_flagged")
    return {
        "pool": pool_rows,
        "initial": initial,
        "labeled": labeled,
        "queued": queued,
        "flagged": n_flagged,
        "flagged_conflict": one("SELECT COUNT(*) FROM st_flagged WHERE why LIKE '%conflict%'"),
        "flagged_suspect": one("SELECT COUNT(*) FROM st_flagged WHERE why LIKE '%suspect%'"),
        "rounds": rounds,
        "classes": classes,
        "annotators": annotators,
        "stopping": stopping_status(store),
    }

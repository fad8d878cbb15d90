"""Progress of a campaign per round, class and annotator."""

from __future__ import annotations

from activemine.campaign.stopset import stopping_status
from activemine.campaign.store import CampaignStore

__all__ = ["campaign_status"]


def campaign_status(store: CampaignStore) -> dict:
    """Counts for people and scripts.

    Top level: ``pool`` (pool samples), ``initial`` (L), ``labeled`` (pool
    samples with an active label), ``queued`` (in a batch, no label yet),
    ``flagged`` (conflicting or suspect labels). ``rounds``, ``classes`` and
    ``annotators`` break these down.
    """
    labeled = store.labeled_sids()
    queued = store.queued_sids()
    flagged = store.flagged()
    origin = dict(store.read("SELECT sid, origin FROM samples"))
    pool_labeled = {s for s in labeled if origin[s] == "pool"}
    rounds = []
    for r, created, strategy in store.read("SELECT round, created_at, strategy FROM rounds ORDER BY round"):
        sids = {s for (s,) in store.read("SELECT sid FROM batches WHERE round = ?", (r,))}
        rounds.append({"round": r, "created_at": created, "strategy": strategy, "size": len(sids),
                       "labeled": len(sids & labeled), "queued": len(sids & queued),
                       "flagged": len(sids & set(flagged))})  # fmt: skip
    current = store.current_labels()
    classes = {c: {"initial": 0, "new": 0} for c in store.class_names}
    for sid, label in current.items():
        classes[label]["initial" if origin[sid] == "labeled" else "new"] += 1
    annotators = {}
    for who, n, ids in store.read(
        "SELECT annotator, COUNT(*), COUNT(DISTINCT sid) FROM labels "
        "WHERE retracted_at IS NULL AND source != 'initial' GROUP BY annotator ORDER BY annotator"
    ):
        annotators[who] = {"labels": n, "samples": ids, "flagged": 0}
    for who, sid in store.read("SELECT DISTINCT annotator, sid FROM labels WHERE retracted_at IS NULL AND source != 'initial'"):
        if sid in flagged:
            annotators[who]["flagged"] += 1
    return {
        "pool": sum(1 for o in origin.values() if o == "pool"),
        "initial": sum(1 for o in origin.values() if o == "labeled"),
        "labeled": len(pool_labeled),
        "queued": len(queued),
        "flagged": len(flagged),
        "flagged_conflict": sum("conflict" in v for v in flagged.values()),
        "flagged_suspect": sum("suspect" in v for v in flagged.values()),
        "rounds": rounds,
        "classes": classes,
        "annotators": annotators,
        "stopping": stopping_status(store),
    }

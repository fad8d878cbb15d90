"""Selection: scores, the selection plan, strategies, committees, tie-breaking and batch selection.

batch.py       Batch and select_batch: top-k per quota group, hard/easy strata, seeded id keys
scores.py      acquisition scores from probabilities or votes (higher = more worth labeling)
plan.py        SelectionPlan: budget, quotas, class balance, easy share, exclusions, diversity; checked once
strategies.py  strategies (uncertainty, QBC, HW, random): fit on the labeled set, score pool chunks
committee.py   query-by-committee: a small committee of diverse models
ties.py        which ranking key decided a batch: the score, its secondary key, or the id
"""

from __future__ import annotations

from activemine import lazy_exports

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "allocate_quotas": "batch",
    "argmax_rows": "scores",
    "bald": "scores",
    "as_exclusions": "plan",
    "BALANCE_MODES": "plan",
    "Batch": "batch",
    "check_balance": "plan",
    "check_easy_share": "plan",
    "check_ids": "batch",
    "check_proba": "scores",
    "class_weights": "plan",
    "Committee": "committee",
    "decided_by": "ties",
    "DECIDING_KEYS": "ties",
    "DirtyDataStep": "strategies",
    "duplicated_values": "batch",
    "entropy": "scores",
    "HW_WEAK_TREES": "strategies",
    "HWStrategy": "strategies",
    "id_keys": "batch",
    "kl_to_consensus": "scores",
    "least_confidence": "scores",
    "make_strategy": "strategies",
    "QBCStrategy": "strategies",
    "RandomStrategy": "strategies",
    "ranked_vote_entropy": "scores",
    "RareClassWarning": "committee",
    "select_batch": "batch",
    "SelectionPlan": "plan",
    "smallest_margin": "scores",
    "split_hard_easy": "batch",
    "split_ranked_vote_entropy": "scores",
    "STRATEGIES": "strategies",
    "Strategy": "strategies",
    "strategy_decided_by": "ties",
    "stratified_bootstrap": "committee",
    "string_hash": "batch",
    "top_k_indices": "batch",
    "UncertaintyStrategy": "strategies",
    "vote_entropy": "scores",
    "vote_entropy_levels": "scores",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

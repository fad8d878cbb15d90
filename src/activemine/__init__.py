"""activemine: industrial batch active learning.

Scores (higher = more worth labeling) -> selection plan (quotas, hard/easy
strata) -> strategies (scorers) -> mining over a pool, in memory, streamed or on Ray.

The public names below are imported on first use (PEP 562), so ``import
activemine`` and ``activemine --help`` load neither numpy-heavy modules nor
scikit-learn, LightGBM, Ray or matplotlib; a user who brings probabilities
never waits for a model library.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "ActivemineError": "activemine.errors",
    "Batch": "activemine.selection",
    "BudgetError": "activemine.errors",
    "Committee": "activemine.committee",
    "DuplicateIdError": "activemine.errors",
    "EmptyPoolError": "activemine.errors",
    "HWStrategy": "activemine.strategies",
    "InputError": "activemine.errors",
    "LabeledSet": "activemine.data",
    "MissingColumnError": "activemine.errors",
    "PoolChunk": "activemine.data",
    "PoolExhaustedError": "activemine.errors",
    "ProbabilityError": "activemine.errors",
    "QBCStrategy": "activemine.strategies",
    "RandomStrategy": "activemine.strategies",
    "STRATEGIES": "activemine.strategies",
    "SelectionPlan": "activemine.plan",
    "SingleClassError": "activemine.errors",
    "Strategy": "activemine.strategies",
    "UncertaintyStrategy": "activemine.strategies",
    "UnknownLabelError": "activemine.errors",
    "allocate_quotas": "activemine.selection",
    "entropy": "activemine.scores",
    "id_keys": "activemine.selection",
    "kl_to_consensus": "activemine.scores",
    "least_confidence": "activemine.scores",
    "make_strategy": "activemine.strategies",
    "mine": "activemine.mining",
    "mine_stream": "activemine.engines",
    "run_engine": "activemine.engines",
    "select_batch": "activemine.selection",
    "smallest_margin": "activemine.scores",
    "vote_entropy": "activemine.scores",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'activemine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""activemine: industrial batch active learning.

Scores (higher = more worth labeling) -> selection plan (quotas, hard/easy
strata) -> strategies (scorers) -> mining over a pool, in memory, streamed or on Ray.

A folder per concept, each ``__init__`` handing on its public names:

selection/    scores, the selection plan, strategies, committees, tie-breaking, batch selection
data/         pool sources and chunks, the labeled set, tables, the id index, built-in datasets
dirty/        dirty labels: out-of-fold suspects, drop or soften, held-out checks
diversity/    batches without copies: near-duplicate suppression, Cluster-Margin
engines/      check -> fit -> score -> select over a pool: in memory, streamed, on Ray
budget/       stopping criteria, the label-budget forecast, the stopping report
annotators/   agreement, consensus labels, simulated annotators, relabeling
campaign/     labeling campaigns: the store, rounds, exchange with annotation tools, the labeling page
experiments/  simulated labeling rounds on a dataset, label noise on purpose, figures
cli/          the ``activemine`` command: parses, calls the library, prints

At the top: ``errors`` (the exception tree), ``progress`` (progress reports),
``models`` (model construction, class-aligned probabilities, ``n_jobs``) and
``metrics`` (ROC, AUC, TPR at a fixed FPR), which every folder shares.

The public names below are imported on first use (PEP 562), so ``import
activemine`` and ``activemine --help`` load neither numpy-heavy modules nor
scikit-learn, LightGBM, Ray or matplotlib; a user who brings probabilities
never waits for a model library.
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0"

# public name -> the module that defines it
_EXPORTS = {
    "ActivemineError": "activemine.errors",
    "Batch": "activemine.selection.batch",
    "BudgetError": "activemine.errors",
    "Committee": "activemine.selection.committee",
    "DuplicateIdError": "activemine.errors",
    "EmptyPoolError": "activemine.errors",
    "HWStrategy": "activemine.selection.strategies",
    "InputError": "activemine.errors",
    "LabeledSet": "activemine.data.chunks",
    "MissingColumnError": "activemine.errors",
    "PoolChunk": "activemine.data.chunks",
    "PoolExhaustedError": "activemine.errors",
    "ProbabilityError": "activemine.errors",
    "QBCStrategy": "activemine.selection.strategies",
    "RandomStrategy": "activemine.selection.strategies",
    "STRATEGIES": "activemine.selection.strategies",
    "SelectionPlan": "activemine.selection.plan",
    "SingleClassError": "activemine.errors",
    "Strategy": "activemine.selection.strategies",
    "UncertaintyStrategy": "activemine.selection.strategies",
    "UnknownLabelError": "activemine.errors",
    "allocate_quotas": "activemine.selection.batch",
    "bald": "activemine.selection.scores",
    "entropy": "activemine.selection.scores",
    "id_keys": "activemine.selection.batch",
    "kl_to_consensus": "activemine.selection.scores",
    "least_confidence": "activemine.selection.scores",
    "make_strategy": "activemine.selection.strategies",
    "mine": "activemine.engines.mining",
    "mine_stream": "activemine.engines",
    "run_engine": "activemine.engines",
    "select_batch": "activemine.selection.batch",
    "smallest_margin": "activemine.selection.scores",
    "vote_entropy": "activemine.selection.scores",
}

__all__ = sorted(_EXPORTS)


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package that hands on ``exports`` (public name -> module, a full
    ``activemine.`` path or a module of ``package``), each imported on first use (PEP 562)."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if module.startswith("activemine.") else f"{package}.{module}"
        value = getattr(importlib.import_module(path), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Experiments: the runner of simulated labeling rounds on a dataset, label noise on purpose, figures.

runner.py      ExperimentConfig, run_experiment, write_outputs and the results table
noise.py       label noise injected on purpose (uniform, class pairs, a noise matrix)
diversity.py   experiment glue for batches without copies (planted duplicates, figures)
plots.py       ROC curves and learning curves (matplotlib, imported inside the functions)
"""

from __future__ import annotations

import importlib

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "count_steps": "runner",
    "duplicate_figures": "diversity",
    "ExperimentConfig": "runner",
    "inject_class_noise": "noise",
    "inject_label_noise": "noise",
    "load_task": "runner",
    "NOISE_KINDS": "noise",
    "parse_noise_matrix": "noise",
    "plant_into_task": "diversity",
    "plot_curves": "plots",
    "plot_roc": "plots",
    "pool_embedding": "diversity",
    "results_markdown": "runner",
    "ROC_GRID": "runner",
    "run_experiment": "runner",
    "summarize": "runner",
    "Task": "runner",
    "write_outputs": "runner",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'activemine.experiments' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"activemine.experiments.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

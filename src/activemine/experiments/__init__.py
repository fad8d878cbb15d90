"""Experiments: simulated labeling rounds on a dataset to compare strategies, label noise on purpose, figures.

settings.py    ExperimentConfig and its check: every setting parsed once into ExperimentSettings
tasks.py       the dataset (built-in, a table or a folder of images) split and recast for the task
seeds.py       one seed's split into L, U and held-out rows, and the labels its simulated annotators give
runs.py        one-shot and multi-round runs of one strategy
evaluation.py  the final models trained on L + B, TPR at a fixed FPR and AUC
results.py     means over seeds, the Markdown table, the files written
runner.py      run_experiment: every strategy for every seed
noise.py       label noise injected on purpose (uniform, ambiguity-weighted, per class)
diversity.py   experiment glue for batches without copies (planted duplicates, figures)
plots.py       ROC curves and learning curves (matplotlib, imported inside the functions)
"""

from __future__ import annotations

from activemine import lazy_exports

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "count_steps": "runner",
    "duplicate_figures": "diversity",
    "ExperimentConfig": "settings",
    "ExperimentSettings": "settings",
    "inject_class_noise": "noise",
    "inject_label_noise": "noise",
    "load_task": "tasks",
    "MODES": "settings",
    "NOISE_KINDS": "noise",
    "parse_duplicates": "settings",
    "parse_noise_matrix": "noise",
    "plant_into_task": "diversity",
    "plot_curves": "plots",
    "plot_roc": "plots",
    "pool_embedding": "diversity",
    "PROBA_MEASURES": "settings",
    "results_markdown": "results",
    "ROC_GRID": "evaluation",
    "run_embedding": "diversity",
    "run_experiment": "runner",
    "RunSpec": "settings",
    "split_run_name": "settings",
    "SPLIT_VALUES": "tasks",
    "SUFFIXES": "settings",
    "summarize": "results",
    "Task": "tasks",
    "write_outputs": "results",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Strategy comparison experiments: one-shot and multi-round batch active learning.

One run, for one strategy and one seed:

* **one-shot** (the classic industrial experiment): train on the labeled set
  L, select ``budget`` samples from the pool U at once, label them from the
  ground truth (through the same noisy annotator as L when ``noise > 0``),
  retrain on L + B and evaluate on the test set;
* **multi-round**: ``rounds`` batches of ``budget / rounds`` each, retraining
  in between; each round adds a point to the learning curve. ``qbc`` refits
  a committee of fixed size on all labels each round; ``qbc-grow`` fits it
  once and then adds one member a round trained on the newly labeled batch
  (Active-Decorate, :meth:`activemine.selection.committee.Committee.grow`).

Two references per seed: ``initial`` (L only) and ``full`` (all of L + U
labeled). The metric is TPR at a fixed FPR (:func:`activemine.metrics.tpr_at_fpr`,
higher is better), with AUC beside it; multi-class tasks use the one-vs-rest
macro average. The test labels are never noisy.

Every run records ``decided_by``: how many of its score-ranked batch rows
were decided by the score, by a secondary key packed into it, or by the
tie-break alone (``id``: the seeded hash of the id; :func:`activemine.selection.ties.decided_by`;
summed over rounds in multi-round mode), and ``ties``, the batch's
:attr:`activemine.selection.batch.Batch.ties` (a list per round in multi-round mode),
so a score that ties on most of the pool shows.

Costs are reported per run as ``model_fits`` (models trained to select the
batch) and ``select_seconds`` (fitting, scoring and selecting). ``lc``, ``sm``
and ``entropy`` read the probabilities of one shared L-only model, which is
the same fit each of them would make alone (and the ``initial`` reference);
each of them is charged that fit and its time. ``random`` needs no model.

The final model of every run is the same model trained on L + B (rows in
index order, so the order a strategy returns its batch in does not matter,
and runs with the same batch share one fit), except that
a strategy with a pruning dirty-data step (HW by default) first drops the rows
its step flags, as it would in production (``final_dropped`` in the run;
``final_dirty`` and ``final_z``: whether that step judged L + B dirty, and its evidence).

This module runs an experiment; each of its jobs has a module of its own:
:mod:`~activemine.experiments.settings` (the settings, parsed and checked once),
:mod:`~activemine.experiments.tasks` (the dataset and task),
:mod:`~activemine.experiments.seeds` (a seed's split and simulated labels),
:mod:`~activemine.experiments.runs` (one-shot and multi-round runs),
:mod:`~activemine.experiments.evaluation` (the final models and their figures) and
:mod:`~activemine.experiments.results` (summary, Markdown, files).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from activemine.experiments.evaluation import ROC_GRID, _class_counts, _evaluate_rows, _public
from activemine.experiments.results import results_markdown, summarize, write_outputs
from activemine.experiments.runs import _multi_round, _one_shot, _plant
from activemine.experiments.seeds import (
    _check_noise_matrix,
    _clean_proba,
    _flips_per_class,
    _Seed,
    _wrong_per_observed_class,
)
from activemine.experiments.settings import ExperimentConfig, ExperimentSettings
from activemine.experiments.tasks import Task, load_task
from activemine.models import network_options, predict_proba_aligned, with_image_shape

# the public names of the experiment modules, handed on from the module that runs them
__all__ = [
    "ROC_GRID",
    "ExperimentConfig",
    "ExperimentSettings",
    "Task",
    "count_steps",
    "load_task",
    "results_markdown",
    "run_experiment",
    "summarize",
    "write_outputs",
]


def _settings(config: ExperimentConfig | ExperimentSettings) -> ExperimentSettings:
    return config if isinstance(config, ExperimentSettings) else config.check()


Progress = Callable[[str], None]


def run_experiment(config: ExperimentConfig | ExperimentSettings, *, progress: Progress | None = None) -> dict:
    """Run every strategy for every seed; returns the ``results.json`` document.

    ``config``: the configuration (checked here) or the settings its check returned.
    ``progress(description)`` is called once after each finished step
    (:func:`count_steps` tells how many there are).
    """
    settings = _settings(config)
    given = settings.config
    # the model built once and checked before any data is read (a factory that does not import, no GPU, ...)
    model = network_options(given.model, **given.network)
    config = given
    step = progress or (lambda _description: None)
    task = load_task(
        config.dataset,
        config.task,
        label_col=config.label_col,
        test_fraction=config.test_fraction,
        split_col=config.split_col,
        feature_cols=config.feature_cols,
        feature_prefix=config.feature_prefix,
        images=dict(
            image_size=config.image_size,
            image_mode=config.image_mode,
            skip_bad=config.skip_bad_images,
            n_jobs=config.n_jobs,
        ),
        embedding_cols=config.embedding_cols,
        embedding_prefix=config.embedding_prefix,
    )
    settings.noise_rates(task.class_names)  # the noise matrix's class names are known now; before any fit
    _check_noise_matrix(task, settings)
    # a network learns the image shape the dataset's images have (not only the row length)
    settings = replace(settings, config=replace(given, model=with_image_shape(model, task.image_shape)))
    config = settings.config
    if settings.duplicates or config.near_duplicates or config.diversity or any("+" in s for s in config.strategies):
        # more clusters than pool rows fails here, before any model is fitted
        pool_rows = (task.y_train.size - config.labeled_size if config.pool_size is None else config.pool_size) + (
            settings.duplicates[0] * settings.duplicates[1] if settings.duplicates else 0
        )
        for run in settings.runs:
            if run.diversity is not None:
                run.diversity.check_pool_rows(pool_rows)
    clean_proba = None
    if settings.noisy and config.noise_kind.startswith("ambiguous"):
        clean_proba = _clean_proba(task, model=config.model, n_jobs=config.n_jobs)
        step("clean model for ambiguous noise")
    runs, initial, full, flips = [], [], [], []
    full_seeds = list(config.seeds)[: config.full_seeds if config.full_seeds is not None else len(config.seeds)]
    for seed in config.seeds:
        split = _Seed(task, settings, seed, clean_proba)
        if settings.noisy:
            flips.append(
                {
                    "seed": seed,
                    "train": _flips_per_class(task, split.y_obs, np.arange(task.y_train.size)),
                    "labeled": _flips_per_class(task, split.y_obs, split.L),
                    "pool": _flips_per_class(task, split.y_obs, split.U),
                    "observed": {
                        part: _wrong_per_observed_class(task, split.y_obs, rows)
                        for part, rows in (("train", np.arange(task.y_train.size)), ("labeled", split.L))
                    },
                }
            )
        fits: dict = {}
        first = _evaluate_rows(task, split.y_obs, split.L, config=config, seed=seed, cache=fits)
        seed_task = _plant(task, settings, seed, split, first["_model"]) if settings.duplicates else task
        start = time.perf_counter()
        pool_proba = predict_proba_aligned(
            first["_model"], seed_task.X_train[split.U], np.arange(len(task.class_names))
        )
        shared = {
            "initial": first,
            "pool_proba": pool_proba,
            "fits": fits,
            "seconds": first["fit_seconds"] + time.perf_counter() - start,
        }
        initial.append(
            {
                "seed": seed,
                **_public(first),
                "labeled_class_counts": _class_counts(task, task.y_train[split.L]),
                **({"annotators": split.annotators} if split.annotators else {}),
            }
        )
        step(f"seed {seed}: initial TPR {100 * first['tpr_at_fpr']:.2f}%")
        for spec in settings.runs:
            run = (_one_shot if config.mode == "one-shot" else _multi_round)(
                spec, seed_task, settings, seed, split, shared
            )
            runs.append({"strategy": spec.name, "seed": seed, **_public(run)})
            step(f"seed {seed}: {spec.name} TPR {100 * run['tpr_at_fpr']:.2f}% in {run['select_seconds']:.0f} s")
        if seed in full_seeds:
            f = _evaluate_rows(
                seed_task, split.y_obs, np.concatenate([split.L, split.U]), config=config, seed=seed, cache=fits
            )
            full.append({"seed": seed, **_public(f)})
            step(f"seed {seed}: full")
    return {
        "config": given.to_dict(),
        "classes": list(task.class_names),
        "sizes": {"train": int(task.y_train.size), "test": int(task.y_test.size)},
        "roc_grid": ROC_GRID.tolist(),
        "runs": runs,
        "reference": {"initial": initial, "full": full},
        "noise_flips": flips,
        "summary": summarize(runs, {"initial": initial, "full": full}),
    }


def count_steps(config: ExperimentConfig | ExperimentSettings) -> int:
    """How many times :func:`run_experiment` calls ``progress``."""
    settings = _settings(config)
    config = settings.config
    n_full = len(config.seeds) if config.full_seeds is None else min(config.full_seeds, len(config.seeds))
    noise = int(settings.noisy and config.noise_kind.startswith("ambiguous"))
    return noise + len(config.seeds) * (1 + len(config.strategies)) + n_full

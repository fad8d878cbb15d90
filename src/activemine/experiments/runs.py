"""The runs of an experiment: one strategy, one seed, selecting once (one-shot) or round by round.

* **one-shot**: train on L, select ``budget`` samples from U at once, label them
  (through the same simulated annotator as L), retrain on L + B and evaluate;
* **multi-round**: ``rounds`` batches of ``budget / rounds`` each, retraining in
  between; each round adds a point to the learning curve and to the stopping
  report. ``qbc`` refits a committee of fixed size on all labels each round;
  ``qbc-grow`` fits it once and then adds one member a round trained on the newly
  labeled batch (Active-Decorate, :meth:`activemine.selection.committee.Committee.grow`).

Every run records ``decided_by`` (:func:`activemine.selection.ties.decided_by`),
its cost in ``model_fits`` and ``select_seconds``, and, for a strategy with a
pruning dirty-data step, what that step did to L + B before the final fit.
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from activemine.data.chunks import LabeledSet, PoolChunk
from activemine.engines.mining import score_pool
from activemine.experiments.evaluation import _class_counts, _evaluate_rows, _refit_rows
from activemine.experiments.seeds import _Seed
from activemine.experiments.settings import ExperimentConfig, ExperimentSettings, RunSpec
from activemine.models import predict_proba_aligned
from activemine.selection.plan import SelectionPlan
from activemine.selection.strategies import make_strategy
from activemine.selection.ties import strategy_decided_by

__all__: list[str] = []


def _build(run: RunSpec, config: ExperimentConfig, seed: int, classes: np.ndarray):
    # run.kwargs: the experiment's committee and dirty-data options, then the variant's own
    return make_strategy(
        run.strategy, model=config.model, random_state=seed, classes=classes, n_jobs=config.n_jobs, **run.kwargs
    )


def _select(
    strategy,
    X,
    ids,
    labeled: LabeledSet,
    budget: int,
    exclude=None,
    proba=None,
    diversity=None,
    embedding=None,
    fitted: dict | None = None,
    model=None,
):
    """Fit (unless ``proba`` of a shared model is given), score and select; returns (batch, fits, decided_by).

    ``diversity`` options keep copies out of the batch, with ``embedding`` ``(n, e)`` of the
    pool rows (or the network's, :func:`activemine.experiments.diversity.pool_embedding`: then
    ``X`` are the pool rows and ``model`` the network of a run that selects from ``proba``). ``fitted``: a dict in which a strategy fitted on features leaves its state and
    scores, so runs that differ from it only in the selection (``hw`` and ``hw+near-duplicates``)
    share its fit; each is charged the fits all the same.
    """
    plan = SelectionPlan.build(strategy, budget=budget, exclude=exclude, diversity=diversity)  # checked before any fit
    if fitted is not None and "state" in fitted:
        strategy.__dict__.update(fitted["state"])
        scores, predicted = fitted["scores"]
    else:
        if proba is not None:
            strategy.fit(LabeledSet(None, labeled.y, labeled.ids), n_proba_columns=proba.shape[1])
            pool = PoolChunk(ids, proba=proba)
        else:
            strategy.fit(labeled)
            pool = PoolChunk(ids, X=X)
        scores, predicted = score_pool(strategy, pool)
        if fitted is not None:
            fitted.update(scores=(scores, predicted), state=dict(strategy.__dict__))
    batch = _select_with(plan, strategy, labeled, ids, scores, predicted, embedding, model=model, X=X)
    return batch, strategy.n_fits_, strategy_decided_by(strategy, batch, ids, scores, predicted, exclude=exclude)


def _select_with(plan, strategy, labeled, ids, scores, predicted, embedding, *, model, X):
    """The plan's batch; a network's embedding (:func:`activemine.experiments.diversity.run_embedding`) is made
    here, once the run's models are fitted, from the pool rows ``X`` ``(n, d)``, and the batch says which."""
    from dataclasses import replace

    from activemine.experiments.diversity import run_embedding

    embedding, source = run_embedding(embedding, strategy, model, X)
    batch = plan.bind(classes=strategy.classes_, labeled=labeled).select(ids, scores, predicted, embedding=embedding)
    if batch.diversity is not None and source:
        batch = replace(batch, diversity=replace(batch.diversity, embedding=source))
    return batch


def _one_shot(run: RunSpec, task, settings: ExperimentSettings, seed, split: _Seed, shared) -> dict:
    config = settings.config
    classes = np.arange(len(task.class_names))
    strategy = _build(run, config, seed, classes)
    labeled = LabeledSet(task.X_train[split.L], split.y_obs[split.L], split.L)
    start = time.perf_counter()
    options = run.diversity
    embedding = _embedding(options, task, split, shared, seed)
    if run.reads_pool_proba:
        batch, fits, decided = _select(
            strategy,
            task.X_train[split.U] if isinstance(embedding, str) else None,
            split.U,
            labeled,
            config.budget,
            proba=shared["pool_proba"],
            diversity=options,
            embedding=embedding,
            model=shared["initial"]["_model"],
        )
        fits, extra = (0, 0.0) if run.strategy == "random" else (1, shared["seconds"])
    else:
        fitted = shared.setdefault("fitted", {}).setdefault(run.variant, {})
        reused = "state" in fitted
        batch, fits, decided = _select(
            strategy,
            task.X_train[split.U],
            split.U,
            labeled,
            config.budget,
            diversity=options,
            embedding=embedding,
            fitted=fitted,
        )
        # a run that reused the fit of an earlier run of the same strategy is charged that run's time too
        extra = fitted["seconds"] if reused else 0.0
        if not reused:
            fitted["seconds"] = time.perf_counter() - start
    seconds = time.perf_counter() - start + extra
    rows = np.concatenate([split.L, batch.ids])
    start = time.perf_counter()
    # runs whose final training set and dirty-data settings agree (hw and its variants on clean labels) share it
    step_key = _step_key(strategy, rows)
    cached = shared.setdefault("kept", {}).get(step_key) if step_key else None
    if cached is None:
        cached = _kept_for_training(strategy, task.X_train[rows], split.y_obs[rows], seed)
        if step_key:
            shared["kept"][step_key] = cached
    keep, final_report = cached
    clean_seconds = time.perf_counter() - start
    targets = _soft_targets(final_report, keep, split.y_obs[rows], len(task.class_names))
    result = _evaluate_rows(
        task, split.y_obs, rows[keep], config=config, seed=seed, cache=shared["fits"], targets=targets
    )
    result.update(
        labels=int(rows.size),
        **_duplicate_figures(split, batch.ids, batch.diversity),
        batch_class_counts=_class_counts(task, task.y_train[batch.ids]),
        batch_noisy_labels=int((split.y_obs[batch.ids] != task.y_train[batch.ids]).sum()),
        select_seconds=seconds,
        model_fits=int(fits),
        decided_by=decided,
        ties=dict(batch.ties),
    )
    if getattr(strategy, "difficulty_", None) is not None:
        result["difficulty"] = dict(strategy.difficulty_)
    if hasattr(strategy, "kept_"):
        result["labeled_dropped"] = int((~np.asarray(strategy.kept_)).sum())
    if getattr(strategy, "dirty_report_", None) is not None:
        report = strategy.dirty_report_
        result["dirty"] = {
            "dirty": report.dirty,
            "gain": report.gain,
            "z": report.z,
            "suspects": report.n_suspect,
            "dropped": report.n_dropped,
            **report.extra,  # how it got out-of-fold probabilities, its fits and seconds
        }
    if final_report is not None:  # whether the final L + B cleaning judged the labels dirty, and its evidence
        result["final_dirty"] = bool(final_report.dirty)
        result["final_z"] = float(final_report.z)
        result["final_softened"] = targets is not None
        result["final_soft_z"] = float(final_report.soft_z)
        result["final_dirty_step"] = dict(final_report.extra)
    result["final_dropped"] = int((~keep).sum())
    result["final_dropped_noisy"] = int((split.y_obs[rows[~keep]] != task.y_train[rows[~keep]]).sum())
    result["final_clean_seconds"] = clean_seconds
    return result


def _soft_targets(report, keep: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Soft targets ``(keep.sum(), n_classes)`` of the kept rows of ``y`` (class indices) when the dirty-data
    step chose them, else None. The step's columns are the classes present in ``y``."""
    targets = getattr(report, "soft_targets", None)
    if targets is None:
        return None
    out = np.zeros((int(keep.sum()), n_classes))
    out[:, np.unique(y)] = targets[keep]
    return out


def _step_key(strategy, rows: np.ndarray) -> str | None:
    """A key of the final dirty-data step's input: its settings and the rows in their order, as the step's
    output is aligned with them (None: a custom step, not shared)."""
    if getattr(strategy, "dirty_step", None) is not None or getattr(strategy, "dirty_policy", "off") != "prune":
        return None
    settings = [
        getattr(strategy, k, None) for k in ("dirty_policy", "dirty_rule", "max_dirty", "soft_labels", "oof_method")
    ]
    return repr((settings, repr(strategy.model), strategy.n_jobs)) + hashlib.sha1(rows.tobytes()).hexdigest()


def _kept_for_training(strategy, X, y, seed: int):
    """``(keep, report)``: rows of L + B ``(n,)`` bool that the strategy's own dirty-data control keeps
    for the final model, and its step's report (None without one, or when the step was skipped).

    A strategy with a pruning dirty-data step (HW by default) is a pipeline
    that also cleans the labels it trains its final model on; measuring it
    without that step would not measure dirty-data control. Every other
    strategy keeps all rows.
    """
    step = getattr(strategy, "dirty_step", None)
    if step is None and getattr(strategy, "dirty_policy", "off") == "prune":
        step = strategy.make_dirty_filter()
    if step is None:
        return np.ones(len(y), dtype=bool), None
    keep = np.asarray(step(X, y, random_state=seed), dtype=bool)
    return keep, getattr(step, "report_", None)


def _multi_round(run: RunSpec, task, settings: ExperimentSettings, seed, split: _Seed, shared) -> dict:
    config = settings.config
    classes = np.arange(len(task.class_names))
    strategy = _build(run, config, seed, classes)
    options = run.diversity
    embedding = _embedding(options, task, split, shared, seed)
    reports = []
    sizes = np.full(config.rounds, config.budget // config.rounds)
    sizes[: config.budget % config.rounds] += 1
    rows, curve, fits, seconds = split.L, [], 0, 0.0
    evaluation = shared["initial"]
    picked: list[np.ndarray] = []
    round_ties: list[dict] = []
    decided: dict[str, int] = {}
    from activemine.budget.report import RunRecorder

    stop_rows, source = RunRecorder.stop_rows(split.U, settings.stop, seed=seed, held_out_rows=split.held_out)
    stop = RunRecorder(task.X_train[stop_rows], classes, settings.stop, rounds=config.rounds, source=source)
    stop.add(0, evaluation["_model"], labels=rows.size, metric=evaluation["tpr_at_fpr"])
    for r, size in enumerate(sizes):
        labeled = LabeledSet(task.X_train[rows], split.y_obs[rows], rows)
        plan = SelectionPlan.build(
            strategy, budget=int(size), exclude=rows, diversity=options
        )  # checked before the round's fits
        start = time.perf_counter()
        if run.reads_pool_proba:
            # the evaluation model of the previous round is the model these strategies would fit
            proba = predict_proba_aligned(evaluation["_model"], task.X_train[split.U], classes)
            batch, _, ties = _select(
                strategy,
                task.X_train[split.U] if isinstance(embedding, str) else None,
                split.U,
                labeled,
                int(size),
                exclude=rows,
                proba=proba,
                diversity=options,
                embedding=embedding,
                model=evaluation["_model"],
            )
            if run.strategy != "random":
                fits += 1
                seconds += evaluation["fit_seconds"]
        else:
            if getattr(strategy, "grow_committee", False) and r > 0:
                before = strategy.n_fits_
                strategy.grow(task.X_train[picked[-1]], split.y_obs[picked[-1]], labeled)
                fits += strategy.n_fits_ - before
            else:
                strategy.fit(labeled)
                fits += strategy.n_fits_
            scores, predicted = score_pool(strategy, PoolChunk(split.U, X=task.X_train[split.U]))
            batch = _select_with(
                plan, strategy, labeled, split.U, scores, predicted, embedding, model=None, X=task.X_train[split.U]
            )
            ties = strategy_decided_by(strategy, batch, split.U, scores, predicted, exclude=rows)
        seconds += time.perf_counter() - start
        reports.append(batch.diversity)
        round_ties.append(dict(batch.ties))
        decided = {key: decided.get(key, 0) + n for key, n in ties.items()}
        picked.append(batch.ids)
        batch_proba = predict_proba_aligned(evaluation["_model"], task.X_train[batch.ids], classes)
        rows = np.concatenate([rows, batch.ids])
        keep, report = _kept_for_training(strategy, task.X_train[rows], split.y_obs[rows], seed)
        targets = _soft_targets(report, keep, split.y_obs[rows], len(task.class_names))
        evaluation = _evaluate_rows(
            task, split.y_obs, rows[keep], config=config, seed=seed, cache=shared["fits"], targets=targets
        )
        evaluation["labels"] = int(rows.size)
        refit = _refit_rows(
            task, split.y_obs, rows[keep], evaluation, config=config, seed=seed, cache=shared["fits"], targets=targets
        )
        stop.add(
            r + 1,
            evaluation["_model"],
            labels=rows.size,
            metric=evaluation["tpr_at_fpr"],
            batch_proba=batch_proba,
            refit=refit,
        )
        curve.append({k: evaluation[k] for k in ("labels", "tpr_at_fpr", "auc")})
    chosen = np.concatenate(picked)
    result = dict(evaluation)
    result.update(
        **_duplicate_figures(split, chosen, reports[-1]),
        batch_class_counts=_class_counts(task, task.y_train[chosen]),
        batch_noisy_labels=int((split.y_obs[chosen] != task.y_train[chosen]).sum()),
        select_seconds=seconds,
        model_fits=int(fits),
        decided_by=decided,
        ties=round_ties,
        curve=curve,
        stopping=stop.report(seed=seed),
    )
    return result


def _embedding(options, task, split, shared, seed):
    from activemine.experiments.diversity import pool_embedding

    return pool_embedding(options, task, split, shared, seed)


def _duplicate_figures(split, chosen, report) -> dict:
    from activemine.experiments.diversity import duplicate_figures

    return duplicate_figures(split, chosen, report)


def _plant(task, settings: ExperimentSettings, seed, split, model):
    from activemine.experiments.diversity import plant_into_task

    return plant_into_task(task, settings, seed, split, model)

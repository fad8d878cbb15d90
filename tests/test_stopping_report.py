import json

import numpy as np
import pytest

from activemine.budget.report import StopSettings
from activemine.budget.stopping import CRITERIA
from activemine.errors import InputError
from activemine.experiments.runner import ExperimentConfig, run_experiment, write_outputs


@pytest.mark.slow
def test_multi_round_records_where_each_criterion_would_have_stopped(tmp_path):
    config = ExperimentConfig(
        dataset="digits",
        task="binary:3",
        labeled_size=100,
        budget=240,
        rounds=8,
        strategies=("lc",),
        seeds=(0,),
        mode="multi-round",
        model="logreg",
        full_seeds=0,
        stopping={"stop_set_size": 300, "kappa_threshold": 0.95},
    )
    results = run_experiment(config)
    (run,) = results["runs"]
    rep = run["stopping"]
    assert rep["stop_set_size"] == 300
    assert [r["round"] for r in rep["rounds"]] == list(range(9))
    curve = {c["labels"]: c["tpr_at_fpr"] for c in run["curve"]}
    assert [r["labels"] for r in rep["rounds"][1:]] == list(curve)
    assert [r["metric"] for r in rep["rounds"][1:]] == list(curve.values())
    assert rep["rounds"][0]["kappa"] is None and all(-1 <= r["kappa"] <= 1 for r in rep["rounds"][1:])
    assert [c["criterion"] for c in rep["criteria"]] == list(CRITERIA)
    for c in rep["criteria"]:
        assert c["labels_final"] == 340 and c["metric_final"] == run["tpr_at_fpr"]
        if c["stop_round"] is None:
            assert c["labels_at_stop"] == 340 and c["metric_lost"] == 0
        else:
            at = rep["rounds"][c["stop_round"]]
            assert (c["labels_at_stop"], c["metric_at_stop"]) == (at["labels"], at["metric"])
            assert c["metric_lost"] == pytest.approx(run["tpr_at_fpr"] - at["metric"])
    kappa = rep["criteria"][0]
    if kappa["stop_round"] is not None:  # it fired where the mean of the 3 kappas before first reached 0.95
        ks = [r["kappa"] for r in rep["rounds"][1:]]
        assert np.mean(ks[kappa["stop_round"] - 3 : kappa["stop_round"]]) >= 0.95
    assert rep["criteria"][4]["stop_round"] == 8  # max: the full schedule
    # logreg is deterministic: its refit predicts what it does, the ceiling is 1 every round
    assert all(r["kappa_refit_ceiling"] == 1.0 for r in rep["rounds"][1:])
    assert [r["kappa_refit_change"] for r in rep["rounds"][1:]] == [r["kappa"] for r in rep["rounds"][1:]]
    # the pool is all training rows but L: no held-out rows, the stop set comes from the pool
    assert rep["stop_set_source"] == "pool"
    f = rep["forecast"]
    assert f["from_rounds"] == [0, 1, 2, 3, 4]
    assert f["target"] == pytest.approx(run["tpr_at_fpr"] - 0.005)
    assert f["true_labels"] == min(r["labels"] for r in rep["rounds"] if r["metric"] >= f["target"])
    assert (f["predicted_labels"] is None) == (f["interval"] is None) == (f["reason"] is not None)
    written = write_outputs(results, tmp_path)
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert "## Stopping" in (tmp_path / "results.md").read_text()
    assert json.loads((tmp_path / "results.json").read_text())["runs"][0]["stopping"]["criteria"]
    assert len(written) == 4


def test_stop_settings_are_checked_before_anything_runs():
    with pytest.raises(InputError, match="unknown stopping settings"):
        ExperimentConfig(dataset="digits", stopping={"kapa": 0.9}).check()
    with pytest.raises(InputError, match="kappa threshold"):
        ExperimentConfig(dataset="digits", stopping={"kappa_threshold": 3}).check()
    with pytest.raises(InputError, match="stop set size"):
        StopSettings.from_dict({"stop_set_size": 0})


def _digits_config(**kw):
    kw = {"model": "logreg", **kw}
    return ExperimentConfig(
        dataset="digits",
        task="binary:3",
        labeled_size=100,
        budget=60,
        rounds=3,
        strategies=("lc",),
        seeds=(0,),
        mode="multi-round",
        full_seeds=0,
        **kw,
    )


def test_stop_set_is_drawn_outside_the_labeled_set_and_the_pool_when_there_is_room(monkeypatch):
    from activemine.budget.report import RunRecorder
    from activemine.experiments import runner as experiment
    from activemine.experiments.seeds import _Seed

    seen = {}
    real = RunRecorder.__init__

    def spy(self, X_stop, classes, settings, *, rounds, source="pool"):
        seen["X"], seen["source"] = X_stop, source
        real(self, X_stop, classes, settings, rounds=rounds, source=source)

    monkeypatch.setattr(RunRecorder, "__init__", spy)
    config = _digits_config(pool_size=600, stopping={"stop_set_size": 200})
    results = run_experiment(config)
    assert results["runs"][0]["stopping"]["stop_set_source"] == "held-out" == seen["source"]
    task = experiment.load_task("digits", "binary:3")
    split = _Seed(task, config.check(), 0, None)
    assert split.held_out.size == task.y_train.size - 700
    assert np.intersect1d(split.held_out, np.r_[split.L, split.U]).size == 0
    # every stop-set row is a held-out row: its features match one held-out row and no L or pool row
    rows = [np.flatnonzero((task.X_train == x).all(axis=1)) for x in seen["X"]]
    assert all(np.isin(r, split.held_out).any() and not np.isin(r, np.r_[split.L, split.U]).any() for r in rows)


def test_stop_set_source_falls_back_to_the_pool_or_refuses_when_held_out_rows_are_too_few():
    from activemine.budget.report import RunRecorder

    settings = StopSettings(stop_set_size=50)
    pool, held = np.arange(100, 300), np.arange(300, 340)
    rows, source = RunRecorder.stop_rows(pool, settings, seed=1, held_out_rows=held)
    assert source == "pool" and rows.size == 50 and np.isin(rows, pool).all()
    rows, source = RunRecorder.stop_rows(pool, settings, seed=1, held_out_rows=np.arange(300, 400))
    assert source == "held-out" and rows.size == 50 and np.isin(rows, np.arange(300, 400)).all()
    rows, source = RunRecorder.stop_rows(
        pool, StopSettings(stop_set_size=50, stop_set_source="pool"), seed=1, held_out_rows=np.arange(300, 400)
    )
    assert source == "pool" and np.isin(rows, pool).all()
    with pytest.raises(InputError, match="held-out stop set of 50 rows .* there are 40"):
        RunRecorder.stop_rows(
            pool, StopSettings(stop_set_size=50, stop_set_source="held-out"), seed=1, held_out_rows=held
        )
    with pytest.raises(InputError, match="stop set source must be one of"):
        StopSettings.from_dict({"stop_set_source": "test"})


def test_refit_is_the_second_evaluation_model_when_eval_repeats_is_two():
    from activemine.experiments import evaluation as experiment
    from activemine.experiments.tasks import load_task

    task = load_task("digits", "binary:3")
    rows = np.arange(300)
    config = _digits_config(model="lightgbm", eval_repeats=2, n_jobs=1)
    cache = {}
    ev = experiment._evaluate_rows(task, task.y_train, rows, config=config, seed=0, cache=cache)
    assert experiment._refit_rows(task, task.y_train, rows, ev, config=config, seed=0, cache=cache) is ev["_models"][1]
    one = _digits_config(model="lightgbm", n_jobs=1)
    ev1 = experiment._evaluate_rows(task, task.y_train, rows, config=one, seed=0, cache={})
    refit = experiment._refit_rows(task, task.y_train, rows, ev1, config=one, seed=0, cache={})
    assert refit is not ev1["_model"] and refit.get_params()["random_state"] == 100_003

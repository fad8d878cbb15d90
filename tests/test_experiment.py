import json

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.data.tables import write_table
from activemine.errors import BudgetError, InputError
from activemine.experiments.runner import ExperimentConfig, load_task, run_experiment, summarize

runner = CliRunner()


def test_experiment_cli_on_digits_writes_every_output(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVEMINE_PROGRESS_INTERVAL", "0")
    out = tmp_path / "exp"
    result = runner.invoke(
        app,
        [
            "experiment",
            "--dataset",
            "digits",
            "--task",
            "binary:8",
            "--labeled-size",
            "150",
            "--budget",
            "60",
            "--strategies",
            "random,lc,qbc,hw",
            "--seeds",
            "1",
            "--model",
            "logreg",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    # not a terminal: progress arrives as timestamped lines, one per finished step
    assert "experiment: started (" in result.output and "experiment: done" in result.output
    assert {p.name for p in out.iterdir()} == {"results.json", "results.md", "roc.png"}
    doc = json.loads((out / "results.json").read_text())
    assert {"config", "runs", "reference"} <= set(doc)
    assert [r["strategy"] for r in doc["runs"]] == ["random", "lc", "qbc", "hw"]
    for run in doc["runs"]:
        assert {"strategy", "seed", "tpr_at_fpr", "auc", "batch_class_counts", "select_seconds", "model_fits"} <= set(
            run
        )
        assert 0.0 <= run["tpr_at_fpr"] <= 1.0 and 0.0 <= run["auc"] <= 1.0
        assert sum(run["batch_class_counts"].values()) == 60
        assert run["labels"] == 210
        # every score-ranked row counted under one key (HW draws 10% of its batch as easy rows)
        assert sum(run["decided_by"].values()) == 60  # HW's default draws no easy rows
    # only HW's own dirty-data step may drop rows before the final model is trained, and it records its verdict
    assert all(r["final_dropped"] == 0 and "final_dirty" not in r for r in doc["runs"] if r["strategy"] != "hw")
    hw = next(r for r in doc["runs"] if r["strategy"] == "hw")
    assert isinstance(hw["final_dirty"], bool) and (hw["final_dropped"] > 0) == hw["final_dirty"]
    fits = {r["strategy"]: r["model_fits"] for r in doc["runs"]}
    assert fits["random"] == 0 and fits["lc"] == 1 and fits["qbc"] == 3
    assert doc["reference"]["initial"][0]["labels"] == 150
    assert doc["reference"]["full"][0]["labels"] == doc["sizes"]["train"]
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    for name in ("random", "lc", "qbc", "hw", "reference:initial", "reference:full"):
        assert f"| {name} |" in table


@pytest.mark.slow
def test_multi_round_on_a_user_csv_learning_curves(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    label = np.where(X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=400) > 0.8, "defect", "ok")
    path = tmp_path / "parts.csv"
    write_table(pa.table({"id": np.arange(400), **{f"f{j}": X[:, j] for j in range(4)}, "label": label}), path)
    out = tmp_path / "exp"
    result = runner.invoke(
        app,
        [
            "experiment",
            "--dataset",
            str(path),
            "--task",
            "binary:defect",
            "--labeled-size",
            "60",
            "--budget",
            "40",
            "--mode",
            "multi-round",
            "--rounds",
            "2",
            "--strategies",
            "lc,qbc,qbc-grow",
            "--seeds",
            "0,1",
            "--model",
            "logreg",
            "--full-seeds",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "curves.png").exists()
    doc = json.loads((out / "results.json").read_text())
    assert doc["classes"] == ["not defect", "defect"]
    for run in doc["runs"]:
        assert [c["labels"] for c in run["curve"]] == [80, 100]
    fits = {(r["strategy"], r["model_fits"]) for r in doc["runs"] if r["strategy"].startswith("qbc")}
    assert fits == {("qbc", 6), ("qbc-grow", 4)}  # a fixed committee refitted twice; 3 members, then one grown
    for run in doc["runs"]:  # 40 rows ranked over two rounds, each counted under one key
        assert sum(run["decided_by"].values()) == 40
    assert len(doc["reference"]["full"]) == 1


def test_same_seed_gives_the_same_runs():
    cfg = ExperimentConfig(
        dataset="digits",
        task="binary:3",
        labeled_size=120,
        budget=40,
        strategies=("random", "lc"),
        seeds=(4,),
        model="logreg",
        full_seeds=0,
    )
    first, second = run_experiment(cfg), run_experiment(cfg)
    for a, b in zip(first["runs"], second["runs"]):
        assert a["tpr_at_fpr"] == b["tpr_at_fpr"] and a["batch_class_counts"] == b["batch_class_counts"]
    assert first["reference"]["full"] == []


def test_summary_is_mean_and_std_over_seeds():
    runs = [
        {"strategy": "lc", "tpr_at_fpr": t, "auc": 0.9, "labels": 10, "select_seconds": 1.0, "model_fits": 1}
        for t in (0.4, 0.6)
    ]
    s = summarize(runs, {"initial": [], "full": []})
    assert s["lc"]["tpr_at_fpr"]["mean"] == pytest.approx(0.5)
    assert s["lc"]["tpr_at_fpr"]["std"] == pytest.approx(np.std([0.4, 0.6], ddof=1))


def test_task_parsing():
    task = load_task("digits", "binary:8")
    assert task.class_names == ("not 8", "8") and set(np.unique(task.y_train)) == {0, 1}
    with pytest.raises(InputError, match="'12'"):
        load_task("digits", "binary:12")
    with pytest.raises(InputError, match="'ternary'"):
        load_task("digits", "ternary")
    with pytest.raises(InputError, match="nope"):
        load_task("nope", "multiclass")


@pytest.mark.parametrize(
    "changes, error, match",
    [
        ({"mode": "batch"}, InputError, "'batch'"),
        ({"strategies": ("lc", "magic")}, InputError, "magic"),
        ({"noise": 1.5}, InputError, "1.5"),
        ({"labeled_size": 5000}, BudgetError, "5000"),
        ({"eval_repeats": 0}, InputError, "eval_repeats"),
    ],
)
def test_bad_settings_are_typed_errors(changes, error, match):
    settings = {"dataset": "digits", "task": "binary:8", "labeled_size": 100, "budget": 20, "strategies": ("lc",)}
    cfg = ExperimentConfig(**{**settings, **changes})
    with pytest.raises(error, match=match):
        run_experiment(cfg)


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "exp"
    result = runner.invoke(app, ["experiment", "--dataset", "digits", "--seeds", "x", "--out", str(out)])
    assert result.exit_code == 2
    assert not out.exists()


def test_hw_weak_model_is_the_first_trees_of_the_strong_lightgbm():
    # HW's tuned default (chosen with this experiment): one fit, the weak model is its early boosting rounds
    from activemine.data.chunks import LabeledSet, PoolChunk
    from activemine.selection.strategies import HWStrategy

    task = load_task("digits", "binary:8")
    labeled = LabeledSet(task.X_train[:300], task.y_train[:300])
    hw = HWStrategy(dirty_policy="off", weak_trees=5, random_state=0).fit(labeled)
    assert hw.n_fits_ == 1
    chunk = PoolChunk(np.arange(100), X=task.X_train[300:400])
    weak = hw.weak_model_.predict_proba(chunk.X)
    np.testing.assert_allclose(weak, hw.strong_model_.predict_proba(chunk.X, num_iteration=5))
    assert not np.allclose(weak, hw.class_proba(chunk))
    scores, _ = hw.score(chunk)
    np.testing.assert_allclose(scores, 1.0 - weak.max(axis=1))
    assert HWStrategy(dirty_policy="off", weak_trees=None, random_state=0).fit(labeled).n_fits_ == 2
    with pytest.raises(InputError, match="0"):
        HWStrategy(weak_trees=0)


def test_user_file_with_a_text_column_is_read_without_it_and_a_named_text_feature_is_a_typed_error(tmp_path):
    path = tmp_path / "text.csv"
    write_table(pa.table({"f0": [1.0, 2.0, 3.0, 4.0], "colour": ["a", "b", "a", "b"], "label": [0, 1, 0, 1]}), path)
    assert load_task(str(path), "multiclass").X_train.shape[1] == 1  # the text is carried, not a feature
    with pytest.raises(InputError, match=r"must be numeric, got \[\('colour', 'string'\)\]"):
        load_task(str(path), "multiclass", feature_cols=["f0", "colour"])


def test_final_model_depends_on_the_set_of_rows_not_their_order():
    from activemine.experiments.evaluation import _evaluate_rows

    task = load_task("digits", "binary:8")
    config = ExperimentConfig(dataset="digits", model="logreg")
    rows = np.random.default_rng(0).choice(task.y_train.size, 300, replace=False)
    cache: dict = {}
    first = _evaluate_rows(task, task.y_train, rows, config=config, seed=0, cache=cache)
    again = _evaluate_rows(task, task.y_train, rows[::-1], config=config, seed=0, cache=cache)
    assert len(cache) == 1 and again["tpr_at_fpr"] == first["tpr_at_fpr"] and again["_model"] is first["_model"]
    other = _evaluate_rows(task, task.y_train, rows[:200], config=config, seed=0, cache=cache)
    assert len(cache) == 2 and other["labels"] == 200
    # a fresh fit on the rows in another order gives the same figures: the cache only saves time
    fresh = _evaluate_rows(task, task.y_train, rows[::-1], config=config, seed=0, cache={})
    assert fresh["roc_tpr"] == first["roc_tpr"]


def test_eval_repeats_average_models_of_several_seeds():
    from activemine.experiments.evaluation import _evaluate

    task = load_task("digits", "binary:8")
    X, y = task.X_train[:400], task.y_train[:400]
    one = [_evaluate(task, X, y, model="lightgbm", seed=s, fpr=0.05) for s in (3, 3 + 100_003)]
    both = _evaluate(task, X, y, model="lightgbm", seed=3, fpr=0.05, repeats=2)
    assert both["tpr_at_fpr"] == pytest.approx((one[0]["tpr_at_fpr"] + one[1]["tpr_at_fpr"]) / 2)
    assert both["auc"] == pytest.approx((one[0]["auc"] + one[1]["auc"]) / 2)
    np.testing.assert_allclose(both["roc_tpr"], np.mean([one[0]["roc_tpr"], one[1]["roc_tpr"]], axis=0))

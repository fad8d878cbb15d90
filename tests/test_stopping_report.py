import json

import numpy as np
import pytest

from activemine.errors import InputError
from activemine.experiment import ExperimentConfig, run_experiment, write_outputs
from activemine.stopping import CRITERIA
from activemine.stopping_report import StopSettings


@pytest.mark.slow
def test_multi_round_records_where_each_criterion_would_have_stopped(tmp_path):
    config = ExperimentConfig(dataset="digits", task="binary:3", labeled_size=100, budget=240, rounds=8,
                              strategies=("lc",), seeds=(0,), mode="multi-round", model="logreg", full_seeds=0,
                              stopping={"stop_set_size": 300, "kappa_threshold": 0.95})  # fmt: skip
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
    assert rep["criteria"][3]["stop_round"] == 8  # max: the full schedule
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

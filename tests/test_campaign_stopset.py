import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_files, pixel_table
from activemine.campaign import campaign_status, init_campaign, mine_round
from activemine.campaign.stopset import CAMPAIGN_CRITERIA, measure_learning_curve, stop_records, stopping_status
from activemine.cli import app
from activemine.errors import InputError
from activemine.selection.strategies import make_strategy

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


def _campaign(tmp_path, n_pool=600):
    tmp_path.mkdir(parents=True, exist_ok=True)
    L, U, truth = digits_files(tmp_path, n_labeled=150, n_pool=n_pool)
    return init_campaign(tmp_path / "camp", pool=U, labeled=L, label_col="y", id_col="id"), truth


def _label_round(store, truth, round_no):
    """Return the truth for every sample of a round, as an annotator would."""
    sids = [s for (s,) in store.read("SELECT sid FROM batches WHERE round = ?", (round_no,))]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO labels (sid, label, annotator, created_at, source) VALUES (?, ?, 'a', 't', 'import')",
            [(s, str(truth[int(s)])) for s in sids],
        )


def _mine(store, budget=40, **kw):
    return mine_round(
        store,
        make_strategy("lc", model="logreg", random_state=0),
        budget=budget,
        params={"model": "logreg", "seed": 0},
        **kw,
    )


def test_status_with_no_round_has_no_kappa_no_decision_to_stop_and_says_what_the_forecast_lacks(tmp_path):
    store, _ = _campaign(tmp_path)
    s = campaign_status(store)["stopping"]
    assert s["rounds"] == [] and s["stop_set_size"] is None and s["stop"] is False
    assert (
        [d["criterion"] for d in s["decisions"]]
        == list(CAMPAIGN_CRITERIA)
        == ["kappa", "uncertainty", "plateau", "max"]
    )
    assert all(d["value"] is None or d["criterion"] == "max" for d in s["decisions"])
    assert "campaign forecast" in s["forecast"]["reason"]
    code, out = invoke("campaign", "status", store.folder)
    assert code == 0 and "stopping criteria" in out and "no validation metric" in out


def test_one_round_stores_predictions_on_a_seeded_stop_set_of_the_requested_size(tmp_path):
    store, _ = _campaign(tmp_path)
    _mine(store, stop_set_size=300)
    s = campaign_status(store)["stopping"]
    assert s["stop_set_size"] == 300
    assert len(s["rounds"]) == 1 and s["rounds"][0]["kappa_to_previous"] is None and s["rounds"][0]["labels"] == 150
    assert 0.0 <= s["rounds"][0]["batch_uncertainty"] <= 1.0
    (rec,) = stop_records(store)
    assert rec.stop_predictions.shape == (300,) and set(np.unique(rec.stop_predictions)) <= set(range(10))
    stop_ids = [r[0] for r in store.read("SELECT sid FROM stop_set ORDER BY position")]
    assert pq.read_table(store.folder / "data" / "stopset.parquet").column("id").to_pylist() == list(map(int, stop_ids))
    # the same seed on another campaign over the same pool picks the same rows
    other, _ = _campaign(tmp_path / "b")
    _mine(other, stop_set_size=300)
    assert [r[0] for r in other.read("SELECT sid FROM stop_set ORDER BY position")] == stop_ids
    with pytest.raises(InputError, match="already holds 300"):
        _mine(store, stop_set_size=200)


@pytest.mark.slow
def test_many_rounds_give_kappa_per_pair_decisions_and_a_forecast_from_a_validation_file(tmp_path):
    store, truth = _campaign(tmp_path, n_pool=900)
    for r in range(1, 6):
        _mine(store, budget=60)
        _label_round(store, truth, r)
    _mine(store, budget=60)  # round 6: its labels have not come back
    s = campaign_status(store)["stopping"]
    assert [r["round"] for r in s["rounds"]] == [1, 2, 3, 4, 5, 6]
    assert [r["labels"] for r in s["rounds"]] == [150 + 60 * i for i in range(6)]
    kappas = [r["kappa_to_previous"] for r in s["rounds"][1:]]
    assert all(-1 <= k <= 1 for k in kappas) and min(kappas) < 1.0
    kappa = s["decisions"][0]
    assert kappa["value"] == pytest.approx(np.mean(kappas[-3:])) and kappa["stop"] == (kappa["value"] >= 0.99)

    from activemine.data.datasets import load_dataset

    d = load_dataset("digits")
    val = tmp_path / "val.parquet"
    pq.write_table(pixel_table(d.X_test, np.arange(d.y_test.size), d.y_test), val)
    code, out = invoke("campaign", "forecast", store.folder, "--target-metric", 0.9, "--validation", val, "--json")
    assert code == 0, out
    f = json.loads(out)["forecast"]
    assert [p["labels"] for p in f["points"]] == [150 + 60 * i for i in range(6)]  # L, then rounds 1..5 labeled
    assert f["points"][-1]["metric"] > f["points"][0]["metric"]  # more labels, better model
    answer = f["labels_for_target"]
    if answer["value"] is None:
        assert answer["reason"] and answer["interval"] is None
    else:
        assert answer["interval"][0] <= answer["value"] <= answer["interval"][1]
        assert f["labels_still_needed"] == pytest.approx(max(0.0, answer["value"] - f["labels_now"]))
    # status remembers the points and the target
    again = campaign_status(store)["stopping"]["forecast"]
    assert again["target"] == 0.9 and again["points"] == f["points"]
    code, out = invoke("campaign", "status", store.folder)
    assert code == 0 and "kappa to previous" in out and "forecast" in out


def test_a_round_mined_before_new_labels_came_back_adds_no_point(tmp_path):
    store, truth = _campaign(tmp_path)
    _mine(store)
    _label_round(store, truth, 1)
    _mine(store)
    _mine(store)  # same labels as round 2: the same model, a kappa of 1.0 that proves nothing
    assert [(r.round, r.labels) for r in stop_records(store)] == [(1, 150), (3, 190)]


def test_bad_inputs_are_refused_before_any_fit_and_change_nothing(tmp_path):
    store, _ = _campaign(tmp_path, n_pool=200)
    code, out = invoke("campaign", "mine", store.folder, "--budget", 10, "--model", "logreg", "--stop-set-size", 500)
    assert code == 2 and "stop set size 500 is larger than the pool (200 samples)" in out
    assert store.read("SELECT COUNT(*) FROM rounds") == [(0,)]
    assert not (store.folder / "data" / "stopset.parquet").exists()
    assert not store.read("SELECT name FROM sqlite_master WHERE name LIKE 'stop%'")
    for bad in (0, 1.5, -0.2):
        code, out = invoke("campaign", "forecast", store.folder, "--target-metric", bad)
        assert code == 2 and "must be in (0, 1]" in out, out
    with pytest.raises(InputError, match="fpr must be in"):
        measure_learning_curve(store, tmp_path / "none.csv", fpr=2.0)
    assert stopping_status(store)["forecast"]["target"] is None  # no refused target was stored


def test_a_validation_file_with_unknown_classes_is_refused(tmp_path):
    store, _ = _campaign(tmp_path)
    _mine(store)
    X = np.zeros((4, 64))
    val = tmp_path / "val.parquet"
    pq.write_table(pixel_table(X, np.arange(4), np.array([0, 1, 2, 42])), val)
    code, out = invoke("campaign", "forecast", store.folder, "--target-metric", 0.5, "--validation", val)
    assert code == 2 and "42" in out
    s = stopping_status(store)["forecast"]
    assert s["points"] == [] and s["target"] is None

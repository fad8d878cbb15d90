import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_files, pixel_table
from activemine.campaign import campaign_status, init_campaign, mine_round
from activemine.campaign.stopset import campaign_criteria, measure_learning_curve, stop_records, stopping_status
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
    # a campaign that fits a model decides with kappa-refit
    assert (
        [d["criterion"] for d in s["decisions"]]
        == list(campaign_criteria(True))
        == ["kappa-refit", "uncertainty", "plateau", "max"]
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
    refit = s["decisions"][0]
    assert refit["criterion"] == "kappa-refit" and refit["value"] is not None
    assert refit["stop"] == (refit["value"] <= 0.01)
    records = stop_records(store)
    assert all(
        r.refit_predictions is not None and r.refit_predictions.shape == r.stop_predictions.shape for r in records
    )
    assert s["refit_cost"]["rounds"] == 6 and s["refit_cost"]["total_seconds"] > 0

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


def test_a_campaign_that_fits_a_model_stores_a_refit_per_round_and_shows_its_cost(tmp_path):
    store, truth = _campaign(tmp_path)
    for r in (1, 2, 3, 4):
        _mine(store, stop_set_size=300)
        _label_round(store, truth, r)
    s = stopping_status(store)
    records = stop_records(store)
    # logreg is deterministic: the refit (another seed) predicts as the round's model, the ceiling is 1
    assert all((r.refit_predictions == r.stop_predictions).all() for r in records)
    decision = s["decisions"][0]
    kappas = [r["kappa_to_previous"] for r in s["rounds"][1:]]
    assert decision["value"] == pytest.approx(1.0 - np.mean(kappas[-3:]))
    cost = s["refit_cost"]
    assert cost["fits_per_round"] == 1 and cost["rounds"] == 4 and cost["last_seconds"] > 0
    code, out = invoke("campaign", "status", store.folder)
    assert code == 0 and "kappa-refit cost: 1 more model fit per round" in out


def test_a_probability_pool_decides_with_plain_kappa_and_refits_nothing(tmp_path):
    from _campaign_helpers import proba_campaign

    store = proba_campaign(tmp_path, 3000)
    for _ in range(2):
        mine_round(store, make_strategy("hw"), budget=50)
    s = stopping_status(store)
    assert [d["criterion"] for d in s["decisions"]] == list(campaign_criteria(False))
    assert s["decisions"][0]["criterion"] == "kappa"
    assert s["refit_cost"] == {"fits_per_round": 0, "rounds": 0, "last_seconds": None, "total_seconds": 0.0}
    assert all(r.refit_predictions is None for r in stop_records(store))
    code, out = invoke("campaign", "status", store.folder)
    assert code == 0 and "kappa-refit cost" not in out


def test_forecast_says_when_the_target_was_already_reached_and_takes_q(tmp_path):
    from activemine.data.datasets import load_dataset

    store, truth = _campaign(tmp_path)
    _mine(store)
    _label_round(store, truth, 1)
    _mine(store)
    d = load_dataset("digits")
    val = tmp_path / "val.parquet"
    pq.write_table(pixel_table(d.X_test, np.arange(d.y_test.size), d.y_test), val)
    code, out = invoke("campaign", "forecast", store.folder, "--target-metric", 0.05, "--validation", val, "-q")
    assert code == 0, out
    points = stopping_status(store)["forecast"]["points"]
    first = next(p for p in points if p["metric"] >= 0.05)
    when = "with the initial labels" if first["round"] == 0 else f"in round {first['round']}"
    assert f"metric 0.05 already reached {when}" in " ".join(out.split())
    assert "declined" not in out.split("already reached")[0].splitlines()[-1]
    f = stopping_status(store)["forecast"]
    assert f["reached"]["round"] == first["round"] and f["labels_still_needed"] == 0.0

"""Simulated annotators (activemine.annotators.simulation), the experiment hook, and relabel ranking (activemine.annotators.relabel)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from activemine.annotators.agreement import majority_vote, model_weighted_consensus
from activemine.annotators.relabel import rank_for_relabel, relabel_advice
from activemine.annotators.simulation import (
    AnnotatorSpec,
    add_second_opinions,
    confusion_matrices,
    hardest_pair,
    parse_annotator_spec,
    simulate_labels,
)
from activemine.cli import app
from activemine.errors import BudgetError, InputError
from activemine.experiments.runner import ExperimentConfig

runner = CliRunner()


def test_parse_spec_and_errors():
    spec = parse_annotator_spec("n=4, noise=0.1, bad=1, bad-rate=0.3, overlap=0.2, per-item=3, pair=2:5")
    assert spec == AnnotatorSpec(n=4, noise=0.1, bad=1, bad_rate=0.3, overlap=0.2, per_item=3, pair=(2, 5))
    for text, match in [
        ("n=5,overlap=1.0", "overlap must be in"),
        ("n=5,per-item=1", "per-item must be between 2"),
        ("n=3,per-item=4", "per-item"),
        ("colour=red", "expected key=value"),
        ("n=x", "bad value for n"),
        ("bad=6", "bad must be between"),
        ("pair=1", "two classes"),
    ]:
        with pytest.raises(InputError, match=match):
            parse_annotator_spec(text)


def test_confusion_matrices_rows_sum_to_one_and_bad_confuses_the_pair():
    C = confusion_matrices(AnnotatorSpec(n=3, noise=0.1, bad=1, bad_rate=0.3), 4, (1, 3))
    assert C.shape == (3, 4, 4) and np.allclose(C.sum(axis=2), 1.0)
    assert C[0, 1, 1] == pytest.approx(0.9) and C[0, 1, 3] == pytest.approx(0.1 / 3)
    assert C[2, 1, 3] == pytest.approx(0.1 / 3 * 0.7 + 0.3) and C[2, 3, 1] == C[2, 1, 3]
    assert C[2, 0, 0] == pytest.approx(0.9)


@settings(max_examples=25)
@given(st.integers(20, 300), st.floats(0.0, 0.9), st.integers(2, 5), st.integers(0, 10_000))
def test_overlap_share_and_distinct_annotators(n, overlap, per_item, seed):
    y = np.random.default_rng(seed).integers(0, 3, n)
    spec = AnnotatorSpec(n=5, noise=0.1, bad=1, overlap=overlap, per_item=per_item, pair=(0, 1))
    L = simulate_labels(y, spec, k=3, random_state=seed)
    m = (L >= 0).sum(axis=1)
    # every sample labeled; exactly round(overlap * n) by per_item distinct annotators (one cell per annotator)
    assert (m >= 1).all() and set(np.unique(m)) <= {1, per_item}
    assert int((m == per_item).sum()) == (int(round(overlap * n)) if per_item > 1 else n)
    assert np.array_equal(L, simulate_labels(y, spec, k=3, random_state=seed))


def test_noise_rates_are_as_specified():
    y = np.random.default_rng(0).integers(0, 4, 40_000)
    L = simulate_labels(y, AnnotatorSpec(n=2, noise=0.1, bad=1, bad_rate=0.3, overlap=0.0), k=4, pair=(0, 1))
    good, bad = L[:, 0] >= 0, L[:, 1] >= 0
    assert np.mean(L[good, 0] != y[good]) == pytest.approx(0.1, abs=0.01)
    pair_rows = bad & (y <= 1)
    assert np.mean(L[pair_rows, 1] != y[pair_rows]) == pytest.approx(0.1 * 0.7 + 0.3, abs=0.02)


def test_second_opinions_come_from_new_annotators():
    y = np.zeros(50, dtype=int)
    spec = AnnotatorSpec(n=3, noise=0.0, bad=0, overlap=0.0)
    L = simulate_labels(y, spec, k=2, random_state=1)
    L2 = add_second_opinions(L, y, np.arange(50), spec, k=2, random_state=2)
    assert ((L2 >= 0).sum(axis=1) == 2).all() and (L2[L >= 0] == L[L >= 0]).all()
    L3 = add_second_opinions(add_second_opinions(L2, y, np.arange(50), spec, k=2), y, np.arange(50), spec, k=2)
    assert ((L3 >= 0).sum(axis=1) == 3).all()  # a full row stays full


def test_hardest_pair_of_separated_classes():
    X = np.array([[0.0], [0.1], [5.0], [5.2], [9.0], [9.1]])
    y = np.array([0, 0, 1, 1, 2, 2])
    assert hardest_pair(X, y, 3) == (1, 2)
    assert hardest_pair(X, y, 3, involving=0) == (0, 1)


# -- relabel ranking ------------------------------------------------------------------
def _setup(seed=0, n=2000, noise=0.15):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    spec = AnnotatorSpec(n=5, noise=noise, bad=1, bad_rate=0.4, overlap=0.1, pair=(0, 1))
    L = simulate_labels(y, spec, k=3, random_state=seed)
    P = np.full((n, 3), 0.15)
    P[np.arange(n), y] = 0.7
    return y, L, P, spec


def test_relabel_ranking_finds_wrong_labels_first():
    y, L, P, _ = _setup()
    ranking = rank_for_relabel(L, P, budget=200)
    wrong = majority_vote(L, 3).labels != y
    assert wrong[ranking.order].mean() > 3 * wrong.mean()
    assert np.all(np.diff(ranking.priority[ranking.order]) <= 0)
    assert len(set(ranking.order.tolist())) == 200


def test_relabel_ranking_prefers_single_labels_of_the_bad_annotator():
    y, L, P, _ = _setup(noise=0.05)
    P = np.full_like(P, 1 / 3)  # an uninformative model: only annotator quality is left
    ranking = rank_for_relabel(L, P, budget=100)
    m = (L >= 0).sum(axis=1)
    singles = ranking.order[m[ranking.order] == 1]  # the rest are disputed pairs, also worth a look
    assert singles.size > 20 and (L[singles, 4] >= 0).all()


def test_relabel_budget_errors():
    y, L, P, _ = _setup(n=100)
    with pytest.raises(BudgetError, match="relabel budget 101 is above the 100"):
        rank_for_relabel(L, P, budget=101)
    with pytest.raises(BudgetError, match="positive integer"):
        rank_for_relabel(L, P, budget=0)
    full = np.zeros((3, 2), dtype=int)  # every annotator already labeled every sample
    with pytest.raises(BudgetError, match="above the 0"):
        rank_for_relabel(full, np.full((3, 2), 0.5), budget=1)


def test_relabel_advice_rule():
    y, L, P, _ = _setup(noise=0.3)
    # training on the annotators' own labels (a third wrong) while a good model doubts many of them: relabel
    votes = majority_vote(L, 3).labels
    noisy = relabel_advice(rank_for_relabel(L, P, budget=200, train_labels=votes))
    assert noisy["advised"] == "relabel" and 2 * noisy["expected_fixes"] >= 200
    # the same labels with no model to lean on: a second opinion on a coin flip fixes too little
    flat = relabel_advice(rank_for_relabel(L, np.full_like(P, 1 / 3), budget=200, train_labels=votes))
    assert flat["advised"] == "mine"
    y, L, P, _ = _setup(noise=0.0)
    L[:, 4] = np.where(L[:, 4] >= 0, y[:] * 0 + y, -1)  # nobody errs
    clean = relabel_advice(rank_for_relabel(L, P, budget=1000))
    assert clean["advised"] == "mine" and 2 * clean["expected_fixes"] < 1000


def test_second_opinions_on_ranked_rows_fix_more_than_random():
    y, L, P, spec = _setup(seed=4)
    base = model_weighted_consensus(L, P, k=3).labels
    ranking = rank_for_relabel(L, P, budget=150)
    fixed = {}
    for name, rows in (
        ("ranked", ranking.order),
        ("random", np.random.default_rng(0).choice(y.size, 150, replace=False)),
    ):
        L2 = add_second_opinions(L, y, rows, spec, k=3, pair=(0, 1), random_state=5)
        new = majority_vote(L2, 3, proba=P).labels
        fixed[name] = int(((new == y) & (base != y)).sum() + ((new == y) & (majority_vote(L, 3).labels != y)).sum())
    assert fixed["ranked"] > fixed["random"]


# -- experiment hook -------------------------------------------------------------------
def test_experiment_with_simulated_annotators(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVEMINE_PROGRESS_INTERVAL", "0")
    out = tmp_path / "exp"
    result = runner.invoke(
        app,
        [
            "experiment",
            "--dataset",
            "digits",
            "--task",
            "multiclass",
            "--labeled-size",
            "300",
            "--budget",
            "60",
            "--strategies",
            "random",
            "--seeds",
            "1",
            "--model",
            "logreg",
            "--full-seeds",
            "0",
            "--out",
            str(out),
            "--annotators",
            "n=5,noise=0.1,bad=1,bad-rate=0.3,overlap=0.1,per-item=2",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["annotators"].startswith("n=5")
    team = doc["reference"]["initial"][0]["annotators"]
    assert 0.03 < team["wrong_share"] < 0.2 and len(team["pair"]) == 2
    assert team["labels"] == pytest.approx(1.1 * doc["sizes"]["train"], abs=1)


def test_experiment_annotators_bad_input_exits_2(tmp_path):
    out = tmp_path / "exp"
    for extra in (["--annotators", "n=5,overlap=1.5"], ["--annotators", "n=5", "--noise", "0.1"]):
        result = runner.invoke(app, ["experiment", "--dataset", "digits", "--out", str(out), *extra])
        assert result.exit_code == 2, result.output
        assert not out.exists()
    with pytest.raises(InputError, match="per-item"):
        ExperimentConfig(annotators="n=5,per-item=1").check()

"""Experiment settings are parsed and checked once, by ExperimentConfig.check, and handed on."""

from __future__ import annotations

import re

import pytest

from activemine.errors import InputError
from activemine.experiments.runner import count_steps, run_experiment
from activemine.experiments.settings import ExperimentConfig, ExperimentSettings, RunSpec


def _config(**kw) -> ExperimentConfig:
    base = dict(
        dataset="digits",
        task="binary:3",
        labeled_size=150,
        pool_size=600,
        budget=40,
        strategies=("random", "lc+near-duplicates", "hw-light"),
        variants={"hw-light": ("hw", {"weak_trees": 5})},
        seeds=(0,),
        mode="multi-round",
        rounds=2,
        model="logreg",
        full_seeds=0,
        n_jobs=1,
        annotators="n=3,noise=0.1",
        duplicates=(5, 2),
        stopping={"stop_set_size": 100},
    )
    base.update(kw)
    return ExperimentConfig(**base)


def test_check_returns_every_setting_parsed():
    settings = _config().check()
    assert isinstance(settings, ExperimentSettings)
    assert [r.name for r in settings.runs] == ["random", "lc+near-duplicates", "hw-light"]
    lc = settings.run("lc+near-duplicates")
    assert (lc.variant, lc.strategy, lc.diversity.near_duplicates) == ("lc", "lc", "auto") and lc.reads_pool_proba
    hw = settings.run("hw-light")
    # the experiment's HW options, then the variant's own
    assert (hw.variant, hw.strategy, hw.diversity) == ("hw-light", "hw", None)
    assert dict(hw.kwargs) == {"oof_method": "refit", "weak_trees": 5}
    assert not hw.reads_pool_proba
    assert settings.annotators.n == 3 and settings.annotators.noise == pytest.approx(0.1)
    assert settings.stop.stop_set_size == 100
    assert settings.duplicates == (5, 2)
    assert not settings.noisy  # the simulated team is the noise
    with pytest.raises(InputError, match="unknown run 'qbc'"):
        settings.run("qbc")


def test_noise_matrix_is_parsed_against_the_class_names():
    settings = _config(annotators=None, noise_matrix="1:0.2,0:0.01").check()
    assert settings.noisy
    assert settings.noise_rates(("not 3", "3")) == {1: 0.2, 0: 0.01}
    assert _config(annotators=None).check().noise_rates(("a", "b")) is None


def test_run_experiment_parses_nothing_again(monkeypatch):
    settings = _config().check()

    def parsed_again(*a, **k):
        raise AssertionError("a setting was parsed again after the check")

    import activemine.annotators.simulation as simulation
    import activemine.budget.report as report
    import activemine.experiments.settings as settings_module

    monkeypatch.setattr(simulation, "parse_annotator_spec", parsed_again)
    monkeypatch.setattr(report.StopSettings, "from_dict", parsed_again)
    monkeypatch.setattr(settings_module, "split_run_name", parsed_again)
    monkeypatch.setattr(settings_module, "parse_duplicates", parsed_again)
    monkeypatch.setattr(ExperimentConfig, "check", parsed_again)
    steps = []
    results = run_experiment(settings, progress=steps.append)
    assert len(steps) == count_steps(settings)
    assert [r["strategy"] for r in results["runs"]] == ["random", "lc+near-duplicates", "hw-light"]
    assert results["config"]["duplicates"] == [5, 2] and results["config"]["strategies"][2] == "hw-light"


def test_a_run_spec_is_frozen():
    spec = RunSpec("lc", "lc", "lc", {}, None)
    with pytest.raises(AttributeError):
        spec.strategy = "hw"


def test_committee_and_dirty_data_options_reach_the_runs_and_are_checked_as_in_mine():
    settings = _config(
        strategies=("qbc", "hw", "hw-light"),
        variants={"hw-light": ("hw", {"oof_method": "refit"})},
        committee="seeded",
        committee_size=2,
        disagreement="bald",
        model="cnn",
        oof_method="embedding-head",
    ).check()
    assert dict(settings.run("qbc").kwargs) == {"committee": "seeded", "committee_size": 2, "disagreement": "bald"}
    assert dict(settings.run("hw").kwargs) == {"oof_method": "embedding-head"}
    assert dict(settings.run("hw-light").kwargs) == {"oof_method": "refit"}  # a variant's own setting wins
    bad = [
        (dict(committee="pairs"), "unknown committee 'pairs'"),
        (dict(disagreement="loud"), "unknown disagreement 'loud'"),
        (dict(committee="dropout"), "committee='dropout' needs a network"),
        (dict(oof_method="cheap"), "unknown out-of-fold method 'cheap'"),
        (dict(oof_method="embedding-head"), "the model is 'logreg', which has no penultimate layer"),
        (dict(oof_method="embedding-head", model="cnn", strategies=("lc",)), "none of the strategies ['lc'] is hw"),
    ]
    for kw, message in bad:
        with pytest.raises(InputError, match=re.escape(message)):
            _config(**{"strategies": ("qbc", "hw"), "variants": {}, **kw}).check()

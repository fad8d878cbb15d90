"""``activemine experiment`` with planted near-duplicates and diverse runs."""

import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.errors import InputError
from activemine.experiments.runner import ExperimentConfig, run_experiment
from activemine.experiments.settings import parse_duplicates, split_run_name

runner = CliRunner()


def test_planted_copies_are_reported_and_suppression_keeps_one_per_source():
    config = ExperimentConfig(
        dataset="digits",
        task="binary:8",
        labeled_size=300,
        budget=60,
        pool_size=900,
        strategies=["lc", "lc+near-duplicates", "lc+clusters:10"],
        seeds=[0],
        model="logreg",
        full_seeds=0,
        duplicates=(15, 6),
    )
    results = run_experiment(config)
    runs = {r["strategy"]: r for r in results["runs"]}
    assert runs["lc"]["copies"] > runs["lc"]["sources"]  # plain lc takes several copies of the hard sources
    nd = runs["lc+near-duplicates"]
    assert nd["copies"] == nd["sources"] == 15  # every source once, no copy twice
    assert nd["diversity"]["auto"] and nd["diversity"]["radius"] > 0
    assert runs["lc+clusters:10"]["diversity"]["clusters"] == 10
    assert all(r["labels"] == 360 for r in results["runs"])
    assert results["config"]["duplicates"] == [15, 6]


def test_run_names_and_duplicates_parse():
    assert split_run_name("hw")[0] == "hw" and split_run_name("hw")[1] is None
    base, opts = split_run_name("hw+near-duplicates:0.5")
    assert base == "hw" and opts.near_duplicates == 0.5
    base, opts = split_run_name("lc+clusters", clusters=50, candidate_factor=3)
    assert base == "lc" and opts.clusters == 50 and opts.factor == 3
    assert parse_duplicates("300,30") == (300, 30)
    with pytest.raises(InputError, match="R,C"):
        parse_duplicates("300")
    with pytest.raises(InputError, match="R >= 1"):
        parse_duplicates("0,5")


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--duplicates", "3"], "--duplicates takes R,C"),
        (["--near-duplicates", "-2"], "radius must be a finite number >= 0"),
        (["--strategies", "lc+clusters:5000"], "--clusters 5000 is more than the 1047 rows"),
        (["--strategies", "lc+near-duplicates", "--candidate-factor", "0.2"], "candidate factor must be a number >= 1"),
    ],
)
def test_bad_experiment_options_exit_2_before_any_fit(tmp_path, extra, match, monkeypatch):
    import activemine.experiments.evaluation as experiment

    monkeypatch.setattr(experiment, "_evaluate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("fitted")))
    out = tmp_path / "exp"
    result = runner.invoke(
        app,
        [
            "experiment",
            "--dataset",
            "digits",
            "--labeled-size",
            "300",
            "--budget",
            "50",
            "--strategies",
            "lc",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ],
    )
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert match in text
    assert not out.exists()

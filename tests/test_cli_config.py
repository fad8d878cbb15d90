"""--config FILE, options in help panels, and the settings used written with the output."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.cli._config import SETTINGS_METADATA_KEY

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, " ".join(text.split())


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(int)
    lab = {"id": np.arange(100), "f0": X[:100, 0], "f1": X[:100, 1], "f2": X[:100, 2], "y": y[:100]}
    pool = {"id": np.arange(100, 400), "f0": X[100:, 0], "f1": X[100:, 1], "f2": X[100:, 2]}
    pq.write_table(pa.table(lab), tmp_path / "L.parquet")
    pq.write_table(pa.table(pool), tmp_path / "U.parquet")
    return tmp_path


def _config(path, text):
    path.write_text(text)
    return path


def test_options_come_from_the_file_and_flags_on_the_command_line_win(files):
    config = _config(
        files / "mine.toml",
        f'pool = "{files / "U.parquet"}"\nlabeled = "{files / "L.parquet"}"\nlabel-col = "y"\n'
        "budget = 30\nstrategy = 'lc'\nmodel = 'logreg'\nn_jobs = 1\n",
    )
    code, text = invoke("mine", "--config", config, "--budget", 12, "--out", files / "B.parquet", "-q")
    assert code == 0, text
    batch = pq.read_table(files / "B.parquet")
    assert batch.num_rows == 12  # the flag beat the file's 30
    assert set(batch.column("strategy").to_pylist()) == {"lc"}  # from the file, not the default hw
    used = json.loads(batch.schema.metadata[SETTINGS_METADATA_KEY])
    assert used["command"] == "mine"
    assert used["settings"]["budget"] == 12 and used["settings"]["strategy"] == "lc"
    assert used["settings"]["model"] == "logreg" and used["settings"]["seed"] == 0  # a default, recorded too


def test_a_command_table_wins_over_the_top_of_the_file(files):
    config = _config(
        files / "all.toml",
        f'model = "lightgbm"\n[mine]\npool = "{files / "U.parquet"}"\nlabeled = "{files / "L.parquet"}"\n'
        'label-col = "y"\nbudget = 7\nmodel = "logreg"\nstrategy = "lc"\n'
        '[clean]\npolicy = "review"\n',
    )
    code, text = invoke("mine", "--config", config, "--out", files / "B.parquet", "-q")
    assert code == 0, text
    used = json.loads(pq.read_schema(files / "B.parquet").metadata[SETTINGS_METADATA_KEY])["settings"]
    assert used["model"] == "logreg" and used["budget"] == 7


def test_a_batch_is_reproduced_from_its_own_settings(files):
    args = ["--pool", files / "U.parquet", "--labeled", files / "L.parquet", "--label-col", "y"]
    args += ["--budget", 25, "--strategy", "lc", "--model", "logreg", "--seed", 3, "--easy-share", 0.2, "-q"]
    code, text = invoke("mine", *args, "--out", files / "first.parquet")
    assert code == 0, text
    code, text = invoke("mine", "--config", files / "first.parquet", "--out", files / "again.csv", "-q")
    assert code == 0, text
    first = pq.read_table(files / "first.parquet").column("id").to_pylist()
    again = pa.csv.read_csv(files / "again.csv").column("id").to_pylist()
    assert again == first
    # a CSV has no metadata: its settings go beside it, as a file --config reads
    sidecar = files / "again.csv.settings.toml"
    code, text = invoke("mine", "--config", sidecar, "--out", files / "third.parquet", "-q")
    assert code == 0, text
    assert pq.read_table(files / "third.parquet").column("id").to_pylist() == first


@pytest.mark.parametrize(
    "text, match",
    [
        ("budgte = 5\n", "unknown key 'budgte'"),
        ("[mine]\nnear-dupes = 'auto'\n", "unknown key 'near-dupes'"),
        ("budget = [\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_is_an_error_that_names_the_key(files, text, match):
    config = _config(files / "bad.toml", text)
    code, out = invoke("mine", "--config", config, "--out", files / "B.parquet")
    assert code == 2
    assert match in out
    assert "budget" in out or "TOML" in out  # the message lists the keys the command takes
    assert not (files / "B.parquet").exists()


def test_a_missing_config_file_is_an_error(files):
    code, out = invoke("mine", "--config", files / "nope.toml", "--out", files / "B.parquet")
    assert code == 2 and "nope.toml" in out


@pytest.mark.parametrize(
    "command, panels",
    [
        (["mine"], ["Input options", "Strategy options", "Model options", "HW and dirty data options"]),
        (["experiment"], ["Input options", "Simulated annotators options", "Evaluation and stopping options"]),
        (["clean"], ["Input options", "Model options", "HW and dirty data options", "Output options"]),
        (["campaign", "mine"], ["Arguments", "Strategy options", "Near-duplicates and diversity options"]),
    ],
)
def test_help_groups_the_options_in_panels(command, panels):
    code, out = invoke(*command, "--help")
    assert code == 0
    positions = [out.index(p) for p in panels]
    assert positions == sorted(positions)
    assert "--config" in out and "Other options" in out


def test_campaign_mine_records_its_settings_in_the_round(tmp_path):
    from _campaign_helpers import proba_campaign
    from activemine.campaign import CampaignStore

    proba_campaign(tmp_path, 300)
    config = _config(tmp_path / "round.toml", "[campaign.mine]\nbudget = 30\nstrategy = 'lc'\nseed = 4\n")
    code, out = invoke("campaign", "mine", tmp_path / "camp", "--config", config, "--seed", 5, "-q")
    assert code == 0, out
    (params,) = CampaignStore(tmp_path / "camp").read("SELECT params FROM rounds WHERE round = 1")
    settings = json.loads(params[0])["settings"]
    assert (settings["budget"], settings["strategy"], settings["seed"]) == (30, "lc", 5)

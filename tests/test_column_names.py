"""Column names carry through: one default label column everywhere, the campaign's id column in every campaign
command, and a missing column named with all the columns there are."""

import csv
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_files
from activemine.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """L and U with the label column named ``label``, ``y`` (the old default) and ``target``; ids ``post_id``."""
    base = tmp_path_factory.mktemp("columns")
    L, U, truth = digits_files(base, n_pool=200)
    table, pool = pq.read_table(L), pq.read_table(U)
    out = {"truth": truth, "base": base}
    for name in ("label", "y", "target"):
        t = table.rename_columns([("post_id" if c == "id" else name if c == "y" else c) for c in table.column_names])
        pq.write_table(t, base / f"L_{name}.parquet")
        t.to_pandas().to_csv(base / f"L_{name}.csv", index=False)
    pq.write_table(pool.rename_columns(["post_id" if c == "id" else c for c in pool.column_names]), base / "U.parquet")
    return out


OLD = "has no column 'label' (the default label column) but has 'y', the old default, so 'y' is read"


def _commands(files, tmp_path, labeled):
    base = files["base"]
    return {
        "mine": (
            "mine", "--pool", base / "U.parquet", "--labeled", labeled, "--id-col", "post_id", "--budget", 5,
            "--strategy", "random", "--out", tmp_path / "batch.parquet", "-q",
        ),
        "clean": ("clean", "--labeled", labeled, "--id-col", "post_id", "--out", tmp_path / "c.parquet", "--folds", 2,
                  "--model", "logreg", "-q"),
        "campaign init": (
            "campaign", "init", tmp_path / "camp", "--pool", base / "U.parquet", "--labeled", labeled,
            "--id-col", "post_id", "-q",
        ),
    }  # fmt: skip


@pytest.mark.parametrize("command", ["mine", "clean", "campaign init"])
@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_every_command_reads_label_by_default(files, tmp_path, command, suffix):
    labeled = files["base"] / f"L_label.{suffix}"
    code, text = invoke(*_commands(files, tmp_path, labeled)[command])
    assert code == 0, text
    assert "warning" not in text


@pytest.mark.parametrize("command", ["mine", "clean", "campaign init"])
def test_the_old_default_y_is_still_read_with_a_warning(files, tmp_path, command):
    labeled = files["base"] / "L_y.parquet"
    code, text = invoke(*_commands(files, tmp_path, labeled)[command])
    assert code == 0, text
    flat = " ".join(text.split())
    assert f"warning: {labeled} {OLD}; pass --label-col y or rename the column" in flat, text


@pytest.mark.parametrize("command", ["mine", "clean", "campaign init"])
def test_a_missing_label_column_is_named_with_every_column_there_is(files, tmp_path, command):
    labeled = files["base"] / "L_target.parquet"
    names = pq.read_schema(labeled).names
    assert len(names) == 66 and names[-1] == "target"
    code, text = invoke(*_commands(files, tmp_path, labeled)[command])
    assert code == 2, text
    flat = "".join(text.split())  # the message wraps at the terminal width
    assert "".join(f"hasnocolumn(s)['label'];its66columnsare{names}".split()) in flat, text
    assert not (tmp_path / "camp" / "campaign.db").exists()


def test_experiment_reads_label_or_the_old_y_from_a_users_file(files, tmp_path):
    common = ("experiment", "--task", "multiclass", "--labeled-size", 60, "--budget", 10, "--strategies", "random",
              "--model", "logreg", "--quiet")  # fmt: skip
    code, text = invoke(*common, "--dataset", files["base"] / "L_target.parquet", "--out", tmp_path / "a")
    assert code == 2 and "hasnocolumn(s)['label'];its66columnsare" in "".join(text.split()), text
    code, text = invoke(*common, "--dataset", files["base"] / "L_y.parquet", "--out", tmp_path / "b")
    assert code == 0 and OLD in " ".join(text.split()), text


def test_the_campaigns_id_column_is_used_by_every_campaign_command(files, tmp_path):
    base, truth = files["base"], files["truth"]
    camp = tmp_path / "camp"
    code, text = invoke(*_commands(files, tmp_path, base / "L_label.parquet")["campaign init"])
    assert code == 0, text
    code, text = invoke("campaign", "mine", camp, "--budget", 10, "--strategy", "random", "-q")
    assert code == 0, text
    # CSV: the header names the campaign's id column, and the same file imports back
    code, text = invoke("campaign", "export", camp, "--out", tmp_path / "r.csv")
    assert code == 0, text
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert list(rows[0])[:2] == ["post_id", "label"] and "id" not in rows[0]
    with (tmp_path / "half.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "label": truth[int(r["post_id"])]} for r in rows[:5])
    code, text = invoke("campaign", "import", camp, tmp_path / "half.csv", "--annotator", "kim", "-q")
    assert code == 0 and "5 labels added" in text, text
    # JSONL likewise
    code, text = invoke("campaign", "export", camp, "--format", "jsonl", "--out", tmp_path / "r.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all("post_id" in x and "id" not in x for x in lines)
    (tmp_path / "rest.jsonl").write_text("".join(json.dumps(dict(x, label=truth[x["post_id"]])) + "\n" for x in lines))
    code, text = invoke("campaign", "import", camp, tmp_path / "rest.jsonl", "--annotator", "kim", "-q")
    assert code == 0 and "5 labels added" in text, text
    # a file that names the id plainly `id` (older exports, hand-made files) is read too
    (tmp_path / "plain.csv").write_text("id,label\n" + f"{rows[0]['post_id']},{truth[int(rows[0]['post_id'])]}\n")
    code, text = invoke("campaign", "import", camp, tmp_path / "plain.csv", "--annotator", "kim", "-q")
    assert code == 0 and "1 already present" in text.replace(",", ""), text
    (tmp_path / "wrong.csv").write_text("ident,label\n1,1\n")
    code, text = invoke("campaign", "import", camp, tmp_path / "wrong.csv", "-q")
    assert code == 2 and "missing ['id']; expected post_id,label[,annotator] (or id for the id)" in text, text
    # the dataset and a batch of `mine` carry the same name
    code, text = invoke("campaign", "dataset", camp, "--out", tmp_path / "train.parquet", "-q")
    assert code == 0 and pq.read_schema(tmp_path / "train.parquet").names[0] == "post_id", text
    assert pq.read_schema(tmp_path / "train.parquet").names[-1] == "label"
    code, text = invoke(*_commands(files, tmp_path, tmp_path / "train.parquet")["mine"])
    assert code == 0, text
    assert pq.read_schema(tmp_path / "batch.parquet").names[0] == "post_id"

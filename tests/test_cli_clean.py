import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_blobs
from typer.testing import CliRunner

from activemine.cli import app
from activemine.simulate import inject_label_noise

runner = CliRunner()
NAMES = np.array(["bolt", "nut", "washer"])


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, " ".join(text.split())


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    X, y = make_blobs(n_samples=450, centers=3, n_features=4, cluster_std=1.2, random_state=5)
    noisy, flipped = inject_label_noise(NAMES[y], 0.1, random_state=0)
    path = tmp_path_factory.mktemp("clean") / "L.parquet"
    cols = {"id": np.arange(1000, 1450), "label": noisy, **{f"f{j}": X[:, j] for j in range(4)}}
    pq.write_table(pa.table(cols), path)
    return path, flipped


def test_clean_writes_actions_and_prints_dirty_share(labeled, tmp_path):
    path, flipped = labeled
    out = tmp_path / "issues.parquet"
    code, text = invoke("clean", "--labeled", path, "--label-col", "label", "--id-col", "id", "--model", "logreg",
                        "--out", out, "--max-dirty", "0.02", "--rule", "target")  # fmt: skip
    assert code == 0, text
    before = float(text.split("dirty share before: ")[1].split("%")[0])
    after = float(text.split("dirty share after: ")[1].split("%")[0])
    assert 5.0 < before < 15.0 and after <= 2.0
    table = pq.read_table(out)
    assert table.column_names == ["id", "given_label", "suggested_label", "label_quality", "action"]
    t = table.to_pydict()
    assert t["id"] == list(range(1000, 1450))
    action = np.array(t["action"])
    assert set(action) <= {"drop", "review", "keep"} and (action == "drop").any()
    assert flipped[action == "drop"].mean() >= 0.8
    given, suggested = np.array(t["given_label"]), np.array(t["suggested_label"])
    assert (given[action == "keep"] == suggested[action == "keep"]).all()
    assert (given[action == "drop"] != suggested[action == "drop"]).all()
    assert set(suggested) <= set(NAMES)


def test_clean_review_policy_drops_nothing(labeled, tmp_path):
    path, _ = labeled
    out = tmp_path / "issues.csv"
    code, text = invoke("clean", "--labeled", path, "--label-col", "label", "--model", "logreg", "--out", out,
                        "--policy", "review", "--folds", "3")  # fmt: skip
    assert code == 0, text
    action = pcsv.read_csv(out).column("action").to_pylist()
    assert "drop" not in action and "review" in action


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--label-col", "missing"], "no column(s) ['missing']"),
        (["--label-col", "label", "--policy", "fix"], "--policy must be prune or review"),
        (["--label-col", "label", "--max-dirty", "1.5"], "max_dirty must be in [0, 1)"),
        (["--label-col", "label", "--folds", "1"], "folds must be an integer >= 2"),
    ],
)
def test_clean_bad_input_exits_2_and_writes_nothing(labeled, tmp_path, extra, message):
    path, _ = labeled
    out = tmp_path / "issues.parquet"
    code, text = invoke("clean", "--labeled", path, "--model", "logreg", "--out", out, *extra)
    assert code == 2 and message in text, text
    assert not out.exists() and list(tmp_path.iterdir()) == []

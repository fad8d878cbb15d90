import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_blobs
from typer.testing import CliRunner

from activemine.cli import app
from activemine.experiments.noise import inject_label_noise

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
    code, text = invoke(
        "clean",
        "--labeled",
        path,
        "--label-col",
        "label",
        "--id-col",
        "id",
        "--model",
        "logreg",
        "--out",
        out,
        "--max-dirty",
        "0.02",
        "--rule",
        "target",
    )
    assert code == 0, text
    assert "out-of-fold probabilities: refit, " in text and "network fit" not in text
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
    code, text = invoke(
        "clean",
        "--labeled",
        path,
        "--label-col",
        "label",
        "--model",
        "logreg",
        "--out",
        out,
        "--policy",
        "review",
        "--folds",
        "3",
    )
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
        (["--oof-method", "cheap"], "unknown out-of-fold method 'cheap'; expected one of ['refit', 'embedding-head']"),
        (["--oof-method", "embedding-head"], "but the model is 'logreg', which has no penultimate layer"),
        (
            ["--oof-method", "embedding-head", "--oof-proba-prefix", "oof_", "--rule", "target"],
            "--oof-method embedding-head computes out-of-fold probabilities; L brings its own",
        ),
    ],
)
def test_clean_bad_input_exits_2_and_writes_nothing(labeled, tmp_path, extra, message):
    path, _ = labeled
    out = tmp_path / "issues.parquet"
    code, text = invoke("clean", "--labeled", path, "--model", "logreg", "--out", out, *extra)
    assert code == 2 and message in text, text
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_clean_writes_soft_label_columns_only_when_they_win(tmp_path):
    from sklearn.datasets import make_classification

    from activemine.dirty import out_of_fold_proba

    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=8, weights=[0.9], class_sep=1.0, random_state=1
    )
    clean = out_of_fold_proba("lightgbm", X, y, 2, seed=99, n_jobs=1)
    noisy, _ = inject_label_noise(y, 0.2, kind="ambiguous", proba=clean, random_state=1)
    names = np.array(["neg", "pos"])  # sorted as 0, 1: the same stratified folds as the library test
    for labels, wins in ((names[noisy], True), (names[y], False)):
        path, out = tmp_path / f"L{wins}.parquet", tmp_path / f"out{wins}.parquet"
        pq.write_table(
            pa.table({"id": np.arange(2000), "label": labels, **{f"f{j}": X[:, j] for j in range(20)}}), path
        )
        code, text = invoke(
            "clean",
            "--labeled",
            path,
            "--label-col",
            "label",
            "--model",
            "fast",
            "--out",
            out,
            "--folds",
            "3",
            "--seed",
            "1",
            "--n-jobs",
            "1",
        )
        assert code == 0, text
        assert "held-out AUC gain of soft labels" in text
        table = pq.read_table(out)
        if not wins:
            assert "not significant" in text and table.column_names[-1] == "action"
            continue
        assert "written as soft_<class> columns" in text
        soft = np.column_stack([table.column("soft_neg").to_numpy(), table.column("soft_pos").to_numpy()])
        np.testing.assert_allclose(soft.sum(axis=1), 1.0)
        given = np.array(table.column("given_label").to_pylist())
        # the given label keeps at least 1 - alpha of each row's weight
        assert np.all(np.where(given == "neg", soft[:, 0], soft[:, 1]) >= 0.2 - 1e-9)


def test_clean_reports_progress_as_timestamped_lines_and_quiet_silences_them(labeled, tmp_path, monkeypatch):
    import re

    path, _ = labeled
    monkeypatch.setenv("ACTIVEMINE_PROGRESS_INTERVAL", "0")
    args = ("clean", "--labeled", path, "--label-col", "label", "--model", "logreg", "--folds", "3", "--n-jobs", "1")
    code, text = invoke(*args, "--out", tmp_path / "a.parquet")
    assert code == 0, text
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d checking the labels of 450 rows"
    assert re.search(stamp + ": started", text) and re.search(stamp + r": done, \d+ model fits in", text), text
    code, text = invoke(*args, "--out", tmp_path / "b.parquet", "--quiet")
    assert code == 0 and "checking the labels" not in text, text


def test_soft_label_verdict_names_a_second_fold_split():
    from dataclasses import replace

    from activemine.cli.clean import _verdicts
    from activemine.dirty import DirtyDataReport

    n = 3
    report = DirtyDataReport(
        policy="prune",
        keep=np.ones(n, bool),
        suspect=np.zeros(n, bool),
        action=np.array(["keep"] * n),
        label_quality=np.ones(n),
        suggested=np.zeros(n, int),
        dirty_share_before=0.0,
        dirty_share_after=0.0,
        max_dirty=0.02,
        rule="adaptive",
        dirty=False,
        soft_gain=0.01,
        soft_z=3.0,
        soft_splits=2,
    )
    assert "(z 3.00, 2 fold splits): not significant" in _verdicts(report, True)[0]
    assert "(z 3.00): not significant" in _verdicts(replace(report, soft_splits=1), True)[0]

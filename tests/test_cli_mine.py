import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.selection.strategies import HW_WEAK_TREES

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, " ".join(text.split())


def write(path, columns):
    table = pa.table(columns)
    (pq.write_table if path.suffix == ".parquet" else pcsv.write_csv)(table, path)
    return path


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(int)
    lab = {"id": np.arange(100), "f0": X[:100, 0], "f1": X[:100, 1], "f2": X[:100, 2], "y": y[:100]}
    pool = {"id": np.arange(100, 400), "f0": X[100:, 0], "f1": X[100:, 1], "f2": X[100:, 2]}
    p1 = 1 / (1 + np.exp(-X[100:, 0]))
    proba_pool = {"id": np.arange(100, 400), "p0": 1 - p1, "p1": p1}
    return {
        "labeled": write(tmp_path / "L.parquet", lab),
        "pool": write(tmp_path / "U.parquet", pool),
        "labeled_csv": write(tmp_path / "L.csv", lab),
        "pool_csv": write(tmp_path / "U.csv", pool),
        "proba": write(tmp_path / "P.parquet", proba_pool),
        "dir": tmp_path,
    }


def mine_args(files, *, labeled=None, pool=None, out=None, budget=20, extra=()):
    return [
        "mine",
        "--labeled",
        labeled or files["labeled"],
        "--pool",
        pool or files["pool"],
        "--label-col",
        "y",
        "--id-col",
        "id",
        "--budget",
        budget,
        "--model",
        "logreg",
        "--seed",
        "0",
        "--out",
        out or files["dir"] / "batch.parquet",
        *extra,
    ]


@pytest.mark.parametrize("strategy", ["hw", "lc", "qbc", "random"])
def test_mine_writes_the_batch(files, strategy):
    out = files["dir"] / "batch.parquet"
    # HW's defaults are no quotas and no easy share; both one option away
    quotas = ["--balance", "equal", "--easy-share", "0.1"] if strategy == "hw" else []
    code, text = invoke(*mine_args(files, out=out, extra=["--strategy", strategy, "--committee-size", "2", *quotas]))
    assert code == 0, text
    batch = pq.read_table(out)
    assert batch.column_names == ["id", "score", "predicted_class", "stratum", "strategy"]
    assert batch.num_rows == 20
    assert set(batch.column("id").to_pylist()) <= set(range(100, 400))
    assert set(batch.column("strategy").to_pylist()) == {strategy}
    assert "20 samples selected" in text
    if strategy == "hw":
        assert sorted(set(batch.column("stratum").to_pylist())) == ["easy", "hard"]
        assert batch.column("predicted_class").to_pylist().count(0) == 10  # equal quotas
        assert "dirty-data check of L (refit): " in text and " model fits in " in text  # what it cost
    else:
        assert "dirty-data check of L" not in text


def test_csv_in_and_out_gives_the_same_batch_as_parquet(files):
    code, _ = invoke(*mine_args(files, out=files["dir"] / "a.parquet"))
    assert code == 0
    code, text = invoke(
        *mine_args(files, labeled=files["labeled_csv"], pool=files["pool_csv"], out=files["dir"] / "b.csv")
    )
    assert code == 0, text
    a = pq.read_table(files["dir"] / "a.parquet").column("id").to_pylist()
    b = pcsv.read_csv(files["dir"] / "b.csv").column("id").to_pylist()
    assert a == b


def test_precomputed_probabilities_without_labeled_set(files):
    out = files["dir"] / "p.parquet"
    code, text = invoke(
        "mine", "--pool", files["proba"], "--budget", 10, "--strategy", "lc", "--proba-cols", "p0,p1", "--out", out
    )
    assert code == 0, text
    ids = pq.read_table(out).column("id").to_pylist()
    proba = pq.read_table(files["proba"]).to_pydict()
    closest = sorted(zip(np.abs(np.array(proba["p1"]) - 0.5), proba["id"]))[:10]
    assert sorted(ids) == sorted(i for _, i in closest)


def test_chunk_size_does_not_change_the_batch(files):
    runs = []
    for chunk in (7, 1000):
        out = files["dir"] / f"c{chunk}.parquet"
        code, _ = invoke(*mine_args(files, out=out, extra=["--chunk-size", chunk]))
        assert code == 0
        runs.append(pq.read_table(out).to_pydict())
    assert runs[0] == runs[1]


def bad_proba(files, values):
    p = values(np.full((300, 2), 0.5))
    return write(files["dir"] / "bad.parquet", {"id": np.arange(100, 400), "p0": p[:, 0], "p1": p[:, 1]})


def _nan(p):
    p[5, 0] = np.nan
    return p


def _unnormalized(p):
    p[7] = [0.9, 0.8]
    return p


@pytest.mark.parametrize(
    "case, message",
    [
        ("nan", "NaN"),
        ("unnormalized", "sum to 1"),
        ("duplicate_ids", "must be unique"),
        ("missing_column", "no column(s) ['f2']"),
        ("missing_proba_column", "no column(s) ['p9']"),
        ("unknown_labels", "labels [7]"),
        ("budget_too_large", "budget 301 is larger than the 300"),
        ("empty_pool", "has no rows"),
        ("single_class", "only class [1]"),
        ("bad_suffix", "cannot tell the format"),
        ("missing_file", "file not found"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(files, case, message):
    out = files["dir"] / "never.parquet"
    d = files["dir"]
    lab = pq.read_table(files["labeled"]).to_pydict()
    pool = pq.read_table(files["pool"]).to_pydict()
    if case in ("nan", "unnormalized"):
        path = bad_proba(files, _nan if case == "nan" else _unnormalized)
        args = ["mine", "--pool", path, "--budget", 5, "--strategy", "lc", "--proba-cols", "p0,p1", "--out", out]
    elif case == "missing_proba_column":
        args = ["mine", "--pool", files["proba"], "--budget", 5, "--proba-cols", "p0,p9", "--out", out]
    elif case == "duplicate_ids":
        pool["id"][3] = pool["id"][4]
        args = mine_args(files, pool=write(d / "dup.parquet", pool), out=out)
    elif case == "missing_column":
        del pool["f2"]
        args = mine_args(files, pool=write(d / "nof2.parquet", pool), out=out)
    elif case == "unknown_labels":
        lab = {"id": [1, 2, 3], "y": [0, 1, 7]}
        args = [
            "mine",
            "--labeled",
            write(d / "l7.parquet", lab),
            "--pool",
            files["proba"],
            "--budget",
            5,
            "--strategy",
            "lc",
            "--proba-cols",
            "p0,p1",
            "--out",
            out,
        ]
    elif case == "budget_too_large":
        args = mine_args(files, budget=301, out=out)
    elif case == "empty_pool":
        empty = {k: np.asarray(v)[:0] for k, v in pool.items()}
        args = mine_args(files, pool=write(d / "empty.parquet", empty), out=out)
    elif case == "single_class":
        lab["y"] = [1] * len(lab["y"])
        args = mine_args(files, labeled=write(d / "one.parquet", lab), out=out)
    elif case == "bad_suffix":
        out = d / "batch.xlsx"
        args = mine_args(files, out=out)
    else:
        args = mine_args(files, pool=d / "nowhere.parquet", out=out)
    code, text = invoke(*args)
    assert code == 2, text
    assert message in text
    assert not out.exists()
    assert not [p for p in d.iterdir() if p.name.startswith(".never")], "no temporary file left behind"


def test_weak_model_options_reach_hw(files):
    from activemine.cli._strategy_options import StrategyOptions

    hw = StrategyOptions("hw", "lightgbm", 0, None, None, 0.5, 3, "vote", weak_trees=0).build()
    assert hw.weak_trees is None and hw.weak_fraction == 0.5  # 0 trees: a weak model trained on half of L
    assert StrategyOptions("hw", "lightgbm", 0, None, None, 0.3, 3, "vote").build().weak_trees == HW_WEAK_TREES == "all"
    for text, weak_trees in (("20", 20), ("all", "all")):
        assert (
            StrategyOptions("hw", "lightgbm", 0, None, None, 0.3, 3, "vote", weak_trees=text).build().weak_trees
            == weak_trees
        )
    out = files["dir"] / "never.parquet"
    for bad in ("-1", "many"):
        code, text = invoke(*mine_args(files, out=out, extra=["--weak-trees", bad]))
        assert code == 2 and f"--weak-trees must be 'all' or an integer 0 or more, got '{bad}'" in text
        assert not out.exists()


def test_oof_method_is_checked_before_anything_is_read(files):
    out = files["dir"] / "never.parquet"
    cases = [
        (["--oof-method", "cheap"], "unknown out-of-fold method 'cheap'"),
        (["--oof-method", "embedding-head"], "the model is 'logreg', which has no penultimate layer"),
        (["--strategy", "lc", "--oof-method", "embedding-head"], "--strategy lc has no dirty-data step"),
    ]
    for extra, message in cases:
        code, text = invoke(*mine_args(files, out=out, extra=extra))
        assert code == 2 and message in " ".join(text.split()), text
        assert not out.exists()


def test_n_jobs_reaches_the_strategy_models(files, monkeypatch):
    import activemine.models as models

    seen = []
    real = models.make_model

    def recording(model="lightgbm", *, random_state=0, n_jobs=None):
        seen.append(n_jobs)
        return real(model, random_state=random_state, n_jobs=n_jobs)

    monkeypatch.setattr(models, "make_model", recording)
    monkeypatch.setattr("activemine.selection.strategies.make_model", recording)
    monkeypatch.setattr("activemine.selection.committee.make_model", recording)
    code, text = invoke(*mine_args(files, extra=["--strategy", "qbc", "--committee-size", "2", "--n-jobs", "1"]))
    assert code == 0, text
    assert seen and set(seen) == {1}


def test_bad_n_jobs_fails_before_any_output(files):
    out = files["dir"] / "none.parquet"
    code, text = invoke(*mine_args(files, out=out, extra=["--strategy", "lc", "--n-jobs", "0"]))
    assert code == 2 and "n_jobs must be a positive integer" in text
    assert not out.exists()


def test_the_summary_line_is_never_wrapped_before_its_unit(monkeypatch):
    import numpy as np

    from activemine.cli._app import console
    from activemine.cli.mine import print_summary
    from activemine.selection.batch import Batch

    n = 12_345
    batch = Batch(np.arange(n), np.zeros(n), np.zeros(n, dtype=np.int64), np.array(["hard"] * n), classes=(0,))
    monkeypatch.setattr(console, "width", 30)
    with console.capture() as cap:
        print_summary(batch, strategy="lc", seconds=12.345, out=None)
    first = cap.get().splitlines()[0]
    assert first == "lc: 12,345 samples selected in 12.35 s"


def test_a_constant_model_gives_a_seeded_batch_and_says_so(files):
    # probabilities of a model that learned nothing: every row ties, the batch is a seeded draw, not the smallest ids
    out = files["dir"] / "tied.parquet"
    ids = np.arange(100, 400)
    write(files["dir"] / "flat.parquet", {"id": ids, "p0": np.full(ids.size, 0.7), "p1": np.full(ids.size, 0.3)})
    args = ("mine", "--pool", files["dir"] / "flat.parquet", "--budget", 30, "--strategy", "lc")
    code, text = invoke(*args, "--proba-cols", "p0,p1", "--out", out)
    assert code == 0, text
    assert "30 batch rows were taken among 300 rows of equal score (100.0% of the selectable rows)" in text
    chosen = sorted(pq.read_table(out).column("id").to_pylist())
    assert chosen != list(range(100, 130)) and max(chosen) > 300
    again = files["dir"] / "tied-chunks.parquet"
    code, text = invoke(*args, "--proba-cols", "p0,p1", "--out", again, "--chunk-size", 7)
    assert code == 0 and "among 300 rows of equal score" in text
    assert sorted(pq.read_table(again).column("id").to_pylist()) == chosen


def test_hw_difficulty_can_be_turned_off(files):
    # without the difficulty step HW selects with its strong model's least confidence: lc's batch
    batches = {}
    for name, extra in (("lc", ["--strategy", "lc"]), ("hw", ["--strategy", "hw", "--no-adapt-difficulty"])):
        out = files["dir"] / f"{name}.parquet"
        code, text = invoke(*mine_args(files, out=out, extra=extra))
        assert code == 0, text
        batches[name] = sorted(pq.read_table(out).column("id").to_pylist())
    assert batches["hw"] == batches["lc"]

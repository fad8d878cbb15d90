"""``mine`` with near-duplicate suppression and clusters: options, embeddings, exit 2 on bad input."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from activemine.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, " ".join(text.split())


@pytest.fixture()
def pools(tmp_path):
    rng = np.random.default_rng(0)
    n = 600
    emb = rng.standard_normal((n, 4)).astype(np.float32)
    emb[500:] = emb[:10].repeat(10, axis=0) + 0.001 * rng.standard_normal((100, 4)).astype(np.float32)  # 10 x 10 copies
    w1 = rng.random(n)
    w1[500:] = 0.5  # the copies are the hardest rows
    w1[:10] = 0.5
    ids = np.arange(n)
    cols = {"id": ids, "w0": 1 - w1, "w1": w1}
    pq.write_table(pa.table({**cols, **{f"emb_{j}": emb[:, j] for j in range(4)}}), tmp_path / "U.parquet")
    pq.write_table(pa.table(cols), tmp_path / "P.parquet")
    X = rng.standard_normal((n, 3))
    X[500:] = X[:10].repeat(10, axis=0)
    y = (X[:, 0] > 0).astype(int)
    pq.write_table(
        pa.table({"id": ids[:200] + 10_000, "f0": X[:200, 0], "f1": X[:200, 1], "f2": X[:200, 2], "y": y[:200]}),
        tmp_path / "L.parquet",
    )
    bad = emb.copy()
    bad[42, 1] = np.nan
    pq.write_table(
        pa.table({"id": ids, "f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2], **{f"emb_{j}": bad[:, j] for j in range(4)}}),
        tmp_path / "F_nan.parquet",
    )
    pq.write_table(pa.table({"id": ids, "f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2]}), tmp_path / "F.parquet")
    ragged = pa.array([[0.0, 1.0]] * (n - 1) + [[1.0]], type=pa.list_(pa.float32()))
    pq.write_table(pa.table({**cols, "emb": ragged}), tmp_path / "ragged.parquet")
    return tmp_path


def test_mine_suppresses_copies_and_states_the_radius(pools):
    out = pools / "B.parquet"
    code, text = invoke(
        "mine",
        "--pool",
        pools / "U.parquet",
        "--weak-proba-cols",
        "w0,w1",
        "--budget",
        50,
        "--out",
        out,
        "--near-duplicates",
        "auto",
        "--embedding-prefix",
        "emb_",
        "--chunk-size",
        64,
    )
    assert code == 0, text
    assert "radius" in text and "auto" in text
    ids = pq.read_table(out).column("id").to_numpy()
    assert len(ids) == 50
    for source in range(10):  # at most one row of every planted group
        group = np.r_[source, 500 + 10 * source : 510 + 10 * source]
        assert np.isin(ids, group).sum() <= 1


def test_mine_projects_features_when_the_pool_has_no_embedding(pools):
    code, text = invoke(
        "mine",
        "--labeled",
        pools / "L.parquet",
        "--pool",
        pools / "F.parquet",
        "--budget",
        40,
        "--out",
        pools / "B.parquet",
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--near-duplicates",
        "auto",
    )
    assert code == 0, text
    assert "PCA fitted on the labeled set" in text


def test_mine_clusters(pools):
    code, text = invoke(
        "mine",
        "--pool",
        pools / "U.parquet",
        "--weak-proba-cols",
        "w0,w1",
        "--budget",
        30,
        "--out",
        pools / "B.parquet",
        "--diversity",
        "clusters",
        "--clusters",
        8,
        "--embedding-cols",
        "emb_0,emb_1,emb_2,emb_3",
    )
    assert code == 0, text
    assert "Cluster-Margin: 8 clusters" in text


@pytest.mark.parametrize(
    "extra, pool, match",
    [
        (["--near-duplicates", "-1"], "U.parquet", "radius must be a finite number >= 0"),
        (
            ["--near-duplicates", "auto", "--candidate-factor", "0.5"],
            "U.parquet",
            "candidate factor must be a number >= 1",
        ),
        (["--diversity", "clusters", "--clusters", 700], "U.parquet", "--clusters 700 is more than the 600 rows"),
        (["--near-duplicates", "auto"], "P.parquet", "needs embeddings: the pool"),
        (["--near-duplicates", "auto", "--embedding-prefix", "zzz"], "U.parquet", "no column of"),
        (["--near-duplicates", "auto", "--embedding-cols", "emb"], "ragged.parquet", "must be a fixed-size list"),
    ],
)
def test_bad_diversity_input_exits_2_and_writes_nothing(pools, extra, pool, match):
    out = pools / "B.parquet"
    code, text = invoke(
        "mine", "--pool", pools / pool, "--weak-proba-cols", "w0,w1", "--budget", 20, "--out", out, *extra
    )
    assert code == 2, text
    assert match in text
    assert not out.exists()


def test_nan_embedding_fails_before_the_model_is_fitted(pools, monkeypatch):
    import activemine.engines.base as base

    def no_fit(self):
        raise AssertionError("fitted before the embeddings were checked")

    monkeypatch.setattr(base.MiningRun, "fit", no_fit)
    out = pools / "B.parquet"
    code, text = invoke(
        "mine",
        "--labeled",
        pools / "L.parquet",
        "--pool",
        pools / "F_nan.parquet",
        "--budget",
        20,
        "--out",
        out,
        "--near-duplicates",
        "auto",
        "--embedding-prefix",
        "emb_",
    )
    assert code == 2, text
    assert "NaN or infinite values in 1 rows, e.g. row 42" in text
    assert not out.exists()


def _embedding_file(pools, name, rows=None, ids=None, **extra):
    """The embedding columns of U.parquet as a file of their own, rows shuffled (joined by id, not by order)."""
    table = pq.read_table(pools / "U.parquet", columns=["id", "emb_0", "emb_1", "emb_2", "emb_3"])
    order = np.random.default_rng(1).permutation(table.num_rows) if rows is None else rows
    table = table.take(pa.array(order))
    if ids is not None:
        table = table.set_column(0, "id", pa.array(ids))
    for key, values in extra.items():
        table = table.append_column(key, values)
    path = pools / name
    if path.suffix == ".csv":
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def test_mine_joins_an_embedding_file_by_id_and_selects_as_with_columns(pools):
    common = ["--weak-proba-cols", "w0,w1", "--budget", 50, "--near-duplicates", "auto", "--chunk-size", 64]
    code, text = invoke(
        "mine", "--pool", pools / "U.parquet", "--embedding-prefix", "emb_", "--out", pools / "A.parquet", *common
    )
    assert code == 0, text
    expected = pq.read_table(pools / "A.parquet").column("id").to_pylist()
    for name in ("E.parquet", "E.csv"):
        path = _embedding_file(pools, name)
        out = pools / f"B-{name}.parquet"
        code, text = invoke(
            "mine", "--pool", pools / "P.parquet", "--embeddings", path, "--carry-cols", "w1", "--out", out, *common
        )
        assert code == 0, text
        assert f"embedding: {path} joined by id" in text
        batch = pq.read_table(out)
        assert batch.column("id").to_pylist() == expected
        w1 = pq.read_table(pools / "P.parquet").column("w1").to_numpy()
        assert batch.column("w1").to_pylist() == w1[expected].tolist()  # the pool's own column, carried


def test_bad_embedding_file_exits_2_before_any_fit(pools, monkeypatch):
    import activemine.engines.base as base

    def no_fit(self):
        raise AssertionError("fitted before the embedding file was checked")

    monkeypatch.setattr(base.MiningRun, "fit", no_fit)
    n = 600
    ragged = pa.array([[0.0, 1.0]] * (n - 1) + [[1.0]], type=pa.list_(pa.float32()))
    cases = [
        (_embedding_file(pools, "short.parquet", rows=np.arange(590)), [], "10 pool ids have no embedding in"),
        (
            _embedding_file(pools, "dup.parquet", ids=np.r_[np.arange(599), 0]),
            [],
            "ids of the embedding file",
        ),
        (
            _embedding_file(pools, "ragged.parquet", rows=np.arange(n), vec=ragged),
            ["--embedding-cols", "vec"],
            "must be a fixed-size list",
        ),
        (pools / "U.parquet", ["--embedding-cols", "emb_0,emb_9"], "--embedding-cols names columns ['emb_9']"),
    ]
    for path, extra, match in cases:
        out = pools / "B.parquet"
        code, text = invoke(
            "mine",
            "--pool",
            pools / "P.parquet",
            "--weak-proba-cols",
            "w0,w1",
            "--budget",
            20,
            "--out",
            out,
            "--near-duplicates",
            "auto",
            "--embeddings",
            path,
            *extra,
        )
        assert code == 2 and match in text, (match, text)
        assert not out.exists()
    code, text = invoke(
        "mine",
        "--pool",
        pools / "P.parquet",
        "--weak-proba-cols",
        "w0,w1",
        "--budget",
        20,
        "--out",
        pools / "B.parquet",
        "--embeddings",
        pools / "short.parquet",
    )
    assert code == 2 and "--embeddings serves --near-duplicates" in text


def test_campaign_mine_with_near_duplicates(tmp_path):
    from _campaign_helpers import digits_files

    L, U, _ = digits_files(tmp_path)
    camp = tmp_path / "camp"
    code, text = invoke("campaign", "init", camp, "--pool", U, "--labeled", L, "--label-col", "y", "--id-col", "id")
    assert code == 0, text
    code, text = invoke(
        "campaign", "mine", camp, "--budget", 20, "--strategy", "lc", "--model", "logreg", "--near-duplicates", "-1"
    )
    assert code == 2 and "radius must be a finite number >= 0" in text
    code, text = invoke(
        "campaign", "mine", camp, "--budget", 20, "--strategy", "lc", "--model", "logreg", "--near-duplicates", "auto"
    )
    assert code == 0, text
    assert "round 1: 20 samples" in text and "auto" in text  # the failed call made no round

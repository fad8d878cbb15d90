"""Which columns are features: one rule for mine, campaign init, experiment and clean.

Features are named (``--feature-cols``), taken by prefix (``--feature-prefix``),
or default to every numeric column but the id and the label; a column that is
not numeric and not named (a text, a name) is carried along, never refused.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.data.tables import choose_features
from activemine.errors import InputError

runner = CliRunner()

SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.large_string()), ("f0", pa.float64()), ("f1", pa.int32())])


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_the_default_takes_numeric_columns_and_carries_the_others():
    choice = choose_features(SCHEMA, reserved=["id", "y"], where="L")
    assert choice.features == ["f0", "f1"]
    assert choice.carried == ["text"]
    assert "text" in choice.note()


@pytest.mark.parametrize(
    "cols,prefix,features",
    [(["f1"], None, ["f1"]), (["f1", "f0"], None, ["f1", "f0"]), (None, "f", ["f0", "f1"])],
)
def test_features_named_or_by_prefix(cols, prefix, features):
    choice = choose_features(SCHEMA, reserved=["id"], cols=cols, prefix=prefix, where="L")
    assert choice.features == features
    assert "text" in choice.carried and choice.note() is None


@pytest.mark.parametrize(
    "cols,prefix,message",
    [
        (["text"], None, "must be numeric, got [('text', 'large_string')]"),
        (["f9"], None, "has no column(s) ['f9']; its 4 columns are ['id', 'text', 'f0', 'f1']"),
        (["id", "f0"], None, "are also its id, label or split column"),
        (["f0", "f0"], None, "names a column twice"),
        (None, "g", "no column of L starts with --feature-prefix 'g'"),
        (["f0"], "f", "not both"),
    ],
)
def test_bad_feature_choices_are_refused_by_name(cols, prefix, message):
    with pytest.raises(InputError) as err:
        choose_features(SCHEMA, reserved=["id"], cols=cols, prefix=prefix, where="L")
    assert message in str(err.value)


def test_no_numeric_column_is_an_error_listing_the_columns():
    schema = pa.schema([("id", pa.int64()), ("text", pa.string()), ("y", pa.int64())])
    with pytest.raises(InputError, match=r"no numeric feature columns.*\('text', 'string'\)"):
        choose_features(schema, reserved=["id", "y"], where="L")


@pytest.fixture
def text_files(tmp_path):
    """L and U with a text column, a name column and numeric features (a moderation-style pool)."""
    rng = np.random.default_rng(0)
    n, n_l = 400, 80
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(int)
    cols = {
        "post_id": np.array([f"post_{i:05d}" for i in rng.permutation(n)]),
        "text": np.array([f"message <b>{i}</b> [red]x[/red]" for i in range(n)]),
        "author": np.array([f"user{i % 17}" for i in range(n)]),
        "f0": X[:, 0],
        "f1": X[:, 1],
        "g0": X[:, 2],
    }
    L, U = tmp_path / "L.parquet", tmp_path / "U.parquet"
    pq.write_table(pa.table({k: v[:n_l] for k, v in cols.items()} | {"y": y[:n_l]}), L)
    pq.write_table(pa.table({k: v[n_l:] for k, v in cols.items()}), U)
    # the same rows without the text columns: what the features alone give
    bare = {k: v for k, v in cols.items() if k not in ("text", "author")}
    pq.write_table(pa.table({k: v[:n_l] for k, v in bare.items()} | {"y": y[:n_l]}), tmp_path / "L_bare.parquet")
    pq.write_table(pa.table({k: v[n_l:] for k, v in bare.items()}), tmp_path / "U_bare.parquet")
    return tmp_path


def _mine(folder, L, U, out, *extra):
    code, text = invoke(
        "mine",
        "--pool",
        U,
        "--labeled",
        L,
        "--id-col",
        "post_id",
        "--budget",
        30,
        "--out",
        out,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        *extra,
    )
    assert code == 0, text
    # the batch keeps the pool's id column name
    return pq.read_table(out).column("post_id").to_pylist(), text


def test_mine_carries_a_text_column_and_mines_on_the_features(text_files):
    d = text_files
    bare, _ = _mine(d, d / "L_bare.parquet", d / "U_bare.parquet", d / "bare.parquet")
    got, text = _mine(d, d / "L.parquet", d / "U.parquet", d / "b.parquet")
    assert got == bare
    assert "not numeric" in text and "'text'" in text and "'author'" in text
    named, text = _mine(d, d / "L.parquet", d / "U.parquet", d / "n.parquet", "--feature-cols", "f0,f1,g0")
    assert named == bare and "not numeric" not in text
    only_f, _ = _mine(d, d / "L.parquet", d / "U.parquet", d / "p.parquet", "--feature-prefix", "f")
    only_f_named, _ = _mine(d, d / "L.parquet", d / "U.parquet", d / "q.parquet", "--feature-cols", "f0,f1")
    assert only_f == only_f_named != bare


def test_mine_refuses_a_named_text_feature_before_any_work(text_files):
    d = text_files
    code, text = invoke(
        "mine",
        "--pool",
        d / "U.parquet",
        "--labeled",
        d / "L.parquet",
        "--id-col",
        "post_id",
        "--budget",
        30,
        "--out",
        d / "b.parquet",
        "--feature-cols",
        "f0,text",
    )
    assert code != 0
    assert "must be numeric" in text and "text" in text
    assert not (d / "b.parquet").exists()


def test_campaign_init_keeps_a_text_column_to_show(text_files):
    from activemine.campaign import CampaignStore

    d = text_files
    code, text = invoke(
        "campaign",
        "init",
        d / "camp",
        "--pool",
        d / "U.parquet",
        "--labeled",
        d / "L.parquet",
        "--id-col",
        "post_id",
        "--quiet",
    )
    assert code == 0, text
    meta = CampaignStore(d / "camp").meta
    assert meta["features"] == ["f0", "f1", "g0"]
    assert meta["view"] == {"kind": "text", "column": "text"}
    code, text = invoke(
        "campaign",
        "init",
        d / "camp2",
        "--pool",
        d / "U.parquet",
        "--labeled",
        d / "L.parquet",
        "--id-col",
        "post_id",
        "--feature-prefix",
        "f",
        "--quiet",
    )
    assert code == 0, text
    assert CampaignStore(d / "camp2").meta["features"] == ["f0", "f1"]


def test_a_table_view_shows_the_carried_columns_first():
    from activemine.campaign.samples import detect_view

    view = detect_view(["f0", "f1"], ["id", "author", "f0", "f1"], None, carried=["author"])
    assert view == {"kind": "table", "columns": ["author", "f0", "f1"]}


def test_clean_reads_the_features_and_writes_the_carried_columns(text_files):
    d = text_files
    out = d / "clean.parquet"
    code, text = invoke(
        "clean",
        "--labeled",
        d / "L.parquet",
        "--id-col",
        "post_id",
        "--out",
        out,
        "--model",
        "logreg",
        "--folds",
        3,
        "--n-jobs",
        1,
        "--feature-cols",
        "f0,f1,g0",
    )
    assert code == 0, text
    table = pq.read_table(out)
    assert {"text", "author"} <= set(table.column_names)
    assert table.column("text").to_pylist()[0].startswith("message <b>")


def test_experiment_reads_a_file_with_a_text_column(tmp_path):
    from activemine.experiments.tasks import load_task

    rng = np.random.default_rng(1)
    n = 200
    table = pa.table(
        {
            "id": np.arange(n),
            "text": [f"t{i}" for i in range(n)],
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "label": rng.integers(0, 2, n),
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    assert load_task(str(path), "multiclass").X_train.shape[1] == 2
    assert load_task(str(path), "multiclass", feature_prefix="x1").X_train.shape[1] == 1
    with pytest.raises(InputError, match="must be numeric"):
        load_task(str(path), "multiclass", feature_cols=["x0", "text"])


@pytest.mark.parametrize("fmt, suffix", [("csv", ".csv"), ("jsonl", ".jsonl")])
def test_campaign_export_carries_the_text_an_annotator_reads(text_files, fmt, suffix):
    import csv
    import json

    d = text_files
    files = ("--pool", d / "U.parquet", "--labeled", d / "L.parquet", "--id-col", "post_id", "--label-col", "y")
    code, text = invoke("campaign", "init", d / "camp", *files, "--quiet")
    assert code == 0, text
    code, text = invoke("campaign", "mine", d / "camp", "--budget", 15, "--model", "logreg", "--quiet")
    assert code == 0, text
    out = d / f"round1{suffix}"
    code, text = invoke("campaign", "export", d / "camp", "--round", 1, "--format", fmt, "--out", out)
    assert code == 0, text
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh)) if fmt == "csv" else [json.loads(line) for line in fh]
    pool = pq.read_table(d / "U.parquet").to_pydict()
    text_of = dict(zip(pool["post_id"], pool["text"]))
    assert len(rows) == 15
    # each row carries its own sample's text, as data (markup characters kept as they are)
    assert all(r["text"] == text_of[r["post_id"]] for r in rows)

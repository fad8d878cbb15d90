"""A mined batch carries the pool's columns an annotator needs (URL, text, path), joined by id."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from activemine.cli import app
from activemine.data.sources import PoolColumns, TableSource, carried_columns, open_pool
from activemine.errors import InputError

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def files(tmp_path):
    """L and U (Parquet and CSV) with features, a URL, a note, a date and a numeric column not used."""
    rng = np.random.default_rng(0)
    n, n_l = 600, 150
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.8).astype(int)
    ids = rng.permutation(10 * n)[:n]  # ids not in row order
    cols = {
        "id": ids,
        "f0": X[:, 0],
        "f1": X[:, 1],
        "f2": X[:, 2],
        "url": np.array([f"https://cdn.example/{i}.jpg?a=<b>&c='d'" for i in ids]),
        "note": np.array([f"[red]n{i % 7}[/red]" for i in ids]),
        "captured": pa.array(np.datetime64("2026-01-01") + (ids % 50).astype("timedelta64[D]")),
        "views": ids * 3,
    }
    table = pa.table(cols)
    pq.write_table(table.slice(0, n_l).append_column("label", pa.array(y[:n_l])), tmp_path / "L.parquet")
    pq.write_table(table.slice(n_l), tmp_path / "U.parquet")
    pcsv.write_csv(table.slice(n_l), tmp_path / "U.csv")
    return tmp_path


def _mine(d, pool, out, *extra):
    code, text = invoke(
        "mine",
        "--pool",
        d / pool,
        "--labeled",
        d / "L.parquet",
        "--budget",
        40,
        "--out",
        d / out,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--feature-prefix",
        "f",
        "--quiet",
        *extra,
    )
    return code, text


@pytest.mark.parametrize("pool", ["U.parquet", "U.csv"])
def test_the_batch_carries_the_text_like_columns_of_its_own_rows(files, pool):
    code, text = _mine(files, pool, "b.parquet")
    assert code == 0, text
    batch = pq.read_table(files / "b.parquet")
    assert batch.column_names == ["id", "score", "predicted_class", "stratum", "strategy", "url", "note", "captured"]
    by_id = {r["id"]: r for r in pq.read_table(files / "U.parquet").to_pylist()}
    for row in batch.to_pylist():
        source = by_id[row["id"]]
        assert (row["url"], row["note"]) == (source["url"], source["note"])  # markup-like text stays text
        assert str(row["captured"])[:10] == str(source["captured"])[:10]


def test_carry_none_and_named_columns(files):
    assert _mine(files, "U.parquet", "none.parquet", "--carry-cols", "none")[0] == 0
    assert pq.read_table(files / "none.parquet").column_names == [
        "id",
        "score",
        "predicted_class",
        "stratum",
        "strategy",
    ]
    assert _mine(files, "U.parquet", "named.parquet", "--carry-cols", "views,f1")[0] == 0
    named = pq.read_table(files / "named.parquet")
    assert named.column_names[-2:] == ["views", "f1"]
    assert named.column("views").to_pylist() == [3 * i for i in named.column("id").to_pylist()]
    # the same batch whatever is carried
    assert named.column("id").equals(pq.read_table(files / "none.parquet").column("id"))


@pytest.mark.parametrize(
    ("carry", "message"),
    [("nope", "--carry-cols 'nope'.*has no such column"), ("score", "the batch already has a column 'score'")],
)
def test_a_bad_carry_column_is_refused_before_any_work(files, carry, message):
    import re

    code, text = _mine(files, "U.parquet", "bad.parquet", "--carry-cols", carry)
    assert code == 2
    assert re.search(message, " ".join(text.split()))
    assert not (files / "bad.parquet").exists()


def test_the_carried_columns_do_not_depend_on_the_chunk_size(files):
    assert _mine(files, "U.parquet", "a.parquet", "--chunk-size", 7)[0] == 0
    assert _mine(files, "U.parquet", "b.parquet", "--chunk-size", 100_000)[0] == 0
    assert pq.read_table(files / "a.parquet").equals(pq.read_table(files / "b.parquet"))


def test_auto_skips_a_pool_column_named_like_a_batch_column(tmp_path):
    table = pa.table({"id": [1, 2, 3], "f0": [0.1, 0.2, 0.3], "score": ["a", "b", "c"], "url": ["u1", "u2", "u3"]})
    source = TableSource(table, PoolColumns(features=("f0",)))
    assert carried_columns(source, "auto", taken=["id", "score"]) == ["url"]
    with pytest.raises(InputError, match="already has a column 'score'"):
        carried_columns(source, "score", taken=["id", "score"])


@settings(max_examples=40, deadline=None)
@given(
    order=st.permutations(list(range(30))),
    k=st.integers(1, 30),
    chunk=st.integers(1, 40),
    string_ids=st.booleans(),
)
def test_rows_of_returns_the_rows_of_the_ids_in_their_order(order, k, chunk, string_ids):
    ids = [f"s{i}" for i in range(30)] if string_ids else [100 - i for i in range(30)]
    table = pa.table({"id": ids, "f0": np.arange(30.0), "text": [f"t{i}" for i in ids]})
    source = TableSource(table, PoolColumns(features=("f0",)))
    wanted = [ids[i] for i in order[:k]]
    got = source.rows_of(np.asarray(wanted), ["text"], chunk_size=chunk)
    assert got.column("text").to_pylist() == [f"t{i}" for i in wanted]


def test_rows_of_an_id_the_pool_lacks_is_an_error(files):
    source = open_pool(files / "U.parquet", PoolColumns(features=("f0", "f1", "f2")))
    with pytest.raises(InputError, match="id -1 of the batch is not in"):
        source.rows_of(np.asarray([-1]), ["url"])

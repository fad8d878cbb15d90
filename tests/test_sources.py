import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activemine.data.chunks import PoolChunk
from activemine.data.sources import PoolColumns, open_pool
from activemine.errors import DuplicateIdError, InputError, MissingColumnError, SchemaMismatchError

COLS = PoolColumns(id="id", proba=(("p0", "p1"),), weak_proba=("w0", "w1"))


def _table(n=50, start=0):
    rng = np.random.default_rng(start)
    p = rng.random(n)
    return pa.table(
        {"id": np.arange(start, start + n), "p0": 1 - p, "p1": p, "w0": p, "w1": 1 - p, "unused": np.zeros(n)}
    )


def _gather(source, chunk_size):
    chunks = list(source.chunks(chunk_size))
    assert all(len(c) <= chunk_size for c in chunks)
    return (
        np.concatenate([c.ids for c in chunks]),
        np.concatenate([c.proba for c in chunks]),
        np.concatenate([c.weak_proba for c in chunks]),
    )


@pytest.mark.parametrize("kind", ["arrow", "mapping", "pandas", "parquet", "folder", "files", "csv"])
def test_every_source_yields_the_same_rows(tmp_path, kind):
    table = pa.concat_tables([_table(50, 0), _table(30, 50)])
    if kind == "arrow":
        source = table
    elif kind == "mapping":
        source = {c: table.column(c).to_numpy() for c in table.column_names}
    elif kind == "pandas":
        source = table.to_pandas()
    elif kind == "parquet":
        source = tmp_path / "pool.parquet"
        pq.write_table(table, source, row_group_size=7)
    elif kind in ("folder", "files"):
        pq.write_table(_table(50, 0), tmp_path / "a.parquet")
        pq.write_table(_table(30, 50), tmp_path / "b.parquet")
        source = tmp_path if kind == "folder" else [tmp_path / "a.parquet", tmp_path / "b.parquet"]
    else:
        source = tmp_path / "pool.csv"
        table.to_pandas().to_csv(source, index=False)
    pool = open_pool(source, COLS)
    ids, proba, weak = _gather(pool, 16)
    assert ids.tolist() == list(range(80))
    np.testing.assert_allclose(proba[:, 1], table.column("p1").to_numpy())
    np.testing.assert_allclose(weak[:, 0], table.column("w0").to_numpy())
    assert pool.num_rows in (80, None)
    again, _, _ = _gather(pool, 80)  # re-iterable, any chunk size
    assert again.tolist() == ids.tolist()


def test_parquet_reads_only_the_needed_columns(tmp_path):
    pq.write_table(_table(), tmp_path / "p.parquet")
    pool = open_pool(tmp_path / "p.parquet", PoolColumns(weak_proba=("w0", "w1")))
    table = next(pool.tables(10))
    assert table.column_names == ["id", "w0", "w1"]


def test_committee_groups_become_member_proba():
    table = _table(10)
    cols = PoolColumns(proba=(("p0", "p1"), ("w0", "w1")))
    chunk = next(open_pool(table, cols).chunks(100))
    assert chunk.member_proba.shape == (2, 10, 2)
    np.testing.assert_allclose(chunk.proba, chunk.member_proba.mean(axis=0))
    assert cols.n_proba_columns == 2


def test_pool_chunk_source_gives_views():
    chunk = PoolChunk(np.arange(10), proba=np.full((10, 2), 0.5))
    parts = list(open_pool(chunk).chunks(4))
    assert [len(p) for p in parts] == [4, 4, 2]


def test_missing_column_names_the_file_and_column(tmp_path):
    pq.write_table(_table().drop(["w1"]), tmp_path / "p.parquet")
    with pytest.raises(MissingColumnError, match=r"no column\(s\) \['w1'\]"):
        open_pool(tmp_path / "p.parquet", COLS)
    with pytest.raises(MissingColumnError, match="w1"):
        open_pool(_table().drop(["w1"]), COLS)


def test_mismatched_schemas_between_parquet_files(tmp_path):
    pq.write_table(_table(10, 0), tmp_path / "a.parquet")
    other = _table(10, 10)
    pq.write_table(other.set_column(1, "p0", other.column("p0").cast(pa.string())), tmp_path / "b.parquet")
    with pytest.raises(SchemaMismatchError, match=r"'p0'.*double.*string"):
        open_pool(tmp_path, COLS)


@pytest.mark.parametrize("content", [b"not a parquet file at all", b""])
def test_unreadable_parquet_is_a_clear_error(tmp_path, content):
    (tmp_path / "bad.parquet").write_bytes(content)
    with pytest.raises(InputError, match="cannot read .*bad.parquet"):
        open_pool(tmp_path / "bad.parquet", COLS)


def test_missing_paths_and_unknown_formats(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        open_pool(tmp_path / "nowhere.parquet", COLS)
    with pytest.raises(InputError, match="holds no .parquet"):
        open_pool(tmp_path, COLS)
    (tmp_path / "pool.xlsx").write_text("x")
    with pytest.raises(InputError, match="cannot tell the format"):
        open_pool(tmp_path / "pool.xlsx", COLS)
    with pytest.raises(InputError, match="cannot read a pool from int"):
        open_pool(3, COLS)
    with pytest.raises(InputError, match="columns"):
        open_pool(_table())


def test_bad_values_in_a_chunk(tmp_path):
    t = _table(6)
    with pytest.raises(DuplicateIdError):
        next(open_pool(t.set_column(0, "id", pa.array([1, 1, 2, 3, 4, 5])), COLS).chunks(10))
    with pytest.raises(InputError, match="must be numeric"):
        next(open_pool(t.set_column(1, "p0", pa.array(list("abcdef"))), COLS).chunks(10))
    with pytest.raises(InputError, match="chunk_size"):
        next(open_pool(t, COLS).chunks(0))
    df = pd.DataFrame({"id": [1, 2], "p0": [0.5, 0.5]})
    with pytest.raises(MissingColumnError):
        open_pool(df, COLS)

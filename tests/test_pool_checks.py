"""Pool checks before fitting (schema, null ids), the NaN/inf feature policy, and user text that is never markup."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from activemine import LabeledSet, PoolChunk, make_strategy, mine
from activemine.cli import app
from activemine.data.sources import PoolColumns, arrow_ids
from activemine.engines import mine_stream
from activemine.errors import InputError
from activemine.selection.strategies import HWStrategy


class FitCalled(AssertionError):
    pass


class NoFitHW(HWStrategy):
    def fit(self, *args, **kwargs):
        raise FitCalled("fit was called")


def _labeled():
    rng = np.random.default_rng(0)
    return LabeledSet(rng.normal(size=(60, 2)), np.arange(60) % 2, ids=np.arange(-60, 0))


FEATURES = PoolColumns(features=("f0", "f1"))


@pytest.mark.parametrize(
    "case, message",
    [
        ("text_feature", "column 'f1' of .* must be numeric, got string"),
        ("null_ids", "has 3 missing ids"),
        ("float_ids", "must hold integer or string ids, got double"),
        ("missing_column", "no column"),
    ],
)
def test_bad_parquet_pools_fail_before_fit(tmp_path, case, message):
    n = 5000
    rng = np.random.default_rng(1)
    cols = {"id": pa.array(np.arange(n)), "f0": rng.normal(size=n), "f1": rng.normal(size=n)}
    if case == "text_feature":
        cols["f1"] = pa.array([str(v) for v in cols["f1"]])
    elif case == "null_ids":
        cols["id"] = pa.array([None if i in (7, 4000, 4999) else i for i in range(n)], type=pa.int64())
    elif case == "float_ids":
        cols["id"] = pa.array(np.arange(n, dtype=np.float64))
    else:
        del cols["f1"]
    # the bad rows sit at the end of later row groups: only a check before fitting finds them this early
    pq.write_table(pa.table(cols), tmp_path / "U.parquet", row_group_size=1000)
    with pytest.raises(InputError, match=message):
        mine_stream(NoFitHW(model="logreg"), tmp_path / "U.parquet", columns=FEATURES, budget=10, labeled=_labeled())


def test_null_ids_without_statistics_are_found_by_a_pass_over_the_ids(tmp_path):
    ids = pa.array([1, 2, None, 4], type=pa.int64())
    pq.write_table(
        pa.table({"id": ids, "f0": [0.0] * 4, "f1": [0.0] * 4}), tmp_path / "U.parquet", write_statistics=False
    )
    with pytest.raises(InputError, match="1 missing ids"):
        mine_stream(NoFitHW(model="logreg"), tmp_path / "U.parquet", columns=FEATURES, budget=1, labeled=_labeled())


def test_in_memory_tables_are_checked_before_fit():
    table = pa.table({"id": pa.array([1, None, 3]), "f0": [0.0, 1.0, 2.0], "f1": ["a", "b", "c"]})
    with pytest.raises(InputError, match="must be numeric"):
        mine_stream(NoFitHW(model="logreg"), table, columns=FEATURES, budget=1, labeled=_labeled())


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string(), "dictionary"])
def test_arrow_string_ids_become_fixed_width_strings(arrow_type):
    values = ["b", "a[/bold]", "ç"]
    col = pa.array(values).dictionary_encode() if arrow_type == "dictionary" else pa.array(values, type=arrow_type)
    out = arrow_ids(pa.chunked_array([col]))
    assert out.dtype.kind == "U" and out.tolist() == values
    assert arrow_ids(pa.array([3, 1], type=pa.int32())).dtype == np.int64


def test_nan_features_are_missing_values_for_lightgbm_and_an_error_for_logreg():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 2))
    X[123, 1] = np.nan
    pool = PoolChunk(np.arange(400), X=X)
    labeled = _labeled()
    batch = mine(make_strategy("lc", model="hgb"), pool, budget=10, labeled=labeled)
    assert len(batch) == 10
    with pytest.raises(InputError, match=r"feature '#1' of .* is NaN \(missing\) at row 123"):
        mine(make_strategy("lc", model="logreg"), pool, budget=10, labeled=labeled)
    X[123, 1] = np.inf
    for model in ("hgb", "logreg"):
        with pytest.raises(InputError, match="is inf at row 123"):
            mine(make_strategy("lc", model=model), PoolChunk(np.arange(400), X=X), budget=10, labeled=labeled)


def test_bad_labeled_features_fail_before_fit():
    labeled = _labeled()
    labeled.X[5, 0] = np.nan
    pool = PoolChunk(np.arange(100), X=np.zeros((100, 2)))
    with pytest.raises(InputError, match="the labeled set is NaN|of the labeled set is NaN"):
        mine(NoFitHW(model="logreg"), pool, budget=5, labeled=labeled)
    labeled.X[5, 0] = -np.inf
    with pytest.raises(InputError, match="is -inf at row 5"):
        mine(NoFitHW(model="lightgbm"), pool, budget=5, labeled=labeled)


def test_parquet_nulls_in_features_are_nan_and_named(tmp_path):
    f1 = pa.array([0.5] * 299 + [None], type=pa.float64())
    pq.write_table(pa.table({"id": np.arange(300), "f0": np.linspace(0, 1, 300), "f1": f1}), tmp_path / "U.parquet")
    with pytest.raises(InputError, match=r"feature 'f1' of .* is NaN \(missing\) at row 299"):
        mine_stream(
            make_strategy("lc", model="logreg"),
            tmp_path / "U.parquet",
            columns=FEATURES,
            budget=5,
            labeled=_labeled(),
            chunk_size=128,
        )


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


def test_markup_in_user_text_is_printed_as_it_is(tmp_path):
    rng = np.random.default_rng(3)
    folder = tmp_path / "data[" / "bold]x"  # the path holds "data[/bold]x"
    folder.mkdir(parents=True)
    labels = np.array(["[/bold]", "[red]b"])[np.arange(80) % 2]
    pq.write_table(
        pa.table({"id": [f"[/b]{i}" for i in range(80)], "f0": rng.normal(size=80), "y": labels}), folder / "L.parquet"
    )
    pq.write_table(pa.table({"id": [f"[i]{i}" for i in range(300)], "f0": rng.normal(size=300)}), folder / "U.parquet")
    code, text = _invoke(
        "mine",
        "--labeled",
        folder / "L.parquet",
        "--pool",
        folder / "U.parquet",
        "--budget",
        10,
        "--model",
        "logreg",
        "--out",
        folder / "b.parquet",
        "--quiet",
    )
    assert code == 0, text
    assert "[/bold]" in text and "[red]b" in text and "data[/bold]x" in text.replace("\n", "")
    # errors quote paths and values as they are
    code, text = _invoke(
        "mine",
        "--pool",
        folder / "nowhere[/bold].parquet",
        "--labeled",
        folder / "L.parquet",
        "--budget",
        10,
        "--out",
        folder / "c.parquet",
    )
    assert code == 2, text
    assert "nowhere[/bold].parquet" in text
    assert "MarkupError" not in text


def test_quiet_silences_progress_and_logs_say_what_happens(tmp_path):
    rng = np.random.default_rng(4)
    p = rng.dirichlet([1, 1], 400)
    pq.write_table(pa.table({"id": np.arange(400), "p0": p[:, 0], "p1": p[:, 1]}), tmp_path / "U.parquet")
    args = [
        "mine",
        "--pool",
        tmp_path / "U.parquet",
        "--proba-cols",
        "p0,p1",
        "--strategy",
        "lc",
        "--budget",
        5,
        "--out",
        tmp_path / "b.parquet",
    ]
    code, text = _invoke(*args)
    assert code == 0, text
    assert "scoring pool: started (400 rows)" in text and "scoring pool: done, 400 rows" in text
    assert "selecting: done" in text
    code, text = _invoke(*args, "--quiet")
    assert code == 0, text
    assert "scoring pool" not in text and "5 samples selected" in text


_ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
_ASCII_TEXT = st.text(alphabet="ab-_09[]/ ", max_size=12)  # the fast path: ASCII copied from Arrow's buffers


@given(
    st.one_of(
        st.lists(_ANY_TEXT, min_size=1, max_size=60),
        st.lists(_ASCII_TEXT, min_size=1, max_size=60),
        st.lists(st.text(alphabet="xyz", min_size=5, max_size=5), min_size=1, max_size=60),
    ),
    st.sampled_from([pa.string(), pa.large_string()]),
    st.integers(0, 5),
)
@settings(max_examples=200, deadline=None)
def test_arrow_strings_convert_like_python_strings(values, arrow_type, cut):
    array = pa.array(values, type=arrow_type)
    array = array.slice(min(cut, len(values) - 1))  # offsets that do not start at zero
    got = arrow_ids(array)
    assert got.dtype.kind == "U"
    assert got.tolist() == array.to_pylist()

"""Bad settings are refused where they enter (campaign init, mine, serve), with the reason, changing nothing;
user text such as paths is printed as it is, never read as markup."""

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_files, snapshot, synthetic_campaign
from activemine.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join((result.output + (getattr(result, "stderr", "") or "")).split())


def _pool(n: int, *, ids=None, f0=None) -> pa.Table:
    rng = np.random.default_rng(1)
    return pa.table(
        {
            "id": np.arange(100, 100 + n) if ids is None else ids,
            "f0": rng.normal(size=n) if f0 is None else f0,
            "f1": rng.normal(size=n),
        }
    )


def _labeled(n: int = 20, *, y=None, f0=None) -> pa.Table:
    rng = np.random.default_rng(2)
    return pa.table(
        {
            "id": np.arange(n),
            "f0": rng.normal(size=n) if f0 is None else f0,
            "f1": rng.normal(size=n),
            "label": np.arange(n) % 2 if y is None else y,
        }
    )


def _write(table: pa.Table, path):
    if path.suffix == ".csv":
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=250)
    return path


def _init(tmp_path, pool: pa.Table, labeled: pa.Table, *extra, pool_name="U.parquet", copy=True):
    U = _write(pool, tmp_path / pool_name)
    L = _write(labeled, tmp_path / "L.parquet")
    camp = tmp_path / "camp"
    code, text = invoke(
        "campaign", "init", camp, "--pool", U, "--labeled", L, "-q", *(() if copy else ("--no-copy",)), *extra
    )
    return code, text, camp


def _nothing_made(camp):
    assert not (camp / "campaign.db").exists()
    assert not (camp / "data").exists() or not any((camp / "data").iterdir())
    assert not (camp / ".init-incomplete").exists()


INF_ROW = 777


def _with_inf(n, at):
    values = np.random.default_rng(3).normal(size=n)
    values[at] = np.inf
    return values


@pytest.mark.parametrize("pool_name", ["U.parquet", "U.csv"])
@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize(
    ("case", "pool", "labeled", "extra", "message"),
    [
        (
            "duplicate int ids",
            lambda: _pool(1000, ids=np.r_[np.arange(1000, 1998), 1005, 1700]),
            _labeled,
            (),
            "DuplicateIdError: ids of the pool must be unique: 2 occur more than once (column 'id'), e.g. [1005, 1700]; "
            "every round would fail on them. Remove the copies first",
        ),
        (
            "duplicate string ids",
            lambda: _pool(1000, ids=[f"u{i}" for i in range(999)] + ["u0"]),
            lambda: _labeled().set_column(0, "id", pa.array([f"L{i}" for i in range(20)])),
            (),
            "ids of the pool must be unique: 1 occur more than once (column 'id'), e.g. ['u0']",
        ),
        (
            "inf in the pool",
            lambda: _pool(1000, f0=_with_inf(1000, INF_ROW)),
            _labeled,
            (),
            f"holds an infinite value (first at row {INF_ROW} of the file); features and probabilities must be finite",
        ),
        (
            "-inf in the last pool row",
            lambda: _pool(1000, f0=_with_inf(1000, 999) * -1),
            _labeled,
            (),
            "holds an infinite value (first at row 999 of the file)",
        ),
        (
            "inf in L",
            lambda: _pool(1000),
            lambda: _labeled(f0=_with_inf(20, 7)),
            (),
            "column 'f0' of {L} holds an infinite value (first at row 7); features and probabilities must be finite",
        ),
        (
            "one class in L with --classes",
            lambda: _pool(1000),
            lambda: _labeled(y=np.zeros(20, dtype=np.int64)),
            ("--classes", "0,1"),
            "SingleClassError: {L} holds labels of one class only ([0]); a model trained on it cannot tell the "
            "classes apart, so no round could be mined (not even with --strategy random). Add labeled samples of "
            "at least one other class of [0, 1]",
        ),
    ],
)
def test_campaign_init_refuses_what_every_mine_would_fail_on(
    tmp_path, case, pool, labeled, extra, message, pool_name, copy
):
    code, text, camp = _init(tmp_path, pool(), labeled(), *extra, pool_name=pool_name, copy=copy)
    assert code == 2, text
    assert message.format(L=tmp_path / "L.parquet") in text, text
    _nothing_made(camp)


def test_a_pool_with_nan_features_is_still_accepted(tmp_path):
    f0 = np.random.default_rng(3).normal(size=1000)
    f0[3] = np.nan  # a missing value, which LightGBM takes
    code, text, camp = _init(tmp_path, _pool(1000, f0=f0), _labeled())
    assert code == 0, text


def test_a_probability_pool_may_start_from_one_class(tmp_path):
    rng = np.random.default_rng(0)
    p = rng.random(100)
    pool = pa.table({"id": [f"s{i}" for i in range(100)], "p0": 1 - p, "p1": p})
    labeled = pa.table({"id": [f"L{i}" for i in range(10)], "label": [0] * 10})
    code, text, camp = _init(tmp_path, pool, labeled, "--proba-cols", "p0,p1", "--classes", "0,1")
    assert code == 0, text


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    return synthetic_campaign(tmp_path_factory.mktemp("settings"), 500)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--overlap", 0.2, "--per-item", 21),
            "per-item must be an integer from 2 to 20 (distinct annotators per overlapping sample), got 21",
        ),
        (("--overlap", 0.2, "--per-item", 10**20), "per-item must be an integer from 2 to 20"),
        (("--overlap", 0.2, "--per-item", 1), "got 1"),
        (("--overlap", "nan"), "overlap must be in [0, 1), got nan"),
    ],
)
def test_campaign_mine_refuses_bad_overlap_settings_before_any_work(campaign, options, message):
    before = {t: len(r) for t, r in snapshot(campaign).items()}
    code, text = invoke("campaign", "mine", campaign.folder, "--budget", 10, "--strategy", "random", "-q", *options)
    assert code == 2 and message in text, text
    assert {t: len(r) for t, r in snapshot(campaign).items()} == before


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--lease-seconds", "nan"),
            "lease seconds must be a number of seconds above 0 and at most 604,800 (a week), got nan",
        ),
        (("--lease-seconds", "inf"), "got inf"),
        (("--lease-seconds", 0), "got 0.0"),
        (("--lease-seconds", -5), "got -5.0"),
        (("--port", 70000), "--port must be a TCP port from 1 to 65535, got 70000"),
        (("--port", 0), "--port must be a TCP port from 1 to 65535, got 0"),
    ],
)
def test_campaign_serve_refuses_bad_settings_before_it_starts(campaign, options, message):
    pytest.importorskip("fastapi")
    before = {t: len(r) for t, r in snapshot(campaign).items()}
    code, text = invoke("campaign", "serve", campaign.folder, "--token", "a-long-token", *options)
    assert code == 2 and message in text, text
    assert {t: len(r) for t, r in snapshot(campaign).items()} == before


MARKUP = "out[/bold][red]x"


def test_clean_prints_a_path_with_markup_as_it_is(tmp_path):
    L, _, _ = digits_files(tmp_path, n_pool=10)
    folder = tmp_path / MARKUP
    code, text = invoke(
        "clean", "--labeled", L, "--label-col", "y", "--out", folder / "c.csv", "--folds", 2, "--model", "logreg", "-q"
    )
    assert code == 0, text
    assert f"wrote{folder / 'c.csv'}" in "".join(text.split())


def test_experiment_prints_a_path_with_markup_as_it_is(tmp_path):
    folder = tmp_path / MARKUP
    code, text = invoke(
        "experiment", "--dataset", "digits", "--task", "binary:3", "--labeled-size", 60, "--budget", 10,
        "--strategies", "random", "--model", "logreg", "--out", folder, "--quiet",
    )  # fmt: skip
    assert code == 0, text
    assert f"wrote{folder / 'results.json'}" in "".join(text.split())

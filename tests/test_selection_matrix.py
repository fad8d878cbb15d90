"""Every selection option with every id type, every engine and both mining commands.

One pool per id type (integers, ASCII strings such as ``img_000123``, non-ASCII
strings), its rows and L's in shuffled order, mined by ``activemine mine`` and
by ``activemine campaign mine`` with each strategy and each selection option.
The contract: the same batch whatever the command, the chunk size and the
engine (or a clear error before any work starts). The reference is ``mine``
on the local engine with the default chunk size; small chunks are mined with
candidate buffers pruned at every chunk, so the reduction is exercised.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _pool_helpers import eager_pruning
from activemine.campaign import CampaignStore
from activemine.cli import app

ID_KINDS = ("int", "str", "unicode")
STRATEGIES = ("lc", "hw", "qbc", "random")
#: selection options -> the flags that turn them on (exclusions: L's rows are in the pool too)
OPTIONS = {
    "quotas": ["--balance", "equal"],
    "easy-share": ["--easy-share", "0.3"],
    "exclusions": [],
    "near-duplicates": ["--near-duplicates", "auto"],
    "clusters": ["--diversity", "clusters", "--clusters", "4"],
}
N_POOL, N_LABELED, BUDGET, ROW_GROUP = 240, 60, 24, 60
SMALL_CHUNK = 16

runner = CliRunner()


def _ids(kind: str, n: int, rng) -> np.ndarray:
    """``n`` distinct ids of ``kind``, in an order that is neither numeric nor lexicographic."""
    numbers = rng.permutation(50 * n)[:n]
    if kind == "int":
        return numbers.astype(np.int64)
    if kind == "str":
        return np.array([f"img_{v:06d}" for v in numbers])
    return np.array([f"ñandú_{v}_画像" for v in numbers])


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """Per id kind: L and U files, and U with L's rows in it (for the exclusions)."""
    root = tmp_path_factory.mktemp("pools")
    rng = np.random.default_rng(7)
    n = N_POOL + N_LABELED
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] + 0.4 * rng.normal(size=n) > 0.3, "spam", np.where(X[:, 1] > 0, "ham", "eggs"))
    out = {}
    for kind in ID_KINDS:
        ids = _ids(kind, n, rng)
        cols = {"id": ids, "f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2]}
        lab = {k: v[:N_LABELED] for k, v in cols.items()} | {"y": y[:N_LABELED]}
        files = {"L": root / f"L_{kind}.parquet", "U": root / f"U_{kind}.parquet", "UL": root / f"UL_{kind}.parquet"}
        pq.write_table(pa.table(lab), files["L"])
        pq.write_table(pa.table({k: v[N_LABELED:] for k, v in cols.items()}), files["U"], row_group_size=ROW_GROUP)
        # the pool with L's rows spread through it: mining must never pick them
        mixed = rng.permutation(n)
        pq.write_table(pa.table({k: v[mixed] for k, v in cols.items()}), files["UL"], row_group_size=ROW_GROUP)
        out[kind] = files
    return out


def invoke(args) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _selection_flags(strategy: str, option: str) -> list[str]:
    return ["--strategy", strategy, "--model", "lightgbm", "--n-jobs", "1", "--seed", "3", *OPTIONS[option]]


def mine_ids(files, strategy, option, tmp_path, *, engine="local", chunk_size=None) -> list:
    pool = files["UL"] if option == "exclusions" and "UL" in files else files["U"]
    out = tmp_path / f"batch-{engine}-{chunk_size}.parquet"
    args = ["mine", "--pool", pool, "--labeled", files["L"], "--budget", BUDGET, "--out", out, "--quiet"]
    args += ["--engine", engine, *(["--chunk-size", chunk_size] if chunk_size else [])]
    invoke(args + _selection_flags(strategy, option))
    return pq.read_table(out).column("id").to_pylist()


def campaign_ids(files, strategy, option, tmp_path, *, engine="local", chunk_size=None) -> tuple[list, list]:
    """The ids of the campaign's last round, and of the round before it (exclusions: a campaign
    excludes what earlier rounds queued, so a first round is mined and the second one compared)."""
    folder = tmp_path / f"camp-{engine}-{chunk_size}"
    invoke(["campaign", "init", folder, "--pool", files["U"], "--labeled", files["L"], "--quiet"])
    args = ["campaign", "mine", folder, "--budget", BUDGET, "--quiet", "--engine", engine]
    args += (["--chunk-size", chunk_size] if chunk_size else []) + _selection_flags(strategy, option)
    rounds = 2 if option == "exclusions" else 1
    for _ in range(rounds):
        invoke(args)
    store = CampaignStore(folder)
    batches = [sorted(s for (s,) in store.read("SELECT sid FROM batches WHERE round = ?", (r,))) for r in (1, 2)]
    return batches[rounds - 1], batches[0] if rounds == 2 else []


_REFERENCE: dict = {}


def reference(pools, kind, strategy, option, tmp_path_factory) -> list:
    """``mine`` on the local engine with the default chunk size (computed once per combination)."""
    key = (kind, strategy, option)
    if key not in _REFERENCE:
        _REFERENCE[key] = mine_ids(pools[kind], strategy, option, tmp_path_factory.mktemp("ref"))
    return _REFERENCE[key]


matrix = pytest.mark.parametrize(
    "kind,strategy,option",
    [(k, s, o) for k in ID_KINDS for s in STRATEGIES for o in OPTIONS],
)


@matrix
def test_mine_gives_one_batch_whatever_the_chunk_size(pools, tmp_path, tmp_path_factory, kind, strategy, option):
    expected = reference(pools, kind, strategy, option, tmp_path_factory)
    assert len(expected) == BUDGET
    with eager_pruning():
        assert mine_ids(pools[kind], strategy, option, tmp_path, chunk_size=SMALL_CHUNK) == expected


@matrix
def test_campaign_mine_gives_the_batch_of_mine(pools, tmp_path, tmp_path_factory, kind, strategy, option):
    with eager_pruning():
        got, queued = campaign_ids(pools[kind], strategy, option, tmp_path, chunk_size=SMALL_CHUNK)
    if option == "exclusions":
        # `mine` on the pool without what the first round queued: the same selectable rows, the same L
        files = {"L": pools[kind]["L"], "U": tmp_path / "rest.parquet"}
        table = pq.read_table(pools[kind]["U"])
        keep = ~np.isin(np.asarray(table.column("id").to_pylist()).astype(str), queued)
        pq.write_table(table.filter(pa.array(keep)), files["U"], row_group_size=ROW_GROUP)
        expected = mine_ids(files, strategy, option, tmp_path)
    else:
        expected = reference(pools, kind, strategy, option, tmp_path_factory)
    assert got == sorted(map(str, expected))


def test_the_order_of_the_labeled_rows_does_not_change_the_batch(pools, tmp_path, tmp_path_factory):
    """Models may depend on row order (LightGBM's bins and folds); every engine trains in id order."""
    files = pools["str"]
    shuffled = tmp_path / "L_shuffled.parquet"
    table = pq.read_table(files["L"])
    pq.write_table(table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows))), shuffled)
    for strategy in ("lc", "hw", "qbc"):
        expected = reference(pools, "str", strategy, "quotas", tmp_path_factory)
        assert mine_ids(dict(files, L=shuffled), strategy, "quotas", tmp_path) == expected


def _ray_cells():
    """Each id kind with each option, the strategy rotated so each kind meets every strategy (a Ray run
    costs seconds: the whole product would take a quarter of an hour, and Ray ships every strategy alike)."""
    return [
        (kind, STRATEGIES[(i + j) % len(STRATEGIES)], option)
        for i, kind in enumerate(ID_KINDS)
        for j, option in enumerate(OPTIONS)
    ]


@pytest.mark.integration
@pytest.mark.parametrize("kind,strategy,option", _ray_cells())
def test_ray_engine_gives_the_local_batch_to_both_commands(
    local_ray, pools, tmp_path, tmp_path_factory, kind, strategy, option
):
    expected = reference(pools, kind, strategy, option, tmp_path_factory)
    assert mine_ids(pools[kind], strategy, option, tmp_path, engine="ray", chunk_size=SMALL_CHUNK) == expected
    got = campaign_ids(pools[kind], strategy, option, tmp_path, engine="ray")
    assert got == campaign_ids(pools[kind], strategy, option, tmp_path)

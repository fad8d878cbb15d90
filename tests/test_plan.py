"""The selection plan: one owner of the settings, checked before any model is fitted."""

import dataclasses
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from activemine import LabeledSet, PoolChunk, make_strategy, mine
from activemine.cli import app
from activemine.data.sources import PoolColumns
from activemine.engines import mine_stream, run_engine
from activemine.errors import InputError, PoolExhaustedError, UnknownLabelError
from activemine.selection.batch import select_batch
from activemine.selection.plan import SelectionPlan, as_exclusions, class_weights
from activemine.selection.strategies import HWStrategy, UncertaintyStrategy


class FitCalled(AssertionError):
    pass


class NoFitLC(UncertaintyStrategy):
    """lc whose fit proves it is never reached."""

    def fit(self, *args, **kwargs):
        raise FitCalled("fit was called")


class NoFitHW(HWStrategy):
    def fit(self, *args, **kwargs):
        raise FitCalled("fit was called")


def _labeled(n=40, k=2):
    rng = np.random.default_rng(0)
    return LabeledSet(rng.normal(size=(n, 3)), np.arange(n) % k, ids=np.arange(-n, 0))


def _pool(n=200):
    rng = np.random.default_rng(1)
    return PoolChunk(np.arange(n), X=rng.normal(size=(n, 3)))


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(budget=0), "budget must be a positive integer"),
        (dict(budget=2.5), "budget must be a positive integer"),
        (dict(budget=10, easy_share=1.5), "easy_share must be in"),
        (dict(budget=10, easy_share=-0.1), "easy_share must be in"),
        (dict(budget=10, balance="bogus"), "unknown balance 'bogus'"),
        (dict(budget=10, balance=[1, 2, 3]), "one value per class"),
        (dict(budget=10, balance=[1, -1]), "non-negative"),
        (dict(budget=10, balance={"z": 1}), "unknown classes"),
        (dict(budget=201), "budget 201 is larger than the 200 rows"),
    ],
)
@pytest.mark.parametrize("entry", ["mine", "mine_stream", "run_engine"])
def test_invalid_settings_fail_before_fit(settings, message, entry):
    strategy = NoFitLC("lc", model="logreg")
    plan_kw = {k: v for k, v in settings.items() if k != "budget"}
    with pytest.raises(InputError, match=message):
        plan = SelectionPlan.build(strategy, budget=settings["budget"], **plan_kw)
        if entry == "mine":
            mine(strategy, _pool(), plan=plan, labeled=_labeled())
        elif entry == "mine_stream":
            mine_stream(strategy, _pool(), plan=plan, labeled=_labeled())
        else:
            run_engine("local", strategy, _pool(), plan=plan, labeled=_labeled())


def test_settings_given_to_the_strategy_fail_at_once():
    for kw, message in ((dict(easy_share=1.5), "easy_share"), (dict(balance="bogus"), "unknown balance")):
        with pytest.raises(InputError, match=message):
            make_strategy("hw", **kw)
    # what only the pool tells (class count, labeled counts, pool size) fails before fit too
    with pytest.raises(InputError, match="one value per class"):
        mine(NoFitHW(balance=[1, 2, 3]), _pool(), budget=5, labeled=_labeled())
    with pytest.raises(PoolExhaustedError):
        mine(NoFitHW(), _pool(), budget=10_000, labeled=_labeled())
    with pytest.raises(UnknownLabelError):
        mine(NoFitHW(classes=[0, 1]), _pool(), budget=5, labeled=_labeled(k=3))
    p = np.full((10, 2), 0.5)
    with pytest.raises(InputError, match="balance='labeled' needs"):
        mine(NoFitLC("lc", balance="labeled"), PoolChunk(np.arange(10), proba=p), budget=2)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--easy-share", "1.5"], "easy_share must be in"),
        (["--budget", "0"], "budget must be a positive integer"),
        (["--balance", "bogus"], "unknown balance"),
        (["--balance", "1,2,3"], "one value per class"),
        (["--budget", "10000000"], "larger than the"),
    ],
)
def test_cli_rejects_bad_settings_before_fit_and_fast(tmp_path, monkeypatch, args, message):
    import activemine.selection.strategies as strategies

    def boom(self, *a, **k):
        raise FitCalled("fit was called")

    monkeypatch.setattr(strategies.Strategy, "fit", boom)
    rng = np.random.default_rng(0)
    n = 200_000  # a large pool: the check must not depend on its size
    pq.write_table(pa.table({"id": np.arange(n), "f0": rng.normal(size=n)}), tmp_path / "U.parquet")
    pq.write_table(
        pa.table({"id": np.arange(-20, 0), "f0": rng.normal(size=20), "y": np.arange(20) % 2}), tmp_path / "L.parquet"
    )
    base = [
        "mine",
        "--pool",
        tmp_path / "U.parquet",
        "--labeled",
        tmp_path / "L.parquet",
        "--out",
        tmp_path / "b.parquet",
        "--budget",
        "10",
        "--model",
        "logreg",
    ]
    started = time.perf_counter()
    result = CliRunner().invoke(app, [str(a) for a in base + args])
    seconds = time.perf_counter() - started
    text = " ".join((result.output + (getattr(result, "stderr", "") or "")).split())
    assert result.exit_code == 2, text
    assert message in text
    assert not (tmp_path / "b.parquet").exists()
    assert seconds < 5, seconds  # generous on a loaded machine; a fit or a pool pass would take longer


def test_build_reads_the_strategy_defaults_and_explicit_arguments_win():
    assert SelectionPlan.build(make_strategy("hw"), budget=10).easy_share == 0.0  # HW's default: no easy share
    hw = make_strategy("hw", random_state=7, easy_share=0.05)
    plan = SelectionPlan.build(hw, budget=10)
    assert (plan.easy_share, plan.balance, plan.seed, plan.hard_label) == (0.05, None, 7, "hard")
    plan = SelectionPlan.build(hw, budget=10, easy_share=0.0, balance="equal", seed=3)
    assert (plan.easy_share, plan.balance, plan.seed) == (0.0, "equal", 3)
    assert SelectionPlan.build(make_strategy("random"), budget=1).hard_label == "random"
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.budget = 3


def test_exclusions_are_a_sorted_array_and_labeled_ids_join_them():
    plan = SelectionPlan(5, exclude={"b", "a", "c"})
    assert isinstance(plan.exclude, np.ndarray) and plan.exclude.tolist() == ["a", "b", "c"]
    assert plan.exclude.dtype.kind == "U"
    plan = SelectionPlan(5, exclude=np.array([9, 3, 3], dtype=np.uint32))
    assert plan.exclude.dtype == np.int64 and plan.exclude.tolist() == [3, 9]
    bound = plan.bind(classes=[0, 1], labeled=LabeledSet(None, np.array([0, 1]), ids=np.array([4, 3])))
    assert bound.exclude.tolist() == [3, 4, 9]
    assert bound.labeled_counts == (1, 1)
    with pytest.raises(InputError, match="must match"):
        SelectionPlan(5, exclude=["a"]).bind(classes=[0, 1]).excluded(np.arange(3))
    with pytest.raises(InputError, match="all integers or all strings"):
        as_exclusions(np.array([1, "a"], dtype=object))
    assert as_exclusions(None).size == 0


def test_plan_select_equals_select_batch_with_the_derived_weights():
    rng = np.random.default_rng(3)
    n, k = 500, 3
    ids = rng.permutation(5 * n)[:n]
    scores, predicted = rng.random(n), rng.integers(0, k, n)
    exclude = ids[:30]
    for balance, weights in (("equal", np.ones(k)), ([1, 2, 0], np.array([1.0, 2.0, 0.0])), (None, None)):
        plan = SelectionPlan(50, balance=balance, easy_share=0.2, seed=4, exclude=exclude, classes=range(k))
        got = plan.select(ids, scores, predicted)
        expected = select_batch(
            ids, scores, predicted, budget=50, n_classes=k, weights=weights, easy_share=0.2, seed=4, exclude=exclude
        )
        assert got.ids.tolist() == expected.ids.tolist()
        assert got.stratum.tolist() == expected.stratum.tolist()
    keep = ~np.isin(ids, exclude)
    pool_plan = SelectionPlan(50, balance="pool", exclude=exclude, classes=range(k))
    expected = select_batch(
        ids,
        scores,
        predicted,
        budget=50,
        n_classes=k,
        exclude=exclude,
        weights=np.bincount(predicted[keep], minlength=k),
    )
    assert pool_plan.select(ids, scores, predicted).ids.tolist() == expected.ids.tolist()


def test_class_weights_modes():
    classes = ["a", "b"]
    assert class_weights(None, classes=classes) is None
    assert class_weights("none", classes=classes) is None
    assert class_weights("equal", classes=classes).tolist() == [1, 1]
    assert class_weights("labeled", classes=classes, labeled_counts=[3, 1]).tolist() == [3, 1]
    assert class_weights("pool", classes=classes, pool_counts=[1, 9]).tolist() == [1, 9]
    assert class_weights({"b": 2}, classes=classes).tolist() == [0, 2]
    with pytest.raises(InputError, match="unknown balance 'bogus'"):
        class_weights("bogus", classes=classes)
    with pytest.raises(InputError, match="unknown classes \\['z'\\]"):
        class_weights({"z": 1}, classes=classes)
    with pytest.raises(InputError, match="one value per class"):
        class_weights([1, 2, 3], classes=classes)
    with pytest.raises(InputError, match="needs the labeled set"):
        class_weights("labeled", classes=classes)


def test_plan_and_budget_are_not_both_given():
    p = np.full((10, 2), 0.5)
    plan = SelectionPlan(3)
    with pytest.raises(InputError, match="either a plan"):
        mine(make_strategy("lc"), PoolChunk(np.arange(10), proba=p), plan=plan, exclude=[1])
    batch = mine(make_strategy("lc"), PoolChunk(np.arange(10), proba=p), plan=plan)
    assert len(batch) == 3


def test_diversity_options_pass_through_untouched():
    from activemine.diversity.options import DiversityOptions

    options = DiversityOptions(near_duplicates=1.0)
    plan = SelectionPlan.build(make_strategy("lc"), budget=3, diversity=options)
    assert plan.bind(classes=[0, 1], total_rows=10).diversity is options
    with pytest.raises(InputError, match="diversity must be a DiversityOptions"):
        SelectionPlan.build(make_strategy("lc"), budget=3, diversity=object())
    with pytest.raises(InputError, match="--clusters 20 is more than the 10 rows"):
        SelectionPlan.build(make_strategy("lc"), budget=3, diversity=DiversityOptions(clusters=20)).bind(
            classes=[0, 1], total_rows=10
        )


def test_parquet_pool_plan_with_string_exclusions(tmp_path):
    ids = np.array([f"s{i:04d}" for i in range(300)])
    p = np.random.default_rng(2).dirichlet([1, 1], 300)
    pq.write_table(pa.table({"id": ids, "w0": p[:, 0], "w1": p[:, 1]}), tmp_path / "U.parquet")
    plan = SelectionPlan.build(make_strategy("hw"), budget=20, exclude=ids[:100])
    batch = mine_stream(
        make_strategy("hw"), tmp_path / "U.parquet", plan=plan, columns=PoolColumns(weak_proba=("w0", "w1"))
    )
    assert len(batch) == 20 and not set(batch.ids.tolist()) & set(ids[:100].tolist())

"""Contract tests shared by every registered strategy, plus strategy-specific behaviour."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from activemine import LabeledSet, PoolChunk, make_strategy, mine
from activemine.errors import InputError, PoolExhaustedError, ProbabilityError, SingleClassError, UnknownLabelError
from activemine.selection.batch import split_hard_easy
from activemine.selection.strategies import STRATEGIES, HWStrategy, QBCStrategy

BUDGET = 60


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        n_samples=900, n_features=8, n_informative=5, n_classes=3, weights=[0.6, 0.3, 0.1], random_state=0
    )
    ids = np.arange(10_000, 10_900)
    lab = np.arange(300)
    return LabeledSet(X[lab], y[lab], ids[lab]), PoolChunk(ids, X=X)


def run(name, labeled, pool, *, seed=0, budget=BUDGET, **kw):
    strategy = make_strategy(name, model="logreg", random_state=seed, **kw)
    return strategy, mine(strategy, pool, budget=budget, labeled=labeled, chunk_size=128)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("balance", [None, "equal", "labeled"])
def test_contract(name, balance, data):
    labeled, pool = data
    easy = 0.25
    strategy, batch = run(name, labeled, pool, balance=balance, easy_share=easy)
    assert len(batch) == BUDGET
    assert np.unique(batch.ids).size == BUDGET
    assert not set(batch.ids.tolist()) & set(labeled.ids.tolist()), "labeled ids must be excluded"
    assert set(batch.ids.tolist()) <= set(pool.ids.tolist())
    if balance is not None:
        w = np.ones(3) if balance == "equal" else np.bincount(labeled.y, minlength=3).astype(float)
        counts = np.bincount(batch.predicted, minlength=3)
        avail = np.bincount(strategy.class_proba(pool).argmax(axis=1)[300:], minlength=3)
        assert counts.tolist() == [batch.quotas[c] for c in range(3)]
        assert (counts <= avail).all()
        target = BUDGET * w / w.sum()
        if (avail >= np.ceil(target)).all():  # no class ran out: quotas follow the weights within one sample
            assert np.abs(counts - target).max() <= 1
        else:  # a class that ran out gives everything it has, the others take the rest
            short = avail < target
            assert (counts[short] == avail[short]).all() and (counts[~short] >= np.floor(target[~short])).all()
    groups = [np.flatnonzero(batch.predicted == c) for c in range(3)] if balance else [np.arange(BUDGET)]
    for rows in groups:
        _, n_easy = split_hard_easy(rows.size, easy)
        assert (batch.stratum[rows] == "easy").sum() == n_easy
        assert abs(n_easy - easy * rows.size) <= 1


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_seed_same_batch_and_shuffle_invariance(name, data):
    labeled, pool = data
    _, a = run(name, labeled, pool, seed=4, easy_share=0.2)
    _, b = run(name, labeled, pool, seed=4, easy_share=0.2)
    assert a.ids.tolist() == b.ids.tolist()
    perm = np.random.default_rng(1).permutation(len(pool))
    shuffled = PoolChunk(pool.ids[perm], X=pool.X[perm])
    _, c = run(name, labeled, shuffled, seed=4, easy_share=0.2)
    assert c.ids.tolist() == a.ids.tolist()
    assert c.stratum.tolist() == a.stratum.tolist()


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_precomputed_probabilities_need_no_model(name):
    rng = np.random.default_rng(0)
    p = rng.dirichlet([1, 1], size=500)
    pool = PoolChunk(np.arange(500), proba=p, weak_proba=p[::-1].copy(), member_proba=np.stack([p, p[::-1], p]))
    strategy = make_strategy(name, random_state=0)
    batch = mine(strategy, pool, budget=50, exclude=[0, 1, 2])
    assert strategy.n_fits_ == 0
    assert len(batch) == 50 and not {0, 1, 2} & set(batch.ids.tolist())


def test_uncertainty_picks_the_least_confident_rows():
    p = np.array([[0.99, 0.01], [0.5, 0.5], [0.8, 0.2], [0.6, 0.4]])
    batch = mine(make_strategy("lc"), PoolChunk(np.array([1, 2, 3, 4]), proba=p), budget=2)
    assert batch.ids.tolist() == [2, 4]
    assert batch.stratum.tolist() == ["hard", "hard"]


def test_hw_scores_with_the_weak_model_and_counts_classes_with_the_strong_one():
    strong = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.95, 0.05]])
    weak = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4], [0.99, 0.01]])
    hw = make_strategy("hw", easy_share=0.0)
    batch = mine(hw, PoolChunk(np.arange(4), proba=strong, weak_proba=weak), budget=2)
    # one per predicted (strong) class, the weak model's least confident in each
    assert sorted(batch.ids.tolist()) == [0, 2]
    np.testing.assert_allclose(sorted(batch.scores), [0.4, 0.5])


def test_hw_default_ranks_by_the_strong_models_least_confidence(data):
    labeled, pool = data
    hw = HWStrategy(model="lightgbm", random_state=0, dirty_policy="off", n_jobs=1).fit(labeled)
    assert hw.weak_trees == "all" and hw.easy_share == 0.0 and hw.n_fits_ == 1
    assert hw.weak_model_ is hw.strong_model_
    scores, predicted = hw.score(pool)
    strong = hw.class_proba(pool)
    np.testing.assert_allclose(scores, 1.0 - strong.max(axis=1))
    np.testing.assert_array_equal(predicted, strong.argmax(axis=1))
    # the weak model is one option away: the first 20 trees score differently, from the same single fit
    weak20 = HWStrategy(model="lightgbm", random_state=0, dirty_policy="off", n_jobs=1, weak_trees=20).fit(labeled)
    assert weak20.n_fits_ == 1 and not np.allclose(weak20.score(pool)[0], scores)
    # with the pool's probabilities only, HW needs no weak_proba: it ranks by the given ones
    p = np.array([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7], [0.5, 0.5]])
    batch = mine(make_strategy("hw"), PoolChunk(np.arange(4), proba=p), budget=2)
    assert sorted(batch.ids.tolist()) == [1, 3] and set(batch.stratum.tolist()) == {"hard"}


@pytest.mark.parametrize("bad", ["some", "20", True, 0, -1, 2.5])
def test_hw_rejects_bad_weak_trees(bad):
    with pytest.raises(InputError, match="weak_trees"):
        HWStrategy(weak_trees=bad)


def test_hw_trains_weak_model_on_a_fraction(data):
    labeled, pool = data
    hw = HWStrategy(model="logreg", weak_trees=None, weak_fraction=0.3, random_state=0, dirty_policy="off")
    hw.fit(labeled)
    assert hw.n_fits_ == 2
    assert hw.weak_model_.n_features_in_ == labeled.X.shape[1]
    # the weak model saw about 30% of the labels: its coefficients differ from the strong model's
    assert not np.allclose(hw.weak_model_[-1].coef_, hw.strong_model_[-1].coef_)


def test_hw_dirty_step_extension_point(data):
    labeled, pool = data
    calls = []

    def drop_first_ten(X, y, *, random_state):
        calls.append(random_state)
        keep = np.ones(y.size, bool)
        keep[:10] = False
        return keep

    hw = HWStrategy(model="logreg", dirty_step=drop_first_ten, random_state=7, clean_selection=True).fit(labeled)
    assert calls == [7]
    assert hw.kept_.sum() == len(labeled) - 10


def test_qbc_committee_and_growth(data):
    labeled, pool = data
    qbc = QBCStrategy(model="logreg", committee_size=2, disagreement="kl", feature_fraction=0.75, random_state=0)
    batch = mine(qbc, pool, budget=30, labeled=labeled)
    assert qbc.n_fits_ == 2 and len(qbc.committee_.members_) == 2
    new = np.isin(pool.ids, batch.ids)
    y_new = make_classification(
        n_samples=900, n_features=8, n_informative=5, n_classes=3, weights=[0.6, 0.3, 0.1], random_state=0
    )[1][new]
    qbc.grow(pool.X[new], y_new, labeled)
    assert qbc.n_fits_ == 3 and len(qbc.committee_.members_) == 3
    assert qbc.committee_.predict_proba_stack(pool.X[:5]).shape == (3, 5, 3)


def test_errors(data):
    labeled, pool = data
    one_class = LabeledSet(labeled.X, np.zeros(len(labeled), int), labeled.ids)
    with pytest.raises(SingleClassError, match=r"only class \[0\]"):
        mine(make_strategy("lc", model="logreg"), pool, budget=5, labeled=one_class)
    with pytest.raises(PoolExhaustedError, match="budget 601 is larger than the 600"):
        mine(make_strategy("lc", model="logreg"), pool, budget=601, labeled=labeled)
    with pytest.raises(InputError, match="unknown strategy 'nope'"):
        make_strategy("nope")
    p = np.full((3, 2), 0.5)
    with pytest.raises(UnknownLabelError, match=r"labels \[7\]"):
        mine(
            make_strategy("lc"),
            PoolChunk(np.arange(3), proba=p),
            budget=1,
            labeled=LabeledSet(None, np.array([0, 1, 7]), np.array([10, 11, 12])),
        )
    bad = p.copy()
    bad[1] = [0.9, 0.9]
    with pytest.raises(ProbabilityError, match="sum to 1"):
        mine(make_strategy("entropy"), PoolChunk(np.arange(3), proba=bad), budget=1)
    with pytest.raises(InputError, match="needs a labeled set"):
        mine(make_strategy("lc"), PoolChunk(np.arange(3), X=np.zeros((3, 2))), budget=1)

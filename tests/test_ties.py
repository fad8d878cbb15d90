import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activemine import PoolChunk, make_strategy
from activemine.selection.batch import select_batch
from activemine.selection.plan import SelectionPlan
from activemine.selection.ties import DECIDING_KEYS, decided_by, strategy_decided_by


def _brute_force(batch, ids, scores, primary, exclude=()):
    # one group: compare every ranked row with the best row left out, key by key
    ranked = set(batch.ids[batch.stratum != "easy"].tolist())
    left = [i for i in range(ids.size) if ids[i] not in ranked and ids[i] not in set(exclude)]
    if not left:
        return {"score": len(ranked), "secondary": 0, "id": 0}
    best = min(left, key=lambda i: (-scores[i], ids[i]))
    out = dict.fromkeys(DECIDING_KEYS, 0)
    for i in range(ids.size):
        if ids[i] in ranked:
            key = "score" if primary[i] != primary[best] else "secondary" if scores[i] != scores[best] else "id"
            out[key] += 1
    return out


@given(st.integers(2, 60), st.integers(0, 2**32 - 1), st.floats(0.0, 0.5))
@settings(max_examples=100)
def test_counts_match_a_brute_force_comparison_with_the_boundary_row(n, seed, easy_share):
    rng = np.random.default_rng(seed)
    primary = rng.integers(0, 3, n).astype(np.float64)  # a coarse first key with many ties
    secondary = rng.integers(0, 3, n) / 10.0  # a second key with ties too
    scores = primary + secondary
    ids = rng.permutation(5 * n)[:n]
    exclude = ids[rng.random(n) < 0.2]
    selectable = n - exclude.size
    if selectable < 1:
        return
    budget = int(rng.integers(1, selectable + 1))
    batch = select_batch(
        ids, scores, np.zeros(n, int), budget=budget, n_classes=1, easy_share=easy_share, exclude=exclude
    )
    got = decided_by(batch, ids, scores, primary=np.floor, exclude=exclude)
    assert got == _brute_force(batch, ids, scores, primary, exclude.tolist())
    assert sum(got.values()) == int((batch.stratum != "easy").sum())
    # with one key only, nothing is decided by a secondary key
    assert decided_by(batch, ids, scores, exclude=exclude)["secondary"] == 0


def test_quota_groups_each_have_their_own_boundary():
    ids = np.arange(8)
    scores = np.array([0.9, 0.5, 0.5, 0.1, 0.7, 0.7, 0.7, 0.2])
    predicted = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    batch = select_batch(ids, scores, predicted, budget=4, n_classes=2, weights=np.ones(2))
    # class 0 takes 0 (score) and 1 (tied with 2: id); class 1 takes 4 and 5 (tied with 6: id)
    assert decided_by(batch, ids, scores, predicted) == {"score": 1, "secondary": 0, "id": 3}
    whole = select_batch(ids, scores, predicted, budget=8, n_classes=2, weights=np.ones(2))
    assert decided_by(whole, ids, scores, predicted) == {"score": 8, "secondary": 0, "id": 0}


def test_plain_vote_entropy_is_decided_by_the_id_and_ranked_by_the_secondary_key():
    rng = np.random.default_rng(0)
    n, budget = 2000, 200
    base = rng.dirichlet(np.ones(2), n)
    stack = np.repeat(base[None], 3, axis=0)
    disagree = rng.random(n) < 0.02
    stack[:, disagree] = rng.dirichlet(np.ones(2), (3, int(disagree.sum())))
    ids = np.arange(n)
    counts = {}
    for secondary in (None, "lc"):
        qbc = make_strategy("qbc", secondary=secondary).fit(None, n_proba_columns=2)
        scores, predicted = qbc.score(PoolChunk(ids, member_proba=stack))
        batch = SelectionPlan.build(qbc, budget=budget).bind(classes=qbc.classes_).select(ids, scores, predicted)
        counts[secondary] = strategy_decided_by(qbc, batch, ids, scores, predicted)
    n_split = counts[None]["score"]
    assert 0 < n_split < budget / 4
    assert counts[None] == {"score": n_split, "secondary": 0, "id": budget - n_split}
    assert counts["lc"]["id"] == 0 and counts["lc"]["score"] == n_split
    assert counts["lc"]["secondary"] == budget - n_split


def test_no_ranked_rows_counts_nothing():
    ids = np.arange(10)
    batch = select_batch(ids, np.linspace(0, 1, 10), np.zeros(10, int), budget=3, n_classes=1, easy_share=1.0)
    assert decided_by(batch, ids, np.linspace(0, 1, 10)) == {"score": 0, "secondary": 0, "id": 0}


@pytest.mark.parametrize("name", ["lc", "random"])
def test_single_key_strategies(name):
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), 300)
    ids = np.arange(300)
    s = make_strategy(name).fit(None, n_proba_columns=3)
    scores, predicted = s.score(PoolChunk(ids, proba=proba))
    batch = SelectionPlan.build(s, budget=50).bind(classes=s.classes_).select(ids, scores, predicted)
    assert strategy_decided_by(s, batch, ids, scores, predicted) == {"score": 50, "secondary": 0, "id": 0}

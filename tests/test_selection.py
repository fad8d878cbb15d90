import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activemine.errors import DuplicateIdError, EmptyPoolError, InputError, PoolExhaustedError
from activemine.selection.batch import (
    allocate_quotas,
    check_ids,
    id_keys,
    select_batch,
    split_hard_easy,
    top_k_indices,
)


@st.composite
def pools(draw, max_n=200, max_k=4):
    n = draw(st.integers(1, max_n))
    k = draw(st.integers(1, max_k))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    ids = rng.choice(10 * max_n, size=n, replace=False).astype(np.int64)
    # coarse scores make ties common, so the tie-break is exercised
    scores = rng.integers(0, 5, size=n) / 4.0
    predicted = rng.integers(0, k, size=n)
    budget = draw(st.integers(1, n))
    easy = draw(st.sampled_from([0.0, 0.2, 0.5, 1.0]))
    return ids, scores, predicted, k, budget, easy


@given(pools(), st.booleans())
@settings(max_examples=150)
def test_batch_contract(pool, with_quotas):
    ids, scores, predicted, k, budget, easy = pool
    weights = np.ones(k) if with_quotas else None
    batch = select_batch(ids, scores, predicted, budget=budget, n_classes=k, weights=weights, easy_share=easy, seed=3)
    assert len(batch) == budget
    assert np.unique(batch.ids).size == budget
    assert set(batch.ids) <= set(ids)
    by_id = dict(zip(ids.tolist(), scores.tolist()))
    assert [by_id[i] for i in batch.ids.tolist()] == batch.scores.tolist()
    if with_quotas:
        got = np.bincount(batch.predicted, minlength=k)
        assert got.tolist() == [batch.quotas[c] for c in range(k)]
        groups = [(np.flatnonzero(batch.predicted == c), batch.quotas[c]) for c in range(k)]
    else:
        groups = [(np.arange(budget), budget)]
    for rows, quota in groups:
        hard, n_easy = split_hard_easy(quota, easy)
        assert (batch.stratum[rows] == "easy").sum() == n_easy
        assert abs(n_easy - easy * quota) <= 0.5 + 1e-9


@given(pools())
@settings(max_examples=100)
def test_hard_rows_are_the_top_scores_with_ties_by_id(pool):
    ids, scores, predicted, k, budget, _ = pool
    batch = select_batch(ids, scores, predicted, budget=budget, n_classes=k)
    order = np.lexsort((ids, -scores))
    assert batch.ids.tolist() == ids[order[:budget]].tolist()


@given(pools(), st.integers(0, 2**31 - 1))
@settings(max_examples=100)
def test_row_order_does_not_matter(pool, shuffle_seed):
    ids, scores, predicted, k, budget, easy = pool
    perm = np.random.default_rng(shuffle_seed).permutation(ids.size)
    kw = dict(budget=budget, n_classes=k, weights=np.arange(1, k + 1), easy_share=easy, seed=11)
    a = select_batch(ids, scores, predicted, **kw)
    b = select_batch(ids[perm], scores[perm], predicted[perm], **kw)
    assert a.ids.tolist() == b.ids.tolist()
    assert a.stratum.tolist() == b.stratum.tolist()


@given(pools())
@settings(max_examples=100)
def test_exclusion(pool):
    ids, scores, predicted, k, budget, easy = pool
    excluded = ids[::3]
    free = ids.size - excluded.size
    if free == 0:
        with pytest.raises(EmptyPoolError):
            select_batch(ids, scores, predicted, budget=1, n_classes=k, exclude=excluded)
        return
    b = min(budget, free)
    batch = select_batch(
        ids, scores, predicted, budget=b, n_classes=k, weights=np.ones(k), easy_share=easy, exclude=excluded
    )
    assert not set(batch.ids.tolist()) & set(excluded.tolist())
    assert len(batch) == b


def test_easy_rows_depend_on_the_seed_and_are_spread_out():
    n = 10_000
    ids = np.arange(n)
    scores = ids / n  # the hardest rows are the highest ids
    pred = np.zeros(n, dtype=int)
    a = select_batch(ids, scores, pred, budget=1000, n_classes=1, easy_share=0.5, seed=1)
    b = select_batch(ids, scores, pred, budget=1000, n_classes=1, easy_share=0.5, seed=2)
    easy_a = a.ids[a.stratum == "easy"]
    easy_b = b.ids[b.stratum == "easy"]
    assert set(easy_a) != set(easy_b)
    assert (a.ids[a.stratum == "hard"] >= n - 500).all()
    # uniform over the 9,500 non-hard rows: mean near 4,750, not clustered at the boundary
    assert abs(easy_a.mean() - 4750) < 400
    same = select_batch(ids, scores, pred, budget=1000, n_classes=1, easy_share=0.5, seed=1)
    assert same.ids.tolist() == a.ids.tolist()


def test_candidate_subset_with_global_counts_gives_the_same_batch():
    rng = np.random.default_rng(0)
    n, k, budget = 5000, 3, 300
    ids, scores, pred = np.arange(n), rng.random(n), rng.integers(0, k, n)
    kw = dict(budget=budget, n_classes=k, weights=np.ones(k), easy_share=0.3, seed=5)
    full = select_batch(ids, scores, pred, **kw)
    keys = id_keys(ids, seed=5)
    keep = np.zeros(n, bool)
    for c in range(k):
        rows = np.flatnonzero(pred == c)
        keep[rows[np.argsort(-scores[rows])[:budget]]] = True
        keep[rows[np.argsort(keys[rows])[:budget]]] = True
    part = select_batch(ids[keep], scores[keep], pred[keep], available_counts=np.bincount(pred, minlength=k), **kw)
    assert part.ids.tolist() == full.ids.tolist()


@given(st.lists(st.integers(0, 50), min_size=1, max_size=6), st.data())
def test_allocate_quotas_properties(available, data):
    available = np.array(available)
    budget = data.draw(st.integers(0, int(available.sum())))
    weights = np.array(
        data.draw(
            st.lists(st.one_of(st.just(0.0), st.floats(0.1, 5.0)), min_size=len(available), max_size=len(available))
        )
    )
    if weights.sum() == 0:
        weights[0] = 1.0
    q = allocate_quotas(available, budget, weights)
    assert q.sum() == budget
    assert (q >= 0).all() and (q <= available).all()
    # a weighted class below its availability gets at least its floor share of what the uncapped classes took
    uncapped = (q < available) & (weights > 0)
    if uncapped.sum() >= 2:
        share = q[uncapped] / weights[uncapped]
        assert share.max() - share.min() <= 1.0 / weights[uncapped].min() + 1e-9


def test_allocate_quotas_redistributes_a_small_class():
    assert allocate_quotas([5, 100, 100], 90, [1, 1, 1]).tolist() == [5, 43, 42]
    assert allocate_quotas([100, 100], 30, [2, 1]).tolist() == [20, 10]
    assert allocate_quotas([3, 4], 7, [1, 0]).tolist() == [3, 4]  # zero-weight class fills only as a last resort
    with pytest.raises(PoolExhaustedError, match="budget 8 is larger than the 7"):
        allocate_quotas([3, 4], 8, [1, 1])


def test_id_keys_depend_on_value_and_seed_only():
    ints = np.array([5, 1, 99])
    assert id_keys(ints, seed=1).tolist() == id_keys(ints.astype(np.int32), seed=1).tolist()
    assert id_keys(ints, seed=1)[0] == id_keys(np.array([5]), seed=1)[0]
    assert id_keys(ints, seed=1).tolist() != id_keys(ints, seed=2).tolist()
    strs = np.array(["a", "bb", "a-much-longer-id"])
    assert id_keys(strs, seed=0)[0] == id_keys(np.array(["a"]), seed=0)[0]  # width of the array does not matter
    assert len(set(id_keys(strs, seed=0).tolist())) == 3


def test_string_ids_work_end_to_end():
    ids = np.array([f"img-{i:04d}" for i in range(100)])
    scores = np.linspace(0, 1, 100)
    batch = select_batch(ids, scores, np.zeros(100, int), budget=10, n_classes=1, easy_share=0.2)
    assert batch.ids[:8].tolist() == [f"img-{i:04d}" for i in range(99, 91, -1)]


def test_top_k_ties_break_by_id():
    primary = np.array([0.0, 0.0, 0.0, -1.0])
    ids = np.array([30, 10, 20, 40])
    assert top_k_indices(primary, ids, 3).tolist() == [3, 1, 2]


def test_input_errors():
    ids, s, p = np.arange(4), np.zeros(4), np.zeros(4, int)
    with pytest.raises(DuplicateIdError, match=r"\[1\]"):
        check_ids([0, 1, 1, 2])
    with pytest.raises(PoolExhaustedError, match="budget 5 is larger than the 4"):
        select_batch(ids, s, p, budget=5, n_classes=1)
    with pytest.raises(InputError, match="budget must be a positive integer, got 0"):
        select_batch(ids, s, p, budget=0, n_classes=1)
    with pytest.raises(InputError, match="easy_share must be in"):
        select_batch(ids, s, p, budget=1, n_classes=1, easy_share=1.5)
    with pytest.raises(InputError, match="finite"):
        select_batch(ids, np.array([0, np.nan, 0, 0]), p, budget=1, n_classes=1)
    with pytest.raises(InputError, match="same length"):
        select_batch(ids, s[:3], p, budget=1, n_classes=1)
    with pytest.raises(EmptyPoolError):
        select_batch(ids[:0], s[:0], p[:0], budget=1, n_classes=1)
    with pytest.raises(InputError, match="mixed"):
        check_ids(np.array([1, "a"], dtype=object))


def test_excluded_ids_of_another_type_are_an_error():
    with pytest.raises(InputError, match="excluded ids are of dtype"):
        select_batch(np.arange(3), np.zeros(3), np.zeros(3, int), budget=1, n_classes=1, exclude=["a"])

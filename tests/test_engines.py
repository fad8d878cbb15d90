import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _pool_helpers import eager_pruning, write_weak_proba_parts
from activemine import PoolChunk, make_strategy
from activemine.data.sources import PoolColumns
from activemine.engines import CandidateReducer, SelectionPlan, mine_stream, run_engine
from activemine.engines.mining import score_pool
from activemine.errors import DuplicateIdError, EmptyPoolError, InputError, PoolExhaustedError


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 300))
    k = draw(st.integers(2, 4))
    ids = rng.choice(20 * n, size=n, replace=False)
    if draw(st.booleans()):  # string ids: lexicographic order differs from the numbers', lengths vary
        ids = np.array([f"{'é' if v % 5 == 0 else ''}{v:x}.{v % 7}" for v in ids])
    raw = rng.integers(0, 4, size=(n, k)) + 0.01  # coarse, so scores tie often
    proba = raw / raw.sum(axis=1, keepdims=True)
    exclude = rng.choice(ids, size=draw(st.integers(0, n // 3)), replace=False)
    budget = draw(st.integers(1, max(1, n - exclude.size)))
    balance = draw(st.sampled_from([None, "equal", "pool", "weights"]))
    if balance == "weights":
        balance = [float(w) for w in rng.integers(0, 3, size=k)]
        balance[0] += 1.0
    return dict(
        seed=seed,
        ids=ids,
        proba=proba,
        exclude=exclude,
        budget=budget,
        balance=balance,
        easy=draw(st.sampled_from([0.0, 0.2, 0.5, 1.0])),
        name=draw(st.sampled_from(["lc", "sm", "hw", "random"])),
        chunk=draw(st.integers(1, 64)),
        order=rng.permutation(n),
    )


def _strategy(case):
    return make_strategy(case["name"], balance=case["balance"], easy_share=case["easy"], random_state=case["seed"] % 97)


@given(cases())
@settings(max_examples=120, deadline=None)
def test_stream_equals_in_memory_for_any_chunking_and_row_order(case):
    with eager_pruning():
        _check_stream_equals_in_memory(case)


def _check_stream_equals_in_memory(case):
    ids, proba = case["ids"], case["proba"]
    if ids.size == case["exclude"].size:
        return
    full = _strategy(case)
    plan = SelectionPlan.build(full, budget=case["budget"], exclude=case["exclude"])
    full.fit(None, n_proba_columns=proba.shape[1])
    scores, predicted = score_pool(full, PoolChunk(ids, proba=proba, weak_proba=proba))
    expected = plan.bind(classes=full.classes_).select(ids, scores, predicted)
    o = case["order"]
    got = mine_stream(
        _strategy(case),
        PoolChunk(ids[o], proba=proba[o], weak_proba=proba[o]),
        budget=case["budget"],
        exclude=case["exclude"],
        chunk_size=case["chunk"],
    )
    assert got.ids.tolist() == expected.ids.tolist()
    assert got.stratum.tolist() == expected.stratum.tolist()
    assert got.scores.tolist() == expected.scores.tolist()
    assert got.quotas == expected.quotas


@given(st.integers(0, 10_000), st.sampled_from([None, "equal", "pool"]), st.sampled_from([0.0, 0.3]))
@settings(max_examples=30, deadline=None)
def test_candidates_stay_near_the_budget(seed, balance, easy):
    with eager_pruning():
        _check_candidates_stay_near_the_budget(seed, balance, easy)


def _check_candidates_stay_near_the_budget(seed, balance, easy):
    rng = np.random.default_rng(seed)
    n, k, budget = 5000, 3, 100
    plan = SelectionPlan(
        budget,
        balance=None if balance is None else ("pool" if balance == "pool" else np.ones(k)),
        easy_share=easy,
        seed=seed,
        classes=range(k),
        total_rows=n,
    )
    reducer = CandidateReducer(plan)
    ids = rng.permutation(n)
    for start in range(0, n, 250):
        part = ids[start : start + 250]
        reducer.add(part, rng.random(part.size), rng.integers(0, k, part.size))
    cand, _, _, counts = reducer.candidates()
    assert counts.sum() == n
    # per group: hard and easy bounds, each at most its share of the budget plus a rounding slack
    assert cand.size <= budget + 4 * plan.n_groups + (2 * budget if balance == "pool" else 0)


def test_quota_bounds_are_upper_bounds_of_the_final_quotas():
    from activemine.selection.batch import allocate_quotas

    rng = np.random.default_rng(0)
    for _ in range(300):
        k = int(rng.integers(2, 6))
        final = rng.integers(0, 50, size=k)
        budget = int(rng.integers(1, max(2, final.sum())))
        if budget > final.sum():
            continue
        w = rng.integers(0, 3, size=k).astype(float)
        w[0] += 1
        seen = (final * rng.random(k)).astype(np.int64)
        for weights in (w, "pool"):
            plan = SelectionPlan(budget, balance=weights, classes=range(k), total_rows=int(final.sum()))
            bound = plan.quota_bounds(seen, int(seen.sum()))
            quota = allocate_quotas(final, budget, final if isinstance(weights, str) else w)
            assert (quota <= bound).all(), (final, seen, budget, weights)


def test_parquet_stream_equals_in_memory(tmp_path):
    rng = np.random.default_rng(1)
    n = 3000
    p = rng.dirichlet(np.ones(3), n)
    ids = rng.permutation(10 * n)[:n]
    write_weak_proba_parts(tmp_path, ids, p, parts=3, row_group_size=128)
    expected = mine_stream(make_strategy("hw"), PoolChunk(ids, weak_proba=p), budget=500, exclude=ids[:50])
    for chunk in (1000, 77):
        got = mine_stream(
            make_strategy("hw"),
            tmp_path,
            columns=PoolColumns(weak_proba=("w0", "w1", "w2")),
            budget=500,
            exclude=ids[:50],
            chunk_size=chunk,
        )
        assert got.ids.tolist() == expected.ids.tolist()


def test_duplicate_ids_across_chunks_are_found():
    p = np.full((6, 2), 0.5)
    for ids in (np.array([1, 2, 3, 4, 5, 2]), np.array(["a", "b", "c", "d", "e", "b"])):
        with pytest.raises(DuplicateIdError, match="1 duplicated"):
            mine_stream(make_strategy("lc"), PoolChunk(ids, proba=p), budget=2, chunk_size=2)
    # without the check the stream still runs, in bounded memory
    mine_stream(
        make_strategy("lc"),
        PoolChunk(np.array([1, 2, 3, 4, 5, 2]), proba=p),
        budget=2,
        chunk_size=2,
        check_duplicates=False,
    )


def test_engine_errors():
    p = np.full((4, 2), 0.5)
    pool = PoolChunk(np.arange(4), proba=p)
    with pytest.raises(EmptyPoolError):
        mine_stream(make_strategy("lc"), pool, budget=1, exclude=np.arange(4))
    with pytest.raises(EmptyPoolError, match="no rows"):
        mine_stream(make_strategy("lc"), PoolChunk(np.arange(0), proba=np.empty((0, 2))), budget=1)
    with pytest.raises(PoolExhaustedError, match="budget 4"):
        mine_stream(make_strategy("lc"), pool, budget=4, exclude=[0])
    with pytest.raises(InputError, match="must match"):
        mine_stream(make_strategy("lc"), pool, budget=1, exclude=["a"])
    with pytest.raises(InputError, match="unknown engine"):
        run_engine("spark", make_strategy("lc"), pool, budget=1)
    with pytest.raises(InputError, match="needs --engine ray"):
        run_engine("local", make_strategy("lc"), pool, budget=1, ray_address="auto")


def test_progress_counts_every_row():
    seen = []
    mine_stream(
        make_strategy("lc"),
        PoolChunk(np.arange(10), proba=np.full((10, 2), 0.5)),
        budget=3,
        chunk_size=4,
        progress=seen.append,
    )
    assert seen == [4, 4, 2]


_MEMORY_CHECK = """
import resource, sys, numpy as np
from activemine import make_strategy
from activemine.engines import mine_stream
from activemine.data.sources import PoolSource, PoolColumns
import pyarrow as pa

class Generated(PoolSource):
    # a pool that never exists whole: each chunk is made on demand
    def __init__(self, n):
        self.num_rows, self.columns = n, PoolColumns(weak_proba=("p0", "p1"))
    def tables(self, chunk_size):
        for start in range(0, self.num_rows, chunk_size):
            m = min(chunk_size, self.num_rows - start)
            p = np.random.default_rng(start).random(m)
            yield pa.table({"id": np.arange(start, start + m), "p0": 1 - p, "p1": p})

base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
batch = mine_stream(make_strategy("hw"), Generated(int(sys.argv[1])), budget=10_000, chunk_size=100_000,
                    check_duplicates=False)
assert len(batch) == 10_000
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""


@pytest.mark.slow
def test_memory_does_not_grow_with_the_pool():
    def growth_mb(n):
        out = subprocess.run([sys.executable, "-c", _MEMORY_CHECK, str(n)], capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    small, big = growth_mb(300_000), growth_mb(3_000_000)
    # the whole 3M-row pool would take ~70 MB as float64 probabilities and ids alone
    assert big < 60, big
    assert big < small + 25, (small, big)


def test_read_ahead_keeps_order_and_raises_the_readers_error_in_place():
    from activemine.engines.local import read_ahead

    assert list(read_ahead(iter(range(50)), 2)) == list(range(50))
    assert list(read_ahead(iter(range(5)), 0)) == list(range(5))

    def failing():
        yield 1
        yield 2
        raise InputError("bad row group")

    got = []
    with pytest.raises(InputError, match="bad row group"):
        for item in read_ahead(failing(), 2):
            got.append(item)
    assert got == [1, 2]
    # a consumer that stops early leaves no reader behind
    reader = read_ahead(iter(range(10_000)), 2)
    assert next(reader) == 0
    reader.close()

"""Batches without copies through the engines: the streaming batch is the in-memory one."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _pool_helpers import eager_pruning
from activemine import PoolChunk, make_strategy
from activemine.data.sources import PoolColumns
from activemine.diversity.options import DiversityOptions
from activemine.engines import mine_stream
from activemine.engines.mining import score_pool
from activemine.errors import InputError
from activemine.selection.plan import SelectionPlan


@st.composite
def cases(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(2, 250))
    k = draw(st.integers(2, 3))
    ids = rng.choice(20 * n, size=n, replace=False)
    raw = rng.integers(0, 4, size=(n, k)) + 0.01
    proba = raw / raw.sum(axis=1, keepdims=True)
    # a coarse grid with copies: many rows within the radius of each other
    emb = rng.integers(0, 5, size=(n, 2)).astype(np.float32)
    hashes = rng.integers(0, max(2, n // 2), size=n)
    exclude = rng.choice(ids, size=draw(st.integers(0, n // 3)), replace=False)
    budget = draw(st.integers(1, max(1, n - exclude.size)))
    kind = draw(st.sampled_from(["radius", "auto", "hash", "clusters"]))
    factor = draw(st.sampled_from([1.0, 1.5, 3.0]))
    if kind == "radius":
        opts = DiversityOptions(near_duplicates=draw(st.sampled_from([0.0, 1.0, 1.5])), candidate_factor=factor)
    elif kind == "auto":
        opts = DiversityOptions(
            near_duplicates="auto", candidate_factor=factor, sample_size=draw(st.sampled_from([5, 50]))
        )
    elif kind == "hash":
        opts = DiversityOptions(dedup=True, candidate_factor=factor)
    else:
        # at most as many clusters as selectable rows (more is an error, tested elsewhere)
        opts = DiversityOptions(
            clusters=draw(st.integers(1, max(1, min(4, n - exclude.size)))),
            candidate_factor=factor,
            sample_size=draw(st.sampled_from([8, 60])),
        )
    return dict(
        seed=seed,
        ids=ids,
        proba=proba,
        emb=emb,
        hashes=hashes,
        exclude=exclude,
        budget=budget,
        opts=opts,
        balance=draw(st.sampled_from([None, "equal", "pool"])),
        easy=draw(st.sampled_from([0.0, 0.3])),
        name=draw(st.sampled_from(["lc", "hw", "random"])),
        chunk=draw(st.integers(1, 64)),
        order=rng.permutation(n),
    )


def _strategy(case):
    return make_strategy(case["name"], balance=case["balance"], easy_share=case["easy"], random_state=case["seed"] % 97)


def _plan(case):
    return SelectionPlan.build(_strategy(case), budget=case["budget"], exclude=case["exclude"], diversity=case["opts"])


@given(cases())
@settings(max_examples=150, deadline=None)
def test_stream_equals_in_memory_for_any_chunking_and_row_order(case):
    ids, proba, emb, hashes = case["ids"], case["proba"], case["emb"], case["hashes"]
    if ids.size == case["exclude"].size:
        return
    full = _strategy(case).fit(None, n_proba_columns=proba.shape[1])
    scores, predicted = score_pool(full, PoolChunk(ids, proba=proba, weak_proba=proba))
    plan = _plan(case).bind(classes=full.classes_, total_rows=ids.size)
    expected = plan.select(ids, scores, predicted, embedding=emb, hashes=hashes)
    o = case["order"]
    with eager_pruning():
        got = mine_stream(
            _strategy(case),
            PoolChunk(ids[o], proba=proba[o], weak_proba=proba[o], embedding=emb[o], hashes=hashes[o]),
            plan=_plan(case),
            chunk_size=case["chunk"],
        )
    assert got.ids.tolist() == expected.ids.tolist()
    assert got.stratum.tolist() == expected.stratum.tolist()
    assert got.quotas == expected.quotas
    assert got.diversity.radius == expected.diversity.radius
    assert got.diversity.filled_with_duplicates == expected.diversity.filled_with_duplicates


def test_a_small_factor_rescans_and_still_gives_the_in_memory_batch():
    rng = np.random.default_rng(0)
    n = 2000
    emb = np.repeat(rng.standard_normal((40, 3)).astype(np.float32), 50, axis=0)  # 40 sources x 50 exact copies
    ids = np.arange(n)
    proba = rng.dirichlet([1, 1], n)
    opts = DiversityOptions(near_duplicates=0.01, candidate_factor=1.0)
    plan = SelectionPlan.build(make_strategy("lc"), budget=30, diversity=opts)
    full = make_strategy("lc").fit(None, n_proba_columns=2)
    s, p = score_pool(full, PoolChunk(ids, proba=proba))
    expected = plan.bind(classes=[0, 1], total_rows=n).select(ids, s, p, embedding=emb)
    with eager_pruning():
        got = mine_stream(make_strategy("lc"), PoolChunk(ids, proba=proba, embedding=emb), plan=plan, chunk_size=100)
    assert got.ids.tolist() == expected.ids.tolist()
    assert got.diversity.rescans >= 1
    assert len(set((emb[got.ids] * 1000).astype(int).tobytes() for _ in [0])) == 1
    assert np.unique(emb[got.ids], axis=0).shape[0] == 30  # one row per source


def test_feature_pool_is_projected_by_a_pca_of_the_labeled_set():
    from activemine import LabeledSet

    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    X[200:] = X[200] + 0.001 * rng.standard_normal((100, 6)).astype(np.float32)  # 100 near-copies
    y = (X[:, 0] > 0).astype(int)
    labeled = LabeledSet(X[:100], y[:100], ids=np.arange(100))
    pool = PoolChunk(np.arange(100, 300), X=X[100:])
    batch = (
        mine_stream(make_strategy("lc", model="logreg"), pool, budget=60, labeled=labeled, plan=None, chunk_size=37)
        if False
        else None
    )
    plan = SelectionPlan.build(
        make_strategy("lc", model="logreg"), budget=101, diversity=DiversityOptions(near_duplicates="auto")
    )
    batch = mine_stream(make_strategy("lc", model="logreg"), pool, plan=plan, labeled=labeled, chunk_size=37)
    assert "PCA fitted on the labeled set" in batch.diversity.embedding
    assert np.isin(batch.ids, np.arange(200, 300)).sum() == 1 + batch.diversity.filled_with_duplicates


def test_probability_pool_without_embeddings_is_an_error_before_anything_runs(tmp_path):
    p = np.random.default_rng(2).dirichlet([1, 1], 50)
    pq.write_table(pa.table({"id": np.arange(50), "w0": p[:, 0], "w1": p[:, 1]}), tmp_path / "U.parquet")
    plan = SelectionPlan.build(make_strategy("hw"), budget=5, diversity=DiversityOptions(near_duplicates="auto"))
    with pytest.raises(InputError, match="needs embeddings: the pool .* brings probabilities only"):
        mine_stream(
            make_strategy("hw"), tmp_path / "U.parquet", plan=plan, columns=PoolColumns(weak_proba=("w0", "w1"))
        )


def test_parquet_embeddings_as_columns_or_a_fixed_size_list(tmp_path):
    rng = np.random.default_rng(3)
    n = 400
    emb = rng.standard_normal((n, 4)).astype(np.float32)
    emb[300:] = emb[0]  # 100 exact copies of row 0
    p = rng.dirichlet([1, 1], n)
    cols = {"id": np.arange(n), "w0": p[:, 0], "w1": p[:, 1]}
    pq.write_table(pa.table({**cols, **{f"emb_{j}": emb[:, j] for j in range(4)}}), tmp_path / "cols.parquet")
    flat = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 4)
    pq.write_table(pa.table({**cols, "emb": flat}), tmp_path / "list.parquet")
    opts = DiversityOptions(near_duplicates=0.5)
    batches = []
    for path, names in (
        (tmp_path / "cols.parquet", tuple(f"emb_{j}" for j in range(4))),
        (tmp_path / "list.parquet", ("emb",)),
    ):
        plan = SelectionPlan.build(make_strategy("hw"), budget=50, diversity=opts)
        batches.append(
            mine_stream(
                make_strategy("hw"),
                path,
                plan=plan,
                chunk_size=64,
                columns=PoolColumns(weak_proba=("w0", "w1"), embedding=names),
            )
        )
    assert batches[0].ids.tolist() == batches[1].ids.tolist()
    assert np.isin(batches[0].ids, np.r_[0, 300:400]).sum() <= 1
    bad = emb.copy()
    bad[123, 2] = np.nan
    pq.write_table(pa.table({**cols, **{f"emb_{j}": bad[:, j] for j in range(4)}}), tmp_path / "nan.parquet")
    plan = SelectionPlan.build(make_strategy("hw"), budget=50, diversity=opts)
    with pytest.raises(InputError, match="NaN or infinite values in 1 rows"):
        mine_stream(
            make_strategy("hw"),
            tmp_path / "nan.parquet",
            plan=plan,
            columns=PoolColumns(weak_proba=("w0", "w1"), embedding=tuple(f"emb_{j}" for j in range(4))),
        )


def test_candidate_buffers_stay_bounded_and_keep_float32_embeddings():
    from unittest import mock

    import activemine.engines.candidates as candidates
    from activemine.engines.candidates import CandidateReducer

    rng = np.random.default_rng(4)
    strategy = make_strategy("hw", balance="equal", easy_share=0.1)
    plan = SelectionPlan.build(strategy, budget=2_000, diversity=DiversityOptions(near_duplicates="auto")).bind(
        classes=[0, 1], total_rows=120_000
    )
    reducer = CandidateReducer(plan)
    with mock.patch.object(candidates, "PRUNE_SLACK", 1):  # the slack is then half the bound
        for start in range(0, 120_000, 6_000):
            ids = np.arange(start, start + 6_000)
            reducer.add(
                ids,
                rng.random(6_000),
                rng.integers(0, 2, 6_000),
                embedding=rng.standard_normal((6_000, 8)).astype(np.float32),
            )
            for buffer in (*reducer.hard, *reducer.easy):
                assert buffer.size <= 1.5 * buffer.limit + 1  # never more than 1.5x its bound
    bounds = [b.limit for b in (*reducer.hard, *reducer.easy)]
    assert bounds == [1_804, 1_804, 200, 200]  # 2x the hard (902) and easy (100) bounds of a quota bound of 1,002
    ids, _, _, _, extra = reducer.diverse_candidates(release=True)
    assert ids.size == sum(bounds)
    assert extra["embedding"].dtype == np.float32 and extra["embedding"].shape == (ids.size, 8)
    assert all(b.size == 0 for b in (*reducer.hard, *reducer.easy))  # released

"""Id lookups by hash (uniqueness, exclusions, batch positions) and rows carried to the batch.

Every hash shortcut must give exactly what comparing the ids themselves gives,
hash collisions included: the collision cases replace the hash by a weak one.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import activemine.data.idindex as idindex
import activemine.engines.base as engine_base
import activemine.selection.batch as selection
from activemine import PoolChunk, make_strategy
from activemine.engines import SelectionPlan, run_engine
from activemine.errors import DuplicateIdError
from activemine.selection.batch import check_ids, duplicated_values

texts = st.text(alphabet="ab\u00e9\u4e2d0", min_size=0, max_size=4)


def _weak_hash(arr):
    """Every string of the same length gets the same hash: collisions everywhere."""
    return np.char.str_len(np.asarray(arr, dtype=str)).astype(np.uint64)


@settings(max_examples=60, deadline=None)
@given(st.lists(texts, max_size=40), st.booleans())
def test_duplicated_values_equal_an_exact_count(values, weak):
    arr = np.array(values, dtype=str) if values else np.array([], dtype="<U1")
    uniq, counts = np.unique(arr, return_counts=True)
    expected = uniq[counts > 1].tolist()
    if weak:
        original = selection.string_hash
        selection.string_hash = _weak_hash
        try:
            got = duplicated_values(arr).tolist()
        finally:
            selection.string_hash = original
    else:
        got = duplicated_values(arr).tolist()
    assert got == expected


def test_check_ids_names_string_duplicates_and_skips_when_told():
    ids = np.array(["b", "a", "c", "a"])
    with pytest.raises(DuplicateIdError, match=r"1 duplicated, e.g. \['a'\]"):
        check_ids(ids)
    assert check_ids(ids, unique=False).tolist() == ids.tolist()


def _weak_id_hash(arr):
    """Ids of the same length (or the same value mod 3) share a hash: collisions everywhere."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "U":
        return np.char.str_len(arr).astype(np.uint64) << np.uint64(60)
    return (arr.astype(np.int64) % 3).astype(np.uint64) << np.uint64(62)


ids_lists = st.one_of(st.lists(texts, max_size=120), st.lists(st.integers(-50, 50), max_size=120))


@settings(max_examples=80, deadline=None)
@given(ids_lists, st.data(), st.booleans())
def test_id_index_finds_exactly_what_is_there(values, data, weak):
    kind = str if values and isinstance(values[0], str) else np.int64
    uniq = list(dict.fromkeys(values))
    arr = np.array(uniq, dtype=kind) if uniq else np.array([], dtype=kind)
    queries = (data.draw(st.lists(st.sampled_from(values), max_size=50)) if values else []) + (
        ["zz", ""] if kind is str else [999, -999]
    )
    queries = np.array(queries, dtype=kind)
    original = idindex.id_hash
    if weak:
        idindex.id_hash = _weak_id_hash
    try:
        at = idindex.IdIndex(arr).find(queries)
    finally:
        idindex.id_hash = original
    where = {v: i for i, v in enumerate(arr.tolist())}
    assert at.tolist() == [where.get(p, -1) for p in queries.tolist()]


@settings(max_examples=60, deadline=None)
@given(st.lists(texts, unique=True, max_size=200), st.lists(texts, max_size=60))
def test_plan_exclusions_equal_isin(excluded, ids):
    plan = SelectionPlan(budget=1, exclude=np.array(excluded, dtype=str) if excluded else None)
    arr = np.array(ids, dtype=str) if ids else np.array([], dtype="<U1")
    got = plan.excluded(arr)
    if not excluded:
        assert got is None
    else:
        assert got.tolist() == np.isin(arr, np.array(excluded, dtype=str)).tolist()


def test_exclusions_of_many_integer_ids():
    rng = np.random.default_rng(1)
    excluded = rng.choice(10**9, size=50_000, replace=False)
    ids = np.concatenate([rng.choice(excluded, 1000), rng.integers(0, 10**9, size=5000)])
    plan = SelectionPlan(budget=1, exclude=excluded)
    assert plan.excluded(ids).tolist() == np.isin(ids, excluded).tolist()


@settings(max_examples=40, deadline=None)
@given(st.lists(texts, unique=True, min_size=1, max_size=40), st.data())
def test_positions_of_batch_ids_among_candidates(ids, data):
    arr = np.sort(np.array(ids, dtype=str))
    wanted = np.array(data.draw(st.permutations(arr.tolist())), dtype=str)[: data.draw(st.integers(0, arr.size))]
    assert arr[engine_base._positions(arr, wanted)].tolist() == wanted.tolist()


@pytest.mark.parametrize("string_ids", [False, True])
@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_attached_rows_come_back_aligned_with_the_batch(string_ids, chunk):
    rng = np.random.default_rng(0)
    n = 300
    raw = rng.random((n, 3)) + 0.05
    proba = raw / raw.sum(axis=1, keepdims=True)
    ids = rng.permutation(10 * n)[:n]
    if string_ids:
        ids = np.array([f"id-{v:x}" for v in ids])
    weak = np.roll(proba, 1, axis=0)
    pool = PoolChunk(ids, proba=proba, weak_proba=weak)

    def attach(c, first_row):
        return {"row": np.arange(first_row, first_row + len(c.ids)), "proba": np.asarray(c.proba)}

    plan = SelectionPlan(budget=40, balance="equal", easy_share=0.25, exclude=ids[:20])
    batch = run_engine("local", make_strategy("hw"), pool, plan=plan, chunk_size=chunk, attach=attach)
    plain = run_engine("local", make_strategy("hw"), pool, plan=plan, chunk_size=chunk)
    assert batch.ids.tolist() == plain.ids.tolist()  # carrying rows changes nothing selected
    rows = batch.attached["row"]
    assert ids[rows].tolist() == batch.ids.tolist()
    assert np.array_equal(batch.attached["proba"], proba[rows])
    assert plain.attached == {}

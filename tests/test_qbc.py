"""QBC that ranks every row: vote entropy, then the consensus, then the id."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _pool_helpers import write_member_proba_parts
from activemine import PoolChunk, make_strategy
from activemine.data.sources import PoolColumns
from activemine.engines import mine_stream
from activemine.engines.mining import score_pool
from activemine.errors import InputError
from activemine.selection.plan import SelectionPlan
from activemine.selection.scores import (
    kl_to_consensus,
    least_confidence,
    ranked_vote_entropy,
    split_ranked_vote_entropy,
    vote_entropy,
    vote_entropy_levels,
)


def agreeing_stack(rng, *, m: int, n: int, k: int, disagree: float) -> np.ndarray:
    """``(m, n, k)`` member probabilities whose members vote alike on all but about ``disagree`` of the rows."""
    base = rng.dirichlet(np.ones(k), n)  # (n, k)
    stack = np.repeat(base[None], m, axis=0)
    noise = rng.dirichlet(np.ones(k), (m, n))
    # most rows: small perturbations keep every member's vote; some rows: members' own distributions
    mix = np.where(rng.random(n) < disagree, 1.0, 0.0)[None, :, None]
    stack = (1 - mix) * stack + mix * noise
    return stack / stack.sum(axis=2, keepdims=True)


@st.composite
def tied_stacks(draw):
    """Committee stacks with many vote ties, repeated rows (ties on both keys) and 1 to 6 members."""
    m = draw(st.integers(1, 6))
    k = draw(st.integers(2, 4))
    n = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    stack = agreeing_stack(rng, m=m, n=n, k=k, disagree=draw(st.floats(0.0, 1.0)))
    repeat = rng.integers(0, n, size=n // 3)  # rows copied from other rows: equal on every key
    stack[:, : repeat.size] = stack[:, repeat]
    return stack


@pytest.mark.parametrize("m,k", [(1, 2), (2, 2), (3, 2), (3, 3), (4, 3), (5, 2), (5, 4), (6, 3)])
def test_levels_are_every_value_vote_entropy_can_take(m, k):
    # brute force: every assignment of votes to members, as one-hot stacks
    votes = np.array(list(itertools.product(range(k), repeat=m))).T  # (m, k**m)
    stack = np.eye(k)[votes]  # (m, k**m, k)
    seen = np.unique(np.round(vote_entropy(stack), 12))
    np.testing.assert_allclose(vote_entropy_levels(m, k), seen, atol=1e-12)


def test_levels_of_small_committees():
    np.testing.assert_allclose(vote_entropy_levels(3, 2), [0.0, -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)])
    assert vote_entropy_levels(1, 5).tolist() == [0.0]
    with pytest.raises(InputError, match="31"):
        vote_entropy_levels(31, 2)


@given(tied_stacks(), st.sampled_from(["lc", "entropy"]))
@settings(max_examples=200)
def test_composite_keeps_the_vote_order_and_breaks_its_ties_by_the_secondary_key(stack, secondary):
    m, n, k = stack.shape
    score = ranked_vote_entropy(stack, secondary=secondary)
    assert score.dtype == np.float64 and score.shape == (n,)
    votes = vote_entropy(stack)
    consensus = stack.mean(axis=0)
    if secondary == "lc":
        second = least_confidence(consensus)
    else:
        second = -(np.where(consensus > 0, consensus * np.log(np.where(consensus > 0, consensus, 1)), 0)).sum(axis=1)
    a, b = np.triu_indices(n, 1)
    vote_gt = votes[a] > votes[b] + 1e-9
    vote_eq = np.abs(votes[a] - votes[b]) <= 1e-9
    # a different vote decides, whatever the secondary key
    assert (score[a][vote_gt] > score[b][vote_gt]).all()
    assert (score[a][votes[a] < votes[b] - 1e-9] < score[b][votes[a] < votes[b] - 1e-9]).all()
    # the same vote: the secondary key decides (when it differs by more than rounding)
    sec_gt = vote_eq & (second[a] > second[b] + 1e-9)
    assert (score[a][sec_gt] > score[b][sec_gt]).all()
    # the same rows: the same score, bit for bit, left to the id
    same = (stack[:, a] == stack[:, b]).all(axis=(0, 2))
    assert (score[a][same] == score[b][same]).all()
    # the votes come back exactly
    back, _ = split_ranked_vote_entropy(score, n_members=m, n_classes=k)
    np.testing.assert_allclose(back, votes, atol=1e-9)
    assert set(back.tolist()) <= set(vote_entropy_levels(m, k).tolist())


@given(tied_stacks(), st.integers(1, 9))
@settings(max_examples=50)
def test_composite_is_a_pure_function_of_the_row(stack, chunk):
    whole = ranked_vote_entropy(stack)
    pieces = np.concatenate([ranked_vote_entropy(stack[:, i : i + chunk]) for i in range(0, stack.shape[1], chunk)])
    np.testing.assert_array_equal(pieces, whole)
    perm = np.random.default_rng(0).permutation(stack.shape[1])
    np.testing.assert_array_equal(ranked_vote_entropy(stack[:, perm]), whole[perm])


def _expected_order(stack, ids, *, secondary: bool = True):
    """Row indices ranked by votes (desc), consensus least confidence (desc), id (asc)."""
    votes = np.round(vote_entropy(stack), 9)
    second = np.round(least_confidence(stack.mean(axis=0)), 12) if secondary else np.zeros(ids.size)
    return np.lexsort((ids, -second, -votes))


@pytest.fixture
def agreeing_pool():
    rng = np.random.default_rng(3)
    n = 3000
    stack = agreeing_stack(rng, m=3, n=n, k=2, disagree=0.03)  # ~90 rows where members may disagree
    ids = rng.permutation(10 * n)[:n]
    return ids, stack


def test_agreeing_committee_selects_by_the_secondary_key_in_memory_and_streaming(agreeing_pool, tmp_path):
    ids, stack = agreeing_pool
    budget = 400  # far more than the rows with any disagreement
    votes = vote_entropy(stack)
    assert 0 < (votes > 0).sum() < budget / 2
    expected = ids[_expected_order(stack, ids)[:budget]]

    strategy = make_strategy("qbc").fit(None, n_proba_columns=2)
    scores, predicted = score_pool(strategy, PoolChunk(ids, member_proba=stack), chunk_size=333)
    in_memory = (
        SelectionPlan.build(strategy, budget=budget).bind(classes=strategy.classes_).select(ids, scores, predicted)
    )
    assert in_memory.ids.tolist() == expected.tolist()
    # without a secondary key the batch is a different, id-ordered one among the agreeing rows
    old = make_strategy("qbc", secondary=None).fit(None, n_proba_columns=2)
    s_old, p_old = score_pool(old, PoolChunk(ids, member_proba=stack))
    old_batch = SelectionPlan.build(old, budget=budget).bind(classes=old.classes_).select(ids, s_old, p_old)
    old_order = np.lexsort((ids, -np.round(votes, 9)))[:budget]
    assert old_batch.ids.tolist() == ids[old_order].tolist()
    assert len(set(old_batch.ids.tolist()) & set(expected.tolist())) < budget * 0.6

    groups = write_member_proba_parts(tmp_path, ids, stack, parts=3, row_group_size=250)
    for chunk_size in (97, 1000):
        streamed = mine_stream(
            make_strategy("qbc"), tmp_path, columns=PoolColumns(proba=groups), budget=budget, chunk_size=chunk_size
        )
        assert streamed.ids.tolist() == expected.tolist()
        np.testing.assert_array_equal(streamed.scores, in_memory.scores)


def test_a_tie_on_both_keys_falls_to_the_id():
    rng = np.random.default_rng(5)
    n = 200
    stack = agreeing_stack(rng, m=3, n=n, k=3, disagree=0.1)
    # rows 0..49 are copies of one row: equal votes and equal consensus
    stack[:, :50] = stack[:, [60]]
    stack[:, 60] = np.array([0.98, 0.01, 0.01])  # that row itself becomes the least worth labeling
    ids = np.arange(1000, 1000 + n)[::-1].copy()  # ids fall while rows rise
    strategy = make_strategy("qbc").fit(None, n_proba_columns=3)
    scores, predicted = strategy.score(PoolChunk(ids, member_proba=stack))
    assert np.unique(scores[:50]).size == 1
    ahead = int((scores > scores[0]).sum())
    batch = (
        SelectionPlan.build(strategy, budget=ahead + 10).bind(classes=strategy.classes_).select(ids, scores, predicted)
    )
    # the 10 tied rows taken are those with the smallest ids, in rising id order
    assert batch.ids[ahead:].tolist() == sorted(ids[:50].tolist())[:10]
    assert batch.ids.tolist() == ids[_expected_order(stack, ids)[: ahead + 10]].tolist()


def test_kl_and_old_rule_are_unchanged():
    rng = np.random.default_rng(2)
    stack = agreeing_stack(rng, m=3, n=50, k=2, disagree=0.5)
    ids = np.arange(50)
    for kwargs, expected in (({"disagreement": "kl"}, "kl"), ({"secondary": None}, "vote")):
        s = make_strategy("qbc", **kwargs).fit(None, n_proba_columns=2)
        got, _ = s.score(PoolChunk(ids, member_proba=stack))
        np.testing.assert_array_equal(got, kl_to_consensus(stack) if expected == "kl" else vote_entropy(stack))


def test_bad_secondary_key_and_committee_size_are_rejected():
    with pytest.raises(InputError, match="'margin'"):
        make_strategy("qbc", secondary="margin")
    with pytest.raises(InputError, match="40"):
        make_strategy("qbc", committee_size=40)
    make_strategy("qbc", committee_size=40, disagreement="kl")

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from activemine.errors import ProbabilityError
from activemine.selection.scores import (
    bald,
    check_proba,
    entropy,
    kl_to_consensus,
    least_confidence,
    smallest_margin,
    vote_entropy,
)

SINGLE = [least_confidence, smallest_margin, entropy]
COMMITTEE = [vote_entropy, kl_to_consensus]


@st.composite
def proba_matrices(draw, max_rows=30, max_k=6):
    n = draw(st.integers(1, max_rows))
    k = draw(st.integers(2, max_k))
    raw = draw(arrays(np.float64, (n, k), elements=st.floats(0.0, 1.0)))
    raw[:, 0] += 1e-9  # never an all-zero row
    return raw / raw.sum(axis=1, keepdims=True)


@st.composite
def committee_stacks(draw):
    m = draw(st.integers(2, 4))
    n = draw(st.integers(1, 20))
    k = draw(st.integers(2, 5))
    raw = draw(arrays(np.float64, (m, n, k), elements=st.floats(0.0, 1.0)))
    raw[..., 0] += 1e-9
    return raw / raw.sum(axis=2, keepdims=True)


@given(proba_matrices())
def test_bounds(p):
    k = p.shape[1]
    lc, sm, h = least_confidence(p), smallest_margin(p), entropy(p)
    tol = 1e-9
    assert lc.shape == sm.shape == h.shape == (p.shape[0],)
    assert (lc >= -tol).all() and (lc <= 1 - 1 / k + tol).all()
    assert (sm >= -tol).all() and (sm <= 1 + tol).all()
    assert (h >= -tol).all() and (h <= math.log(k) + tol).all()


@given(proba_matrices(), st.randoms(use_true_random=False))
def test_invariant_to_permuting_classes(p, rnd):
    perm = list(range(p.shape[1]))
    rnd.shuffle(perm)
    for fn in SINGLE:
        np.testing.assert_allclose(fn(p), fn(p[:, perm]), atol=1e-12)


@given(committee_stacks(), st.randoms(use_true_random=False))
def test_committee_invariant_to_permuting_classes_and_members(s, rnd):
    perm = list(range(s.shape[2]))
    rnd.shuffle(perm)
    members = list(range(s.shape[0]))
    rnd.shuffle(members)
    # vote ties go to the lowest index, so permuting classes only keeps vote entropy when no member has a tie
    np.testing.assert_allclose(kl_to_consensus(s), kl_to_consensus(s[members][:, :, perm]), atol=1e-9)
    np.testing.assert_allclose(vote_entropy(s), vote_entropy(s[members]), atol=1e-12)


@given(proba_matrices())
@settings(max_examples=50)
def test_float32_agrees_with_float64(p):
    for fn in SINGLE:
        out32 = fn(p.astype(np.float32))
        assert out32.dtype == np.float32
        np.testing.assert_allclose(out32, fn(p), atol=1e-5)


@given(proba_matrices(), st.integers(1, 7))
@settings(max_examples=50)
def test_chunking_does_not_change_scores(p, chunk):
    for fn in SINGLE:
        pieces = np.concatenate([fn(p[i : i + chunk]) for i in range(0, p.shape[0], chunk)])
        np.testing.assert_array_equal(pieces, fn(p))


def test_hand_computed_values():
    p = np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(least_confidence(p), [0.3, 2 / 3, 0.0])
    np.testing.assert_allclose(smallest_margin(p), [1 - 0.5, 1.0, 0.0])
    h0 = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    np.testing.assert_allclose(entropy(p), [h0, math.log(3), 0.0])
    binary = np.array([[0.5, 0.5], [0.9, 0.1]])
    np.testing.assert_allclose(least_confidence(binary), [0.5, 0.1])
    np.testing.assert_allclose(smallest_margin(binary), [1.0, 0.2])


def test_committee_hand_computed_values():
    a = np.array([[0.9, 0.1], [0.6, 0.4]])
    b = np.array([[0.2, 0.8], [0.7, 0.3]])
    stack = np.stack([a, b])
    # row 0: votes split 1-1 -> log 2; row 1: both vote class 0 -> 0
    np.testing.assert_allclose(vote_entropy(stack), [math.log(2), 0.0])
    cons = (a + b) / 2
    kl = lambda p, q: float(np.sum(p * np.log(p / q)))  # noqa: E731
    expected = [(kl(a[i], cons[i]) + kl(b[i], cons[i])) / 2 for i in range(2)]
    np.testing.assert_allclose(kl_to_consensus(stack), expected)


@given(committee_stacks())
def test_committee_bounds_and_agreement(s):
    m, _, k = s.shape
    ve, kl = vote_entropy(s), kl_to_consensus(s)
    assert (ve >= 0).all() and (ve <= math.log(min(m, k)) + 1e-9).all()
    assert (kl >= 0).all() and (kl <= math.log(m) + 1e-9).all()
    agree = np.repeat(s[:1], m, axis=0)
    np.testing.assert_allclose(vote_entropy(agree), 0.0, atol=1e-12)
    np.testing.assert_allclose(kl_to_consensus(agree), 0.0, atol=1e-12)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.array([[0.5, np.inf]]), "NaN or infinite"),
        (np.array([[0.7, 0.7]]), "sum to 1"),
        (np.array([[1.2, -0.2]]), "negative"),
        (np.array([0.5, 0.5]), "shape"),
        (np.array([[1.0], [1.0]]), "at least 2"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_bad_probabilities_raise(bad, match):
    for fn in SINGLE:
        with pytest.raises(ProbabilityError, match=match):
            fn(bad)


def test_error_names_the_offending_row():
    p = np.full((5, 2), 0.5)
    p[3] = [0.9, 0.3]
    with pytest.raises(ProbabilityError, match="first at row 3 sums to 1.2"):
        check_proba(p)


def test_committee_needs_a_stack():
    with pytest.raises(ProbabilityError, match=r"\(m, n, k\)"):
        vote_entropy(np.full((3, 2), 0.5))


@given(proba_matrices())
def test_argmax_rows_matches_numpy_including_ties(p):
    from activemine.selection.scores import argmax_rows

    np.testing.assert_array_equal(argmax_rows(p), p.argmax(axis=1))
    tied = np.full((4, 2), 0.5)
    assert argmax_rows(tied).tolist() == tied.argmax(axis=1).tolist() == [0, 0, 0, 0]


def test_validate_false_skips_only_the_check():
    p = np.array([[0.7, 0.2, 0.1]])
    for fn in SINGLE:
        np.testing.assert_array_equal(fn(p, validate=False), fn(p))


@given(committee_stacks(), st.randoms(use_true_random=False))
def test_bald_is_the_mean_kl_to_the_consensus_bounded_and_order_free(s, rnd):
    b = bald(s)
    m, n, k = s.shape
    assert b.shape == (n,)
    assert (b >= 0).all() and (b <= math.log(min(m, k)) + 1e-9).all()
    np.testing.assert_allclose(b, kl_to_consensus(s), atol=1e-9)
    members = list(range(m))
    rnd.shuffle(members)
    np.testing.assert_allclose(bald(s[members]), b, atol=1e-12)
    np.testing.assert_allclose(np.concatenate([bald(s[:, :1]), bald(s[:, 1:])]), b, atol=1e-12)  # chunk by chunk


def test_bald_zero_when_members_agree_and_high_when_confident_members_disagree():
    agree = np.tile(np.array([[[0.5, 0.5], [0.9, 0.1]]]), (3, 1, 1))
    np.testing.assert_allclose(bald(agree), 0.0, atol=1e-12)
    split = np.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # two sure members, opposite classes: log 2
    np.testing.assert_allclose(bald(split), [math.log(2)], atol=1e-12)

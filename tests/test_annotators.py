"""Agreement, consensus and annotator quality (activemine.annotators.agreement), cross-checked against crowd-kit and cleanlab."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from activemine.annotators.agreement import (
    annotator_report,
    cohen_kappa,
    consensus,
    dawid_skene,
    flag_annotators,
    krippendorff_alpha,
    label_matrix,
    majority_vote,
    model_weighted_consensus,
    pairwise_kappa,
    vote_counts,
)
from activemine.annotators.simulation import AnnotatorSpec, simulate_labels
from activemine.errors import InputError, ProbabilityError, UnknownLabelError

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", the nominal example: 4 coders, 12 units
# (None = no value); alpha = 0.743.
_K2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _matrix(coders):
    return np.array([[-1 if v is None else v - 1 for v in row] for row in coders]).T  # (units, coders)


def _team(n=1500, k=3, noise=0.15, overlap=0.3, seed=0):
    y = np.random.default_rng(seed).integers(0, k, n)
    L = simulate_labels(
        y, AnnotatorSpec(n=5, noise=noise, bad=1, bad_rate=0.4, overlap=overlap), k=k, pair=(0, 1), random_state=seed
    )
    return y, L


def _proba(y, k, seed=0, right=0.7):
    rng = np.random.default_rng(seed)
    P = np.full((y.size, k), (1 - right) / (k - 1))
    P[np.arange(y.size), y] = right
    P *= rng.uniform(0.5, 1.5, P.shape)
    return P / P.sum(axis=1, keepdims=True)


# -- agreement ------------------------------------------------------------------------
def test_cohen_kappa_textbook():
    # Wikipedia's example: 50 items, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4
    a = np.array([1] * 25 + [0] * 25)
    b = np.array([1] * 20 + [0] * 5 + [1] * 10 + [0] * 15)
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    y[:120] = x[:120]
    assert cohen_kappa(x, y) == pytest.approx(cohen_kappa_score(x, y))


def test_cohen_kappa_of_two_annotators_who_gave_one_class_alike_is_one():
    # one kappa for the package (activemine.metrics): annotators who never disagree agree perfectly
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0
    assert np.isnan(cohen_kappa([], []))


def test_krippendorff_alpha_textbook():
    assert krippendorff_alpha(_matrix(_K2011)) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_perfect_and_unusable():
    assert krippendorff_alpha(np.array([[0, 0], [1, 1], [2, 2]])) == pytest.approx(1.0)
    # single labels only: nothing to compare
    assert np.isnan(krippendorff_alpha(np.array([[0, -1], [-1, 1]])))


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=60))
def test_alpha_and_kappa_agree_on_two_full_raters(pairs):
    # with two raters and no missing values, alpha is kappa's cousin: both 1 when equal, and alpha <= 1
    L = np.array(pairs)
    alpha = krippendorff_alpha(L, 3)
    if not np.isnan(alpha):
        assert alpha <= 1.0 + 1e-12
        if (L[:, 0] == L[:, 1]).all():
            assert alpha == pytest.approx(1.0)


def test_pairwise_kappa_counts_shared_samples():
    L = np.array([[0, 0, -1], [1, 1, 1], [1, 0, -1], [-1, 1, 1]])
    pairs = {(p["a"], p["b"]): p for p in pairwise_kappa(L, 2)}
    assert pairs[(0, 1)]["shared"] == 3
    assert pairs[(0, 2)]["shared"] == 1
    assert pairs[(1, 2)]["shared"] == 2
    assert pairs[(0, 1)]["kappa"] == pytest.approx(cohen_kappa([0, 1, 1], [0, 1, 0], 2))


# -- consensus ------------------------------------------------------------------------------
def test_majority_vote_ties():
    L = np.array(
        [
            [0, 1, -1],  # tie 0/1: the model prefers 1
            [0, 1, -1],  # tie 0/1, no model preference (0.5/0.5): the rarer class over all labels wins
            [2, 2, 0],  # clear majority
            [-1, -1, -1],  # nobody
            [1, 1, -1],
            [1, -1, -1],
        ]
    )
    P = np.array([[0.2, 0.7, 0.1], [0.45, 0.45, 0.1], [1 / 3] * 3, [1 / 3] * 3, [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])
    out = majority_vote(L, 3, proba=P).labels
    assert out.tolist() == [1, 0, 2, -1, 1, 1]  # label counts: 0 x3, 1 x5, 2 x2 -> row 1's tie goes to the rarer 0
    # without a model: the rarer class, then the smaller index
    assert majority_vote(np.array([[0, 1], [1, 1], [2, -1]]), 3).labels.tolist() == [0, 1, 2]
    assert majority_vote(np.array([[0, 1], [0, 1]]), 2).labels.tolist() == [0, 0]


def test_single_label_annotator():
    # an annotator with a single label, shared with one other annotator who disagrees: kept, rated, never flagged
    L = np.array([[0, 0, -1], [1, 1, -1], [1, 1, -1], [0, 0, -1], [1, -1, -1]] * 5)
    L[4, 2] = 0
    report = annotator_report(L, 2, result=consensus(L, 2, method="majority"))
    solo = report["annotators"][2]
    assert solo["labels"] == 1 and solo["shared"] == 1 and solo["flagged"] is False
    assert solo["agreement_with_others"] == 0.0
    assert solo["agreement_with_consensus"] == 1.0  # the tie 1/0 goes to the rarer class 0, its label
    ds = dawid_skene(L, 2)
    assert ds.labels.shape == (25,) and np.isfinite(ds.posterior).all()


def test_dawid_skene_beats_majority_with_a_bad_annotator():
    y, L = _team(noise=0.05, overlap=0.5)
    mv = majority_vote(L, 3)
    ds = dawid_skene(L, 3)
    assert np.mean(ds.labels == y) >= np.mean(mv.labels == y)
    # the bad annotator's estimated confusion shows the 0<->1 mix-up; a good one's does not
    assert ds.confusion[4, 0, 1] > 0.25 and ds.confusion[0, 0, 1] < 0.1
    assert np.allclose(ds.confusion.sum(axis=2), 1.0)
    assert np.allclose(ds.posterior.sum(axis=1), 1.0)


def test_dawid_skene_is_deterministic():
    _, L = _team(seed=3)
    a, b = dawid_skene(L, 3), dawid_skene(L, 3)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.posterior, b.posterior)


def test_model_weighted_consensus_uses_the_model_on_single_labels():
    y, L = _team(noise=0.2, overlap=0.2)
    P = _proba(y, 3)
    mw = model_weighted_consensus(L, P, k=3)
    assert np.mean(mw.labels == y) > np.mean(majority_vote(L, 3).labels == y) + 0.05
    assert mw.annotator_weights.shape == (5,) and mw.model_weight > 0
    assert mw.annotator_weights[4] < np.median(mw.annotator_weights[:4])


def test_consensus_bad_input():
    with pytest.raises(InputError, match="unknown consensus method 'vote'"):
        consensus(np.zeros((2, 2), dtype=int), 2, method="vote")
    with pytest.raises(InputError, match="needs the model"):
        consensus(np.zeros((2, 2), dtype=int), 2, method="model-weighted")
    with pytest.raises(UnknownLabelError):
        majority_vote(np.array([[0, 3]]), 2)
    with pytest.raises(InputError, match="matrix"):
        majority_vote(np.array([0, 1]), 2)
    with pytest.raises(ProbabilityError):
        model_weighted_consensus(np.array([[0, 1]]), np.array([[0.5, 0.6]]), k=2)


def test_label_matrix_from_records():
    L, samples, people = label_matrix(
        [("x", "ann", "cat"), ("x", "bob", "dog"), ("y", "ann", "dog")], classes=["cat", "dog"]
    )
    assert samples == ["x", "y"] and people == ["ann", "bob"]
    assert L.tolist() == [[0, 1], [1, -1]]
    assert vote_counts(L, 2).tolist() == [[1, 1], [0, 1]]
    with pytest.raises(UnknownLabelError, match="'cow'"):
        label_matrix([("x", "ann", "cow")], classes=["cat", "dog"])


# -- quality ----------------------------------------------------------------------------------
def test_report_ranks_and_flags_the_bad_annotator():
    y, L = _team(n=3000, noise=0.05, overlap=0.3)
    P = _proba(y, 3)
    report = annotator_report(L, 3, result=model_weighted_consensus(L, P, k=3), proba=P, names=list("abcdX"))
    rows = {r["name"]: r for r in report["annotators"]}
    assert rows["X"]["rank"] == 1 and rows["X"]["flagged"]
    assert not any(rows[n]["flagged"] for n in "abcd")
    assert sorted(r["rank"] for r in report["annotators"]) == [1, 2, 3, 4, 5]
    assert len(report["pairs"]) == 10 and 0 < report["alpha"] < 1
    assert rows["X"]["agreement_with_model"] < rows["a"]["agreement_with_model"]


def test_flag_rule():
    # equal annotators: nobody; one 20 points below on 400 shared labels: flagged; the same on 5 labels: not
    assert not flag_annotators([0.9, 0.9, 0.9, 0.9], [400] * 4).any()
    assert flag_annotators([0.9, 0.9, 0.9, 0.7], [400] * 4).tolist() == [False, False, False, True]
    assert not flag_annotators([0.9, 0.9, 0.9, 0.7], [400, 400, 400, 5]).any()
    assert not flag_annotators([0.9, 0.9, 0.9, 0.87], [400] * 4).any()  # within the 5-point margin


# -- reference implementations ------------------------------------------------------------------
@pytest.mark.parametrize("k,overlap,seed", [(2, 0.1, 0), (3, 0.3, 1), (10, 0.5, 2)])
def test_dawid_skene_matches_crowd_kit(k, overlap, seed):
    pd = pytest.importorskip("pandas")
    crowdkit = pytest.importorskip("crowdkit.aggregation", reason="crowd-kit is in the test extra")
    y, L = _team(n=1500, k=k, overlap=overlap, seed=seed)
    rows, cols = np.nonzero(L >= 0)
    df = pd.DataFrame({"task": rows, "worker": cols, "label": L[rows, cols]})
    theirs = crowdkit.DawidSkene(n_iter=100).fit_predict(df).reindex(range(L.shape[0])).to_numpy()
    ours = dawid_skene(L, k).labels
    assert np.mean(ours == theirs) >= 0.99
    assert abs(np.mean(ours == y) - np.mean(theirs == y)) <= 0.002


@pytest.mark.parametrize("k,overlap,seed", [(2, 0.1, 0), (3, 0.3, 1), (10, 0.5, 2)])
def test_model_weighted_matches_cleanlab_crowdlab(k, overlap, seed):
    pd = pytest.importorskip("pandas")
    multi = pytest.importorskip("cleanlab.multiannotator", reason="cleanlab is in the test extra")
    y, L = _team(n=1500, k=k, overlap=overlap, seed=seed)
    P = _proba(y, k, seed=seed, right=0.6)
    frame = pd.DataFrame(np.where(L >= 0, L, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = multi.get_label_quality_multiannotator(frame, P, verbose=False)
        # the weights of the first pass (from the majority vote), which the consensus is computed with
        weights = multi.get_label_quality_multiannotator(
            frame, P, verbose=False, consensus_method="majority_vote", return_weights=True
        )
    ours = model_weighted_consensus(L, P, k=k)
    assert np.mean(ours.labels == theirs["label_quality"]["consensus_label"].to_numpy()) >= 0.99
    assert ours.model_weight == pytest.approx(weights["model_weight"], rel=1e-6)
    assert ours.annotator_weights == pytest.approx(np.asarray(weights["annotator_weight"]), rel=1e-6)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from activemine.errors import InputError, SingleClassError
from activemine.metrics import cohen_kappa, roc_auc, roc_points, tpr_at_fpr


def test_roc_points_hand_worked_with_a_tie():
    # sorted: 2 (pos), then a tie at 1 (one neg, one pos) = one diagonal step, then 0 (neg)
    fpr, tpr, thr = roc_points([1, 0, 1, 0], [2, 1, 1, 0])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(thr, [np.inf, 2, 1, 0])


def test_tpr_at_fpr_interpolates_between_points():
    # between (0, 0.5) and (0.5, 1): a quarter of the way along FPR is halfway -> 0.75
    assert tpr_at_fpr([1, 0, 1, 0], [2, 1, 1, 0], fpr=0.25) == pytest.approx(0.75)
    assert tpr_at_fpr([1, 0, 1, 0], [2, 1, 1, 0], fpr=0.0) == pytest.approx(0.5)


def test_tpr_at_fpr_takes_the_top_of_a_vertical_run():
    # points (0,0) (0,.5) (.5,.5) (.5,1) (1,1): at FPR 0.5 the best TPR is 1
    y, s = [1, 0, 1, 0], [4, 3, 2, 1]
    assert tpr_at_fpr(y, s, fpr=0.5) == pytest.approx(1.0)
    assert tpr_at_fpr(y, s, fpr=0.25) == pytest.approx(0.5)
    assert tpr_at_fpr(y, s, fpr=0.49) == pytest.approx(0.5)


def test_perfect_and_inverted_rankings():
    y = [1, 1, 0, 0, 0]
    assert tpr_at_fpr(y, [5, 4, 3, 2, 1]) == 1.0
    assert roc_auc(y, [5, 4, 3, 2, 1]) == 1.0
    assert tpr_at_fpr(y, [1, 2, 3, 4, 5], fpr=0.01) == 0.0
    assert roc_auc(y, [1, 2, 3, 4, 5]) == 0.0


def test_auc_hand_worked_with_ties():
    # pairs (pos, neg): 2>1, 2>0, 1=1 (half), 1>0 -> 3.5 / 4
    assert roc_auc([1, 0, 1, 0], [2, 1, 1, 0]) == pytest.approx(0.875)


def test_pos_label_and_string_labels():
    y = np.array(["shirt", "rest", "shirt", "rest"])
    assert tpr_at_fpr(y, [2, 1, 1, 0], fpr=0.25, pos_label="shirt") == pytest.approx(0.75)
    assert roc_auc(y, [0, 1, 1, 2], pos_label="rest") == pytest.approx(0.875)


def test_multiclass_is_macro_one_vs_rest():
    y = np.array([0, 1, 2, 0, 1, 2])
    scores = np.array(
        [[0.8, 0.1, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4], [0.4, 0.5, 0.1], [0.1, 0.6, 0.3], [0.1, 0.2, 0.7]]
    )
    per_class = [tpr_at_fpr(y == c, scores[:, c], fpr=0.3) for c in range(3)]
    assert tpr_at_fpr(y, scores, fpr=0.3) == pytest.approx(np.mean(per_class))
    aucs = [roc_auc(y == c, scores[:, c]) for c in range(3)]
    assert roc_auc(y, scores) == pytest.approx(np.mean(aucs))
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores, multi_class="ovr", average="macro"))
    assert roc_auc(y + 5, scores, classes=[5, 6, 7]) == pytest.approx(roc_auc(y, scores))


@pytest.mark.parametrize(
    "args, error",
    [
        (([1, 1, 1], [0.1, 0.2, 0.3]), SingleClassError),
        (([0, 0], [0.1, 0.2]), SingleClassError),
        (([1, 0], [0.1]), InputError),
        (([1, 0], [0.1, np.nan]), InputError),
        (([1, 0], [[0.1], [0.2]]), InputError),
    ],
)
def test_bad_input_raises_typed_errors(args, error):
    with pytest.raises(error):
        tpr_at_fpr(*args)


def test_bad_fpr_and_classes_are_named():
    with pytest.raises(InputError, match="1.5"):
        tpr_at_fpr([1, 0], [0.9, 0.1], fpr=1.5)
    with pytest.raises(InputError, match=r"\[7\]"):
        roc_auc([0, 1, 7], np.full((3, 2), 0.5))


labels_and_scores = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < n),
        st.lists(st.integers(0, 6), min_size=n, max_size=n),  # few distinct values: many ties
    )
)


@settings(max_examples=150, deadline=None)
@given(labels_and_scores, st.floats(0, 1))
def test_properties_against_sklearn_and_monotone(data, f):
    y, s = np.array(data[0]), np.array(data[1], dtype=float)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    t = tpr_at_fpr(y, s, fpr=f)
    assert 0.0 <= t <= 1.0
    assert tpr_at_fpr(y, s, fpr=min(1.0, f + 0.1)) >= t - 1e-12
    # a strictly increasing transform of the scores and a shuffle of the rows change nothing
    order = np.random.default_rng(0).permutation(y.size)
    assert tpr_at_fpr(y[order], np.exp(s[order]), fpr=f) == pytest.approx(t)
    # at an ROC point whose FPR is attained once, the value is that point's TPR
    fpr, tpr, _ = roc_points(y, s)
    unique = np.flatnonzero(np.bincount(np.searchsorted(np.unique(fpr), fpr)) == 1)
    for i in np.searchsorted(fpr, np.unique(fpr)[unique]):
        assert tpr_at_fpr(y, s, fpr=fpr[i]) == pytest.approx(tpr[i])


# -- Cohen's kappa: one function for the stopping criteria and the annotator report ----------------


def test_kappa_of_identical_vectors_is_one_even_with_one_class():
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0  # p_e = 1: 0 / 0 in the textbook formula
    assert cohen_kappa([0, 1, 1], [0, 1, 1]) == 1.0
    assert cohen_kappa([0, 0, 0], [1, 1, 1]) == 0.0  # both constant, different classes: p_o = p_e = 0


def test_kappa_without_samples_is_nan_and_bad_vectors_are_input_errors():
    assert np.isnan(cohen_kappa([], []))
    with pytest.raises(InputError, match="one length"):
        cohen_kappa([0, 1], [0])
    with pytest.raises(InputError, match="class indices >= 0"):
        cohen_kappa([0, -1], [0, 1])


def test_the_stopping_criteria_and_the_annotator_report_share_the_one_kappa():
    from activemine.annotators import agreement
    from activemine.budget import stopping

    assert agreement.cohen_kappa is stopping.cohen_kappa is cohen_kappa


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 60), st.integers(0, 2**31 - 1))
def test_kappa_matches_scikit_learn_where_it_is_defined(k, m, seed):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, size=m)
    b = np.where(rng.random(m) < 0.6, a, rng.integers(0, k, size=m))
    ours = cohen_kappa(a, b, k)
    if np.array_equal(a, b):
        assert ours == 1.0
        return
    assert ours < 1.0
    assert ours == pytest.approx(cohen_kappa_score(a, b, labels=np.arange(k)), abs=1e-12)

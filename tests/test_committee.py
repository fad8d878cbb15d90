import numpy as np
import pytest
from sklearn.datasets import make_classification

from activemine.errors import InputError, SingleClassError, UnknownLabelError
from activemine.selection.committee import Committee, stratified_bootstrap


@pytest.fixture(scope="module")
def xy():
    return make_classification(
        n_samples=300, n_features=6, n_informative=4, n_classes=3, weights=[0.8, 0.15, 0.05], random_state=1
    )


def test_stratified_bootstrap_keeps_every_class(xy):
    _, y = xy
    for seed in range(20):
        rows = stratified_bootstrap(y, rng=np.random.default_rng(seed))
        assert set(y[rows]) == set(y)
        assert np.bincount(y[rows]).tolist() == np.bincount(y).tolist()
    small = stratified_bootstrap(y, rng=np.random.default_rng(0), size=10)
    assert set(y[small]) == set(y)


def test_members_are_diverse_and_reproducible(xy):
    X, y = xy
    a = Committee("logreg", n_members=3, feature_fraction=0.5, random_state=0).fit(X, y)
    b = Committee("logreg", n_members=3, feature_fraction=0.5, random_state=0).fit(X, y)
    stack = a.predict_proba_stack(X)
    assert stack.shape == (3, 300, 3)
    np.testing.assert_array_equal(stack, b.predict_proba_stack(X))
    assert not np.allclose(stack[0], stack[1])
    assert len({tuple(f) for _, f in a.members_}) > 1, "feature subsets differ between members"
    assert all(len(f) == 3 for _, f in a.members_)
    np.testing.assert_allclose(a.predict_proba(X), stack.mean(axis=0))


def test_grow_adds_one_member_trained_on_new_and_old(xy):
    X, y = xy
    c = Committee("logreg", n_members=2, random_state=0).fit(X[:200], y[:200])
    c.grow(X[200:], y[200:], X[:200], y[:200])
    assert len(c.members_) == 3 and c.n_fits_ == 3
    assert c.predict_proba_stack(X).shape == (3, 300, 3)
    with pytest.raises(UnknownLabelError, match=r"\[9\]"):
        c.grow(X[:2], np.array([0, 9]))


def test_bad_input(xy):
    X, y = xy
    with pytest.raises(SingleClassError):
        Committee("logreg").fit(X, np.zeros(300, int))
    with pytest.raises(InputError, match="n_members"):
        Committee("logreg", n_members=0).fit(X, y)
    with pytest.raises(InputError, match="feature_fraction"):
        Committee("logreg", feature_fraction=0).fit(X, y)


def test_members_fit_and_score_the_same_in_parallel_as_one_by_one():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    stacks = [
        Committee("logreg", n_members=3, feature_fraction=0.6, random_state=4, n_jobs=jobs)
        .fit(X, y)
        .predict_proba_stack(X)
        for jobs in (1, 3)
    ]
    np.testing.assert_array_equal(stacks[0], stacks[1])


def test_members_report_class_counts_and_warn_on_rare_classes(xy):
    import warnings

    from activemine.selection.committee import RareClassWarning

    X, y = xy
    with warnings.catch_warnings():
        warnings.simplefilter("error", RareClassWarning)
        c = Committee("logreg", n_members=3, random_state=0).fit(X, y)
    # stratified bootstraps: every member sees each class as often as the labeled set holds it
    assert c.member_class_counts_.shape == (3, 3)
    assert (c.member_class_counts_ == np.bincount(y)).all()
    # 3 rows of class 2: every member is trained on 3 of them, below the default of 5
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:3]]
    with pytest.warns(RareClassWarning, match=r"3 committee member/class pair\(s\).*member 0: 3 of class 2"):
        rare = Committee("logreg", n_members=3, random_state=0).fit(X[keep], y[keep])
    assert rare.member_class_counts_[:, 2].tolist() == [3, 3, 3]
    # a grown member trained on a batch without class 2 and a resample of 10 old rows sees it once
    new = np.flatnonzero(y != 2)[:20]
    with pytest.warns(RareClassWarning, match="member 3: 1 of class 2"):
        c.grow(X[new], y[new], X, y, resample_size=10)
    resample = np.maximum(1, np.round(np.bincount(y) * 10 / y.size))  # stratified, every class at least once
    assert c.member_class_counts_.shape == (4, 3)
    assert c.member_class_counts_[3].tolist() == (np.bincount(y[new], minlength=3) + resample).tolist()
    with pytest.raises(InputError, match="min_class_count"):
        Committee("logreg", min_class_count=-1).fit(X, y)

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.datasets import make_blobs
from sklearn.neighbors import KNeighborsClassifier

from activemine import LabeledSet
from activemine.data.chunks import PoolChunk
from activemine.dirty import (
    DirtyDataFilter,
    check_drop,
    check_returned_labels,
    clean_labels,
    estimate_dirty_share,
    find_suspects,
    held_out_check,
    label_quality_scores,
    out_of_fold_proba,
    per_class_thresholds,
)
from activemine.dirty.oof import fold_of
from activemine.dirty.policy import Z_DROP, check_fold_seed
from activemine.dirty.soft import (
    ALPHA,
    MIN_WEIGHT,
    Z_UNSURE,
    choose_soft_targets,
    expand,
    fit_soft,
    soft_label_check,
    soft_targets,
)
from activemine.errors import InputError, ProbabilityError, SingleClassError, UnknownLabelError
from activemine.experiments.noise import inject_label_noise
from activemine.selection.strategies import HWStrategy, make_strategy


def separable(n=300, k=3, seed=0):
    X, y = make_blobs(n_samples=n, centers=k, n_features=4, cluster_std=0.6, center_box=(-12, 12), random_state=seed)
    return X, y


@pytest.fixture(scope="module")
def blobs():
    """Overlapping 3-class blobs with 10% uniform flips and their out-of-fold probabilities."""
    X, y = make_blobs(n_samples=600, centers=3, n_features=4, cluster_std=1.5, random_state=1)
    noisy, flipped = inject_label_noise(y, 0.10, random_state=3)
    return X, y, noisy, flipped, out_of_fold_proba("logreg", X, noisy, 5, seed=0)


def rows_of(proba):
    """Probability rows from any non-negative matrix."""
    m = np.asarray(proba, dtype=np.float64) + 1e-3
    return m / m.sum(axis=1, keepdims=True)


# -- check_returned_labels ----------------------------------------------------------
def test_check_returned_labels_threshold_semantics():
    proba = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0], [0.45, 0.55, 0.0]])
    labels = np.array(["a", "b", "a", "b", "a"])
    kw = dict(classes=["a", "b", "c"])
    # disagreement = max p - p(given): 0, 0.85, 0.1, 0 (a tie with the top class), 0.1
    np.testing.assert_array_equal(check_returned_labels(labels, proba, **kw), [False, True, False, False, False])
    np.testing.assert_array_equal(check_returned_labels(labels, proba, threshold=0.0, **kw), [0, 1, 1, 0, 1])
    assert not check_returned_labels(labels, proba, threshold=1.0, **kw).any()


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(np.float64, (12, 4), elements=st.floats(0, 1)),
    st.floats(0, 1),
    st.floats(0, 1),
    st.integers(0, 2**32 - 1),
)
def test_check_returned_labels_flags_fewer_as_threshold_rises(raw, t1, t2, seed):
    proba = rows_of(raw)
    labels = np.random.default_rng(seed).integers(0, 4, size=12)
    low, high = sorted((t1, t2))
    strict = check_returned_labels(labels, proba, classes=[0, 1, 2, 3], threshold=high)
    loose = check_returned_labels(labels, proba, classes=[0, 1, 2, 3], threshold=low)
    assert strict.dtype == bool and strict.shape == (12,)
    assert not (strict & ~loose).any()
    # a label that is the model's top class is never flagged
    assert not check_returned_labels(proba.argmax(axis=1), proba, classes=[0, 1, 2, 3], threshold=low).any()


def test_check_returned_labels_bad_input():
    proba = np.array([[0.7, 0.3], [0.2, 0.8]])
    with pytest.raises(UnknownLabelError, match=r"\['z'\]"):
        check_returned_labels(["a", "z"], proba, classes=["a", "b"])
    with pytest.raises(InputError, match="3 labels and 2 probability rows"):
        check_returned_labels(["a", "b", "a"], proba, classes=["a", "b"])
    with pytest.raises(ProbabilityError, match="3 classes"):
        check_returned_labels(["a", "b"], proba, classes=["a", "b", "c"])
    with pytest.raises(InputError, match="threshold"):
        check_returned_labels(["a", "b"], proba, classes=["a", "b"], threshold=1.5)


# -- inject_label_noise ---------------------------------------------------------------
def test_uniform_noise_flips_exactly_the_rate_to_other_classes():
    y = np.repeat(np.array([3, 5, 7]), 100)
    noisy, flipped = inject_label_noise(y, 0.2, random_state=1)
    assert flipped.sum() == 60
    np.testing.assert_array_equal(flipped, noisy != y)
    assert set(np.unique(noisy)) <= {3, 5, 7}
    again, _ = inject_label_noise(y, 0.2, random_state=1)
    other, _ = inject_label_noise(y, 0.2, random_state=2)
    np.testing.assert_array_equal(noisy, again)
    assert not np.array_equal(noisy, other)


def test_ambiguous_top_noise_flips_the_most_confusable_rows_to_their_runner_up():
    y = np.array([0, 0, 1, 1, 2, 2])
    proba = np.array([[0.9, 0.1, 0.0], [0.5, 0.1, 0.4], [0.05, 0.9, 0.05], [0.3, 0.65, 0.05], [0, 0.2, 0.8], [0, 0, 1]])
    noisy, flipped = inject_label_noise(y, 0.5, kind="ambiguous-top", proba=proba)
    # runner-up probabilities: 0.1, 0.4, 0.05, 0.3, 0.2, 0 -> rows 1, 3 and 4 go to 2, 0 and 1
    np.testing.assert_array_equal(np.flatnonzero(flipped), [1, 3, 4])
    np.testing.assert_array_equal(noisy, [0, 2, 1, 0, 1, 2])


def test_ambiguous_noise_is_drawn_in_proportion_to_ambiguity():
    # 4000 rows, half with runner-up probability 0.4 and half 0.1: a weighted draw of 10% flips
    n = 4000
    y = np.zeros(n, dtype=np.int64)
    runner_up = np.where(np.arange(n) < n // 2, 0.4, 0.1)
    proba = np.c_[1.0 - runner_up, runner_up]
    noisy, flipped = inject_label_noise(y, 0.10, kind="ambiguous", proba=proba, classes=[0, 1], random_state=5)
    assert flipped.sum() == 400 and (noisy[flipped] == 1).all() and (noisy[~flipped] == 0).all()
    ambiguous_share = flipped[: n // 2].mean() / flipped[n // 2 :].mean()
    assert 2.5 < ambiguous_share < 6.0  # about 4 (weights 0.4 vs 0.1), never all from one half
    never = np.r_[np.zeros(10), np.full(10, 0.5)]
    _, flipped = inject_label_noise(
        np.zeros(20, int), 0.25, kind="ambiguous", proba=np.c_[1 - never, never], classes=[0, 1]
    )
    assert flipped[10:].sum() == 5  # a sample no other class can claim is never flipped while others can be
    first, second = (
        inject_label_noise(y, 0.10, kind="ambiguous", proba=proba, classes=[0, 1], random_state=s)[1] for s in (5, 5)
    )
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(
        first, inject_label_noise(y, 0.10, kind="ambiguous", proba=proba, classes=[0, 1], random_state=6)[1]
    )


def test_inject_label_noise_bad_input():
    y = np.array([0, 1, 0, 1])
    with pytest.raises(InputError, match="needs proba"):
        inject_label_noise(y, 0.5, kind="ambiguous")
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        inject_label_noise(y, 1.0)
    with pytest.raises(InputError, match="noise kind"):
        inject_label_noise(y, 0.1, kind="pairwise")
    with pytest.raises(SingleClassError):
        inject_label_noise(np.zeros(4, int), 0.1)
    with pytest.raises(InputError, match="4 labels and 3 probability rows"):
        inject_label_noise(y, 0.5, kind="ambiguous", proba=np.full((3, 2), 0.5))


# -- label quality and thresholds ------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, (10, 3), elements=st.floats(0, 1)), st.integers(0, 2**32 - 1))
def test_label_quality_scores_range_and_direction(raw, seed):
    proba = rows_of(raw)
    labels = np.random.default_rng(seed).integers(0, 3, size=10)
    sc = label_quality_scores(labels, proba)
    nm = label_quality_scores(labels, proba, method="normalized_margin")
    np.testing.assert_allclose(sc, proba[np.arange(10), labels])
    assert ((nm >= 0) & (nm <= 1)).all()
    # the model's top class has margin >= 0, so quality >= 1/2; any other label has quality <= 1/2
    top = proba.argmax(axis=1)
    assert (label_quality_scores(top, proba, method="normalized_margin") >= 0.5 - 1e-12).all()
    assert (nm[labels != top] <= 0.5 + 1e-12).all()


def test_per_class_thresholds_are_class_means_of_the_given_class():
    labels = np.array([0, 0, 1, 1, 1])
    proba = np.array([[0.9, 0.1, 0], [0.5, 0.5, 0], [0.2, 0.8, 0], [0.4, 0.6, 0], [0.0, 0.7, 0.3]])
    t = per_class_thresholds(labels, proba)
    np.testing.assert_allclose(t[:2], [0.7, 0.7])
    assert t[2] == np.inf  # no row labeled 2: nothing is ever confidently 2


# -- detection ----------------------------------------------------------------------
def test_find_suspects_recalls_planted_flips(blobs):
    X, y, noisy, flipped, proba = blobs
    issues = find_suspects(noisy, proba)
    found = np.zeros(y.size, bool)
    found[issues] = True
    recall = (found & flipped).sum() / flipped.sum()
    precision = (found & flipped).sum() / found.sum()
    assert recall >= 0.7 and precision >= 0.7, (recall, precision)
    # ranked by label quality, most suspect first
    quality = label_quality_scores(noisy, proba)
    assert (np.diff(quality[issues]) >= 0).all()


def test_find_suspects_returns_ids_and_uses_classes():
    names = np.array(["cat", "dog"])
    proba = np.array([[0.95, 0.05]] * 6 + [[0.05, 0.95]] * 6)
    labels = names[[0] * 6 + [1] * 6]
    labels[2] = "dog"  # planted: the model is sure it is a cat
    ids = np.arange(100, 112)
    assert find_suspects(labels, proba, classes=names, ids=ids).tolist() == [102]


def test_no_flags_on_clean_separable_data():
    X, y = separable()
    proba = out_of_fold_proba("logreg", X, y, 3, seed=0)
    assert find_suspects(y, proba).size == 0
    assert estimate_dirty_share(y, proba) == 0.0
    report = clean_labels(y, proba)
    assert report.keep.all() and report.n_suspect == 0


def test_estimate_dirty_share_tracks_planted_rate(blobs):
    X, y, noisy, flipped, proba = blobs
    assert estimate_dirty_share(noisy, proba) == pytest.approx(0.10, abs=0.04)


@pytest.mark.parametrize("fn", [find_suspects, estimate_dirty_share, clean_labels])
def test_detection_bad_input(fn):
    proba = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    with pytest.raises(UnknownLabelError, match=r"\[2\]"):
        fn(np.array([0, 2, 1]), proba)  # label 2 is outside the two probability columns
    with pytest.raises(InputError, match="2 labels and 3 probability rows"):
        fn(np.array([0, 1]), proba)
    with pytest.raises(UnknownLabelError, match="column indices"):
        fn(np.array(["a", "b", "a"]), proba)
    with pytest.raises(ProbabilityError, match="sum to 1"):
        fn(np.array([0, 1, 0]), proba * 2)


# -- policy -------------------------------------------------------------------------
def test_prune_reaches_max_dirty_and_review_drops_nothing(blobs):
    X, y, noisy, flipped, proba = blobs
    report = clean_labels(noisy, proba, max_dirty=0.02)
    assert report.dirty_share_before > 0.05
    assert report.dirty_share_after <= 0.02
    assert report.n_dropped > 0 and flipped[~report.keep].mean() >= 0.8
    np.testing.assert_array_equal(report.action == "drop", ~report.keep)
    assert set(np.flatnonzero(report.action == "review")) <= set(np.flatnonzero(report.suspect))
    looser = clean_labels(noisy, proba, max_dirty=0.06)
    assert looser.n_dropped < report.n_dropped
    review = clean_labels(noisy, proba, policy="review")
    assert review.keep.all()
    np.testing.assert_array_equal(review.action == "review", review.suspect)
    off = clean_labels(noisy, proba, policy="off")
    assert off.keep.all() and (off.action == "keep").all()


def test_prune_never_drops_more_than_the_class_cap():
    # class 0 holds 50 rows of which 20 are sure to belong to class 1
    labels = np.array([0] * 50 + [1] * 50)
    proba = np.tile([0.97, 0.03], (100, 1))
    proba[50:] = [0.03, 0.97]
    proba[:20] = [0.02, 0.98]
    uncapped = clean_labels(labels, proba, max_dirty=0.0, max_class_fraction=1.0)
    assert (~uncapped.keep).sum() == 20
    capped = clean_labels(labels, proba, max_dirty=0.0, max_class_fraction=0.1)
    assert (~capped.keep).sum() == 5  # floor(0.1 * 50)
    assert capped.dirty_share_after > 0.0
    assert (capped.action[:20] == "review").sum() == 15
    np.testing.assert_array_equal(capped.suggested[:20], 1)


def test_out_of_fold_rows_are_predicted_by_models_that_never_saw_them():
    X = np.arange(12, dtype=float)[:, None]
    y = np.array([0, 1] * 6)
    # 1-NN in sample would return each row's own label; out of fold it sees only other rows
    proba = out_of_fold_proba(KNeighborsClassifier(1), X, y, 3, seed=0, classes=[1, 0])
    assert proba.shape == (12, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    own = np.where(y == 1, proba[:, 0], proba[:, 1])
    assert own.mean() < 0.5
    np.testing.assert_array_equal(proba, out_of_fold_proba(KNeighborsClassifier(1), X, y, 3, seed=0, classes=[1, 0]))


def test_out_of_fold_folds_in_parallel_give_the_same_probabilities(blobs):
    X, _, noisy, _, _ = blobs
    one_by_one = out_of_fold_proba("fast", X, noisy, 3, seed=4, n_jobs=1)
    np.testing.assert_array_equal(one_by_one, out_of_fold_proba("fast", X, noisy, 3, seed=4, n_jobs=3))
    assert not np.array_equal(one_by_one, out_of_fold_proba("fast", X, noisy, 3, seed=5, n_jobs=3))


def test_out_of_fold_bad_input():
    X = np.zeros((5, 2))
    with pytest.raises(InputError, match=r"folds=3.*\[1\]"):
        out_of_fold_proba("logreg", X, np.array([0, 0, 0, 1, 1]), 3)
    with pytest.raises(InputError, match="aligned"):
        out_of_fold_proba("logreg", X, np.array([0, 1]), 2)
    with pytest.raises(SingleClassError):
        out_of_fold_proba("logreg", X, np.zeros(5, int), 2)


# -- HW integration -------------------------------------------------------------------
@pytest.mark.parametrize("policy", ["prune", "review", "off"])
def test_hw_dirty_step(blobs, policy):
    X, y, noisy, flipped, _ = blobs
    hw = HWStrategy(model="logreg", random_state=0, dirty_policy=policy, clean_selection=True).fit(LabeledSet(X, noisy))
    off = HWStrategy(model="logreg", random_state=0, dirty_policy="off").fit(LabeledSet(X, noisy))
    if policy == "off":
        assert hw.dirty_report_ is None and hw.kept_.all()
        return
    # HW's own model plus three out-of-fold fits, twelve per split to check soft labels (3 folds: 2 inner out-of-fold
    # fits, a soft fit and a plain fit each; a second split when the first is unsure) and, as they lose on these
    # uniform flips, fifteen to check the proposed drop (in each of 3 folds: the detection's 3 fits on the training
    # rows, a fit with and one without the rows it would drop)
    report = hw.dirty_report_
    extra = hw.n_fits_ - off.n_fits_
    assert report.soft_targets is None and extra == (18 + 12 * report.soft_splits if policy == "prune" else 3)
    assert report.soft_splits in ((1, 2) if policy == "prune" else (0,))
    assert report.policy == policy and report.n_suspect > 0
    assert report.summary()["oof_fits"] == extra and report.summary()["suspects"] == report.n_suspect
    if policy == "review":
        assert hw.kept_.all()
    else:
        # the adaptive rule's verdict is in the report; a linear model shrugs off 10% uniform flips on 600 rows, so
        # whether it drops is the check's call; the always-drop rule shows what the prune would drop
        assert np.isfinite(report.z) and hw.kept_.all() == (not report.dirty)
        target = HWStrategy(model="logreg", random_state=0, dirty_rule="target", clean_selection=True).fit(
            LabeledSet(X, noisy)
        )
        assert target.kept_.sum() < y.size and flipped[~target.kept_].mean() >= 0.8
        assert target.strong_model_[-1].n_features_in_ == X.shape[1]


def test_hw_selects_with_all_labels_by_default(blobs):
    # without clean_selection the selecting model trains on every label; without the difficulty step: one fit,
    # and the scores of lc
    X, y, noisy, _, _ = blobs
    labeled = LabeledSet(X, noisy)
    hw = HWStrategy(model="logreg", random_state=0, dirty_rule="target", adapt_difficulty=False).fit(labeled)
    lc = make_strategy("lc", model="logreg", random_state=0).fit(labeled)
    assert hw.n_fits_ == 1 and hw.kept_.all() and hw.dirty_report_ is None
    # the difficulty step (on by default) runs the check on L and pays its fits, still training on every label
    adaptive = HWStrategy(model="logreg", random_state=0, dirty_rule="target").fit(labeled)
    assert adaptive.kept_.all() and adaptive.dirty_report_ is not None
    assert adaptive.n_fits_ == 1 + adaptive.difficulty_["fits"] > 1
    chunk = PoolChunk(np.arange(y.size), X=X)
    np.testing.assert_allclose(hw.score(chunk)[0], lc.score(chunk)[0])
    cleaned = HWStrategy(model="logreg", random_state=0, dirty_rule="target", clean_selection=True).fit(labeled)
    assert not cleaned.kept_.all() and cleaned.n_fits_ > 1


def test_hw_rejects_bad_dirty_settings():
    with pytest.raises(InputError, match="dirty_policy"):
        HWStrategy(dirty_policy="fix")
    with pytest.raises(InputError, match="max_dirty"):
        HWStrategy(max_dirty=1.5)


def test_dirty_filter_skips_tiny_classes():
    X, y = separable(n=30)
    y[:27] = y[0]
    y[27:] = (y[0] + 1) % 3  # three rows of the second class: too few to judge
    step = DirtyDataFilter()
    assert step(X, y, random_state=0).all()
    assert step.report_ is None and step.n_fits_ == 0


# -- the adaptive rule --------------------------------------------------------------------------------------------


def adaptive_data(seed: int, n: int = 3000, minority: float = 0.05):
    """A two-class tabular set with overlapping classes (the second one ``minority`` of the rows)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=n,
        n_features=12,
        n_informative=6,
        n_redundant=2,
        weights=[1 - minority],
        class_sep=1.0,
        flip_y=0.0,
        random_state=seed,
    )
    return X.astype(np.float32), y


@pytest.mark.parametrize("seed", range(6))
def test_adaptive_rule_drops_nothing_on_clean_labels(seed):
    # The rule keeps a drop only when it wins on held-out labels of a fresh fold split by z > 2.33 (one-sided
    # 1%): on labels with no planted noise it may fire about 1 time in 100; these seeds are cases it must get right.
    X, y = adaptive_data(seed)
    step = DirtyDataFilter()
    keep = step(X, y, random_state=seed)
    report = step.report_
    assert keep.all() and not report.dirty
    assert np.isfinite(report.z) or report.summary()["dropped"] == 0


@pytest.mark.parametrize("seed", [0, 1])
def test_adaptive_rule_keeps_a_drop_that_pays_on_held_out_labels(seed):
    # A model that follows its labels closely (a tree with small leaves) is hurt by 10% planted flips, so
    # leaving the suspects out of its training folds ranks the held-out labels better; the drop is kept.
    from sklearn.tree import DecisionTreeClassifier

    X, y = adaptive_data(seed, minority=0.3)
    noisy, flipped = inject_label_noise(y, 0.10, random_state=seed)
    step = DirtyDataFilter(model=DecisionTreeClassifier(min_samples_leaf=5, random_state=0))
    keep = step(X, noisy, random_state=seed)
    report = step.report_
    assert report.dirty and report.z > Z_DROP and report.gain > 0
    assert (~keep).sum() > 0 and flipped[~keep].mean() > 0.10 * 3  # flips are 10% of the rows, over 30% of the drops
    # the same tree on the clean labels: nothing dropped
    clean = DirtyDataFilter(model=DecisionTreeClassifier(min_samples_leaf=5, random_state=0))
    assert clean(X, y, random_state=seed).all()


def test_the_check_repeats_the_detection_inside_each_training_fold(monkeypatch):
    # A drop chosen from every row's out-of-fold probabilities keeps the rows that agree with the held-out ones,
    # so it would grade itself: each fold of the check's fresh split must choose its own drop from its training
    # rows alone, and the paired models differ only by that fold's drop.
    import activemine.dirty.policy as policy

    calls = []
    real = policy.out_of_fold_proba

    def spy(estimator, X, y, folds, *, seed, train_mask=None, **kwargs):
        calls.append((seed, folds, len(y), None if train_mask is None else np.asarray(train_mask).copy()))
        return real(estimator, X, y, folds, seed=seed, train_mask=train_mask, **kwargs)

    monkeypatch.setattr(policy, "out_of_fold_proba", spy)
    X, y = adaptive_data(0, minority=0.3)
    noisy, _ = inject_label_noise(y, 0.10, random_state=0)
    step = DirtyDataFilter()
    step(X, noisy, random_state=5)
    detect, *inner, (check_seed, folds, n_all, all_mask), (drop_seed, _, _, drop_mask) = calls
    assert detect[2] == y.size and detect[3] is None and all_mask is None
    assert check_seed == drop_seed == check_fold_seed(5) != detect[0]
    fold = fold_of(noisy, folds, seed=check_seed)
    assert len(inner) == folds and [c[2] for c in inner] == [int((fold != f).sum()) for f in range(folds)]
    assert drop_mask.shape == (folds, y.size) and (~drop_mask).any()
    for f in range(folds):
        assert drop_mask[f, fold == f].all()  # a fold's held-out rows are predicted, never in its drop
    parts = [
        {frozenset(np.flatnonzero(fold_of(noisy, folds, seed=s) == f)) for f in range(folds)}
        for s in (detect[0], check_seed)
    ]
    assert not parts[0] & parts[1], "the check reused a fold of the detection"
    assert step.report_.summary()["oof_fits"] == 3 + folds * (3 + 2)


@given(st.integers(0, 2**31 - 1))
@settings(max_examples=50, deadline=None)
def test_check_fold_seed_differs_from_the_detection_seed(seed):
    assert check_fold_seed(seed) != seed and check_fold_seed(seed) == check_fold_seed(seed)


def test_held_out_check_bad_input():
    X, y = separable()
    with pytest.raises(InputError, match="keep must have shape"):
        held_out_check("logreg", X, y, np.ones(3, bool))


def test_target_rule_always_drops_and_adaptive_rule_reports_its_evidence(blobs):
    X, _, noisy, _, _ = blobs
    target = DirtyDataFilter(rule="target", model="logreg")
    assert not target(X, noisy, random_state=0).all()
    assert target.report_.rule == "target" and np.isnan(target.report_.z)
    adaptive = DirtyDataFilter(model="logreg")
    kept = adaptive(X, noisy, random_state=0)
    summary = adaptive.report_.summary()
    assert summary["rule"] == "adaptive" and np.isfinite(summary["z"]) and summary["oof_fits"] == 3 + 3 * (3 + 2)
    assert kept.all() == (not summary["dirty"])


def test_check_drop_sign_and_bootstrap():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(np.int64)
    good = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.15, y.size), 0.01, 0.99)
    bad = np.clip(0.3 + rng.normal(0, 0.15, y.size), 0.01, 0.99)
    as_proba = lambda p1: np.column_stack([1 - p1, p1])  # noqa: E731
    gain, z = check_drop(y, as_proba(bad), as_proba(good), seed=1)
    assert gain > 0.2 and z > 5  # the "dropped" model ranks the labels far better
    gain, z = check_drop(y, as_proba(good), as_proba(bad), seed=1)
    assert gain < 0 and z < 0
    assert check_drop(y, as_proba(good), as_proba(bad), seed=1) == (gain, z)  # seeded


def test_dirty_filter_rejects_an_unknown_rule():
    with pytest.raises(InputError, match="rule"):
        DirtyDataFilter(rule="sometimes")


@pytest.mark.parametrize("bad", [{"folds": 1}, {"check_folds": 1}, {"check_folds": 2.5}, {"folds": True}])
def test_dirty_filter_rejects_bad_folds(bad):
    with pytest.raises(InputError, match=f"{next(iter(bad))} must be an integer >= 2"):
        DirtyDataFilter(**bad)


def test_check_folds_sets_the_cost_of_the_check(blobs):
    X, _, noisy, _, _ = blobs
    step = DirtyDataFilter(model="logreg", check_folds=2)
    step(X, noisy, random_state=0)
    # the detection's 3 fits, then in each of 2 check folds its own detection (3 fits) and the paired pair
    assert step.report_.n_suspect > 0 and step.n_fits_ == 3 + 2 * (3 + 2)


def test_prune_drops_only_suspects_the_model_places_in_another_class():
    # a rare class (20 of 1,000) half of whose rows the model doubts: its threshold (the mean p(pos) of the
    # rows labeled pos) is 0.45, so confident learning flags common-class rows at p(pos) 0.46 as suspects;
    # they are hard but correct: only rows whose top class is not the given one may be dropped
    labels = np.array([1] * 20 + [0] * 980)
    proba = np.tile([0.99, 0.01], (1000, 1))
    proba[:10] = [0.2, 0.8]
    proba[10:20] = [0.9, 0.1]  # labeled 1, placed in class 0
    proba[20:80] = [0.54, 0.46]  # hard negatives: suspects, top class still 0
    proba[80:90] = [0.1, 0.9]  # labeled 0, placed in class 1
    report = clean_labels(labels, proba, max_dirty=0.0, max_class_fraction=1.0)
    assert report.suspect[20:90].all()
    np.testing.assert_array_equal(np.flatnonzero(~report.keep), np.r_[10:20, 80:90])
    assert (report.action[20:80] == "review").all()


# -- soft labels ----------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.integers(2, 5), st.integers(1, 30), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1))
def test_soft_targets_blend_the_given_label_with_the_probabilities(k, n, alpha, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k), size=n)
    y_idx = rng.integers(0, k, n)
    t = soft_targets(y_idx, p, alpha)
    np.testing.assert_allclose(t.sum(axis=1), 1.0)
    np.testing.assert_allclose(t[np.arange(n), y_idx], (1 - alpha) + alpha * p[np.arange(n), y_idx])
    other = np.ones((n, k), dtype=bool)
    other[np.arange(n), y_idx] = False
    np.testing.assert_allclose(t[other], alpha * p[other])
    X_rep, col, w = expand(np.arange(n)[:, None], t)
    # every row keeps its weight but for the classes lighter than MIN_WEIGHT, and rows stay in order
    np.testing.assert_allclose(
        np.bincount(X_rep[:, 0], weights=w, minlength=n), np.where(t >= MIN_WEIGHT, t, 0).sum(axis=1)
    )
    assert np.all(np.diff(X_rep[:, 0]) >= 0)


def test_soft_targets_bad_input():
    with pytest.raises(InputError, match="alpha must be in"):
        soft_targets(np.array([0, 1]), np.full((2, 2), 0.5), 1.5)
    with pytest.raises(InputError, match=r"shape \(n, k\) with n = 3"):
        soft_targets(np.array([0, 1, 1]), np.full((2, 2), 0.5))


def _ambiguous_noise_set(seed: int, rate: float):
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=2000, n_features=20, n_informative=8, weights=[0.9], class_sep=1.0, random_state=seed
    )
    clean = out_of_fold_proba("lightgbm", X, y, 2, seed=99, n_jobs=1)
    noisy, _ = inject_label_noise(y, rate, kind="ambiguous", proba=clean, random_state=seed)
    return X, y, noisy


def test_soft_label_check_keeps_clean_labels_and_softens_planted_ambiguous_flips():
    # the check compares two trainings on held-out given labels; sharp, clean labels are best learnt as given,
    # coin flips near the boundary (20% of the labels, ambiguity-weighted) are learnt better averaged out
    for seed in (0, 1, 2):
        X, y, _ = _ambiguous_noise_set(seed, 0.2)
        _, z, _ = soft_label_check("fast", X, y, seed=seed, n_jobs=1)
        assert z < Z_DROP, (seed, z)
    X, _, noisy = _ambiguous_noise_set(1, 0.2)
    gain, z, oof = soft_label_check("fast", X, noisy, seed=1, n_jobs=1)
    assert gain > 0 and z > Z_DROP
    assert oof.shape == (2000, 2) and np.allclose(oof.sum(axis=1), 1.0)


def test_an_unsure_soft_label_check_is_decided_on_a_second_split():
    X, _, noisy = _ambiguous_noise_set(1, 0.2)
    gain1, z1, oof1 = soft_label_check("fast", X, noisy, seed=1, n_jobs=1)
    # far from the threshold: one split, the verdict and targets of soft_label_check
    targets, gain, z, fits, splits = choose_soft_targets("fast", X, noisy, seed=1, z_min=z1 - 2 * Z_UNSURE, n_jobs=1)
    assert (fits, splits) == (12, 1) and (gain, z) == (gain1, z1)
    np.testing.assert_allclose(targets, soft_targets(noisy, oof1))
    # near it: a second fresh split, both decide, and the targets blend both splits' out-of-fold probabilities
    targets2, gain2, z2, fits2, splits2 = choose_soft_targets(
        "fast", X, noisy, seed=1, z_min=z1 - Z_UNSURE / 2, n_jobs=1
    )
    assert (fits2, splits2) == (24, 2) and gain2 != gain1 and z2 != z1
    assert (targets2 is not None) == (z2 > z1 - Z_UNSURE / 2)
    if targets2 is not None:
        assert not np.allclose(targets2, targets) and np.allclose(targets2.sum(axis=1), 1.0)
    assert check_fold_seed(1, 1) not in (check_fold_seed(1), check_fold_seed(2), 1)


def test_dirty_filter_softens_only_when_the_check_says_so():
    X, _, noisy = _ambiguous_noise_set(1, 0.2)
    step = DirtyDataFilter(soften=True, soft_model="fast", n_jobs=1)
    keep = step(X, noisy, random_state=1)
    report = step.report_
    assert report.soft_z > Z_DROP and report.summary()["softened"]
    t = report.soft_targets
    assert t.shape == (2000, 2) and np.allclose(t.sum(axis=1), 1.0)
    # a given label keeps at least 1 - alpha of its row's weight
    assert np.all(t[np.arange(2000), noisy] >= 1 - ALPHA - 1e-12)
    # soft labels come first and keep every row: no drop is checked, the suspects are left for review
    assert keep.shape == (2000,) and keep.all() and report.n_dropped == 0 and np.isnan(report.z)
    assert report.n_suspect > 0 and set(report.action[report.suspect]) == {"review"}
    plain = DirtyDataFilter(soften=False, n_jobs=1)
    plain(X, noisy, random_state=1)
    assert plain.report_.soft_targets is None and np.isnan(plain.report_.soft_z)
    with pytest.raises(InputError, match="alpha"):
        DirtyDataFilter(alpha=2.0)


def test_hw_final_training_set_uses_soft_targets_when_chosen():
    from activemine.experiments.runs import _soft_targets

    X, _, noisy = _ambiguous_noise_set(1, 0.2)
    step = DirtyDataFilter(soften=True, soft_model="fast", n_jobs=1)
    keep = step(X, noisy, random_state=1)
    widened = _soft_targets(step.report_, keep, noisy, 3)  # a task with a third class absent from these rows
    assert widened.shape == (int(keep.sum()), 3) and np.all(widened[:, 2] == 0)
    np.testing.assert_array_equal(widened[:, :2], step.report_.soft_targets[keep])
    model = fit_soft("fast", X[keep], widened[:, :2], np.array([0, 1]), random_state=0, n_jobs=1)
    assert model.predict_proba(X[:5]).shape == (5, 2)

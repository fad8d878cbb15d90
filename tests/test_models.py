import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from activemine.errors import InputError
from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.models import available_cpus, check_n_jobs, make_model, threads_per_task


def separable_rare(n: int, seed: int):
    """A 0.4% class, separable along a direction no single feature shows (30 features)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.004).astype(np.int64)
    X = rng.normal(size=(n, 30))
    w = np.random.default_rng(7).normal(size=30)
    X[y == 1] += 8.0 * w / np.linalg.norm(w)
    return X, y


def test_default_lightgbm_does_not_collapse_with_more_data():
    # The unregularized LightGBM (reg_lambda 0, min_child_weight 1e-3) let leaves of a few confidently classified
    # rows take huge values: raw scores 66 here (6.8e4 on a user's dataset, where 43,500 rows then scored far
    # worse than 2,000). The defaults must keep scores bounded and more data never far worse.
    X_test, y_test = separable_rare(20_000, 99)
    figures = {}
    for n in (2_000, 43_500):
        X, y = separable_rare(n, 1)
        model = make_model("lightgbm", random_state=0, n_jobs=1).fit(X, y)
        p = model.predict_proba(X_test)[:, 1]
        raw = model.predict_proba(X_test, raw_score=True)
        figures[n] = (roc_auc(y_test, p), tpr_at_fpr(y_test, p, 0.01), float(np.abs(raw).max()), np.unique(p).size)
    (auc_small, tpr_small, _, _), (auc_big, tpr_big, raw_big, distinct_big) = figures[2_000], figures[43_500]
    assert auc_big >= auc_small - 0.01 and tpr_big >= tpr_small - 0.05
    assert raw_big < 30 and distinct_big > 1_000  # no runaway leaves, no probabilities collapsed to a few values


def test_n_jobs_default_is_the_cpus_available_and_bad_values_fail():
    assert check_n_jobs(None) == available_cpus() >= 1
    assert make_model("lightgbm").n_jobs == available_cpus()
    assert make_model("lightgbm", n_jobs=3).n_jobs == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError, match="n_jobs"):
            make_model("lightgbm", n_jobs=bad)
    assert threads_per_task(4, 3) == 1 and threads_per_task(6, 3) == 2 and threads_per_task(2, 1) == 2


def test_an_estimators_own_n_jobs_is_kept_unless_n_jobs_is_given():
    from lightgbm import LGBMClassifier

    assert make_model(LGBMClassifier(n_jobs=1)).n_jobs == 1
    assert make_model(Recorder(n_jobs=3)).n_jobs == 3
    assert make_model(LGBMClassifier(n_jobs=1), n_jobs=4).n_jobs == 4


class Recorder(ClassifierMixin, BaseEstimator):
    """A logistic regression that records the n_jobs it was fitted with."""

    seen: list = []

    def __init__(self, n_jobs=None, random_state=None):
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X, y):
        Recorder.seen.append(self.n_jobs)
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


@pytest.mark.parametrize("name, expected", [("lc", {6}), ("hw", {6}), ("qbc", {2})])
def test_n_jobs_reaches_every_model_a_strategy_fits(name, expected):
    from activemine import LabeledSet
    from activemine.selection.strategies import make_strategy

    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] + 0.5 * rng.normal(size=600) > 0).astype(np.int64)
    y[rng.choice(600, 60, replace=False)] ^= 1  # dirty, so HW's held-out check fits again
    Recorder.seen = []
    kwargs = {"weak_trees": None} if name == "hw" else {}
    strategy = make_strategy(name, model=Recorder(), n_jobs=6, random_state=0, **kwargs).fit(LabeledSet(X, y))
    # the strategy's own models get all 6 threads; 3 committee members fitted at once get 2 each
    assert Recorder.seen and set(Recorder.seen) == expected
    if name == "hw":  # and its dirty-data step's out-of-fold fits share the same 6 (test below)
        assert strategy.make_dirty_filter().n_jobs == 6


def test_n_jobs_reaches_out_of_fold_fits():
    from activemine.dirty import out_of_fold_proba

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    Recorder.seen = []
    out_of_fold_proba(Recorder(), X, y, 3, n_jobs=6)
    assert Recorder.seen == [2, 2, 2]  # three folds at once, two threads each
    Recorder.seen = []
    out_of_fold_proba(Recorder(), X, y, 3, n_jobs=1)
    assert Recorder.seen == [1, 1, 1]

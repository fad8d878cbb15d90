import json

import numpy as np
import pytest

from activemine.errors import InputError
from activemine.experiments.noise import inject_class_noise, inject_label_noise, parse_noise_matrix


def test_parse_noise_matrix_by_index_and_name():
    assert parse_noise_matrix("1:0.2,0:0.01", ["not shirt", "shirt"]) == {1: 0.2, 0: 0.01}
    assert parse_noise_matrix("shirt:0.2", ["not shirt", "shirt"]) == {1: 0.2}


@pytest.mark.parametrize(
    "text, match",
    [
        ("1=0.2", "CLASS:RATE"),
        ("7:0.1", "'7'"),
        ("1:high", "number"),
        ("1:1.5", r"\[0, 1\)"),
        ("1:0.1,1:0.2", "twice"),
        ("", "empty"),
    ],
)
def test_parse_noise_matrix_bad_input(text, match):
    with pytest.raises(InputError, match=match):
        parse_noise_matrix(text, ["neg", "pos"])


@pytest.mark.parametrize("kind", ["uniform", "ambiguous", "ambiguous-top"])
def test_class_noise_flips_the_rate_of_each_true_class(kind):
    rng = np.random.default_rng(0)
    y = (rng.random(5000) < 0.02).astype(np.int64)  # a rare class
    p1 = np.clip(0.8 * y + rng.normal(0.1, 0.1, y.size), 0.0, 1.0)
    proba = np.column_stack([1 - p1, p1])
    noisy, flipped = inject_class_noise(y, {1: 0.2, 0: 0.01}, kind=kind, proba=proba, random_state=3)
    for c, rate in ((1, 0.2), (0, 0.01)):
        assert flipped[y == c].sum() == round(rate * (y == c).sum())
    assert (noisy[flipped] != y[flipped]).all() and (noisy[~flipped] == y[~flipped]).all()
    again, _ = inject_class_noise(y, {1: 0.2, 0: 0.01}, kind=kind, proba=proba, random_state=3)
    assert (again == noisy).all()


def test_ambiguous_class_noise_prefers_confusable_samples():
    rng = np.random.default_rng(1)
    y = np.zeros(20000, dtype=np.int64)
    ambiguity = rng.random(y.size) * 0.5  # p(other class)
    proba = np.column_stack([1 - ambiguity, ambiguity])
    _, flipped = inject_class_noise(y, {0: 0.05}, kind="ambiguous", proba=proba, classes=[0, 1], random_state=0)
    assert ambiguity[flipped].mean() > ambiguity.mean() + 0.05


def test_rate_noise_is_unchanged_by_the_split():
    # the rate-over-all-rows noise drew the same flips before the class-noise kinds were added (results stay comparable)
    y = np.arange(1000) % 3
    noisy, flipped = inject_label_noise(y, 0.1, random_state=5)
    rng = np.random.default_rng(5)
    rows = np.sort(rng.choice(1000, size=100, replace=False))
    assert (np.flatnonzero(flipped) == rows).all()


def test_class_noise_bad_input():
    with pytest.raises(InputError, match="index"):
        inject_class_noise(np.array([0, 1, 0, 1]), {5: 0.1}, kind="uniform")
    with pytest.raises(InputError, match="proba"):
        inject_class_noise(np.array([0, 1, 0, 1]), {1: 0.5}, kind="ambiguous")


def test_experiment_records_realized_flips_per_class(tmp_path):
    from activemine.experiments.runner import ExperimentConfig, run_experiment

    config = ExperimentConfig(
        dataset="digits",
        task="binary:8",
        labeled_size=400,
        budget=50,
        pool_size=600,
        strategies=("random",),
        seeds=(0,),
        model="logreg",
        noise_matrix="1:0.3,0:0.02",
        noise_kind="uniform",
        full_seeds=0,
    )
    results = run_experiment(config)
    flips = results["noise_flips"][0]
    name = results["classes"][1]
    for c, rate in ((name, 0.3), (results["classes"][0], 0.02)):
        assert flips["train"][c]["flipped"] == round(rate * flips["train"][c]["rows"])
        assert flips["labeled"][c]["flipped"] + flips["pool"][c]["flipped"] <= flips["train"][c]["flipped"]
    json.dumps(results["noise_flips"])


def test_noise_rate_and_matrix_are_exclusive():
    from activemine.experiments.runner import ExperimentConfig

    with pytest.raises(InputError, match="not both"):
        ExperimentConfig(dataset="digits", noise=0.1, noise_matrix="1:0.2").check()
    with pytest.raises(InputError, match="CLASS:RATE"):
        ExperimentConfig(dataset="digits", noise_matrix="oops").check()


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from activemine.experiments.noise import check_wrong_shares, inject_observed_noise, observed_wrong_shares  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 400),
    k=st.integers(2, 4),
    rate=st.floats(0.0, 0.49),
    kind=st.sampled_from(["uniform", "ambiguous", "ambiguous-top"]),
    seed=st.integers(0, 2**16),
)
def test_wrong_share_in_each_observed_class_never_exceeds_the_rate(n, k, rate, kind, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    y[rng.random(n) < 0.7] = 0  # one common class, the others rare
    proba = rng.dirichlet(np.ones(k), size=n)
    noisy, flipped = inject_observed_noise(y, rate, kind=kind, proba=proba, classes=np.arange(k), random_state=seed)
    assert (noisy[flipped] != y[flipped]).all() and (noisy[~flipped] == y[~flipped]).all()
    for c, s in observed_wrong_shares(y, noisy, range(k)).items():
        assert s["wrong"] <= rate * s["rows"] + 1e-9, (c, s)


@pytest.mark.parametrize("kind", ["uniform", "ambiguous", "ambiguous-top"])
def test_observed_noise_on_a_rare_class_flips_the_rate_of_it_and_as_many_negatives(kind):
    rng = np.random.default_rng(0)
    y = (rng.random(50_000) < 0.01).astype(np.int64)
    p1 = np.clip(0.7 * y + rng.normal(0.1, 0.1, y.size), 0.0, 1.0)
    proba = np.column_stack([1 - p1, p1])
    noisy, flipped = inject_observed_noise(y, 0.1, kind=kind, proba=proba, random_state=1)
    n1 = int(y.sum())
    assert flipped[y == 1].sum() == int(0.1 * n1) == flipped[y == 0].sum()
    shares = observed_wrong_shares(y, noisy, (0, 1))
    assert 0.09 < shares[1]["wrong_share"] <= 0.1 and shares[0]["wrong_share"] < 0.002
    # the rate over all rows, the old reading of the same setting, makes most positive labels wrong
    old, _ = inject_label_noise(y, 0.1, kind=kind, proba=proba, random_state=1)
    assert observed_wrong_shares(y, old, (0, 1))[1]["wrong_share"] > 0.5
    with pytest.raises(InputError, match="most labels of a class wrong"):
        check_wrong_shares(y, old, (0, 1), ("neg", "pos"), allow_majority_wrong=False)
    check_wrong_shares(y, old, (0, 1), ("neg", "pos"), allow_majority_wrong=True)


def test_ambiguous_observed_noise_takes_the_most_ambiguous_first():
    y = np.array([1] * 100 + [0] * 900)
    a = np.r_[np.linspace(0, 0.5, 100), np.linspace(0, 0.5, 900)]  # p(other class)
    proba = np.column_stack([np.where(y == 1, a, 1 - a), np.where(y == 1, 1 - a, a)])
    _, flipped = inject_observed_noise(y, 0.1, kind="ambiguous-top", proba=proba, random_state=0)
    assert (np.flatnonzero(flipped[:100]) == np.arange(90, 100)).all()
    assert (np.flatnonzero(flipped[100:]) == np.arange(890, 900)).all()


def _rare_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(0)
    n = 3000
    y = (rng.random(n) < 0.02).astype(int)
    X = rng.normal(size=(n, 4)) + 1.5 * y[:, None]
    path = tmp_path / "rare.parquet"
    cols = {f"f{j}": X[:, j] for j in range(4)}
    cols["label"] = np.where(y == 1, "pos", "neg")
    pq.write_table(pa.table(cols), path)
    return path


def test_experiment_refuses_noise_that_makes_most_positive_labels_wrong(tmp_path):
    from activemine.experiments.runner import ExperimentConfig, run_experiment

    path = _rare_file(tmp_path)
    common = dict(
        dataset=str(path), task="binary:pos", labeled_size=500, budget=50, strategies=("random",), model="logreg"
    )
    with pytest.raises(InputError, match="class 'pos' wrong"):
        run_experiment(ExperimentConfig(**common, noise_matrix="1:0.2,0:0.05", noise_kind="uniform"))
    with pytest.raises(InputError, match="most labels of a class wrong"):
        run_experiment(ExperimentConfig(**common, noise=0.1, noise_model="rows", noise_kind="uniform"))
    with pytest.raises(InputError, match="at most 0.5"):
        ExperimentConfig(**common, noise=0.6).check()
    results = run_experiment(ExperimentConfig(**common, noise=0.1, noise_kind="uniform", full_seeds=0))
    observed = results["noise_flips"][0]["observed"]["train"]
    assert 0.08 < observed["pos"]["wrong_share"] <= 0.1
    assert (
        results["noise_flips"][0]["train"]["not pos"]["flipped"] == results["noise_flips"][0]["train"]["pos"]["flipped"]
    )
    from activemine.experiments.runner import results_markdown

    assert "wrong share (train)" in results_markdown(results)
    allowed = ExperimentConfig(
        **common, noise=0.1, noise_model="rows", noise_kind="uniform", allow_majority_wrong=True, full_seeds=0
    )
    assert run_experiment(allowed)["noise_flips"][0]["observed"]["train"]["pos"]["wrong_share"] > 0.5

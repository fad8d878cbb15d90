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

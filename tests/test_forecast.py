import numpy as np
import pytest

from activemine.budget.forecast import fit_learning_curve, forecast_labels, forecast_metric
from activemine.errors import InputError

N = np.array([1_000, 1_500, 2_000, 2_500, 3_000, 3_500, 4_000], dtype=float)
A, B, C = 0.8, 0.4, 0.7


def curve(n):
    return A - B * (np.asarray(n, dtype=float) / 1_000) ** (-C)


def test_fit_recovers_a_known_power_law():
    fit = fit_learning_curve(N, curve(N))
    assert (fit.a, fit.b, fit.c) == pytest.approx((A, B, C), rel=1e-5)
    assert fit.converged and fit.rmse < 1e-8


def test_labels_and_metric_on_an_exact_curve_match_the_closed_form():
    target = 0.65
    truth = 1_000 * (B / (A - target)) ** (1 / C)  # about 4,060, at the edge of the points
    f = forecast_labels(N, curve(N), target)
    assert not f.declined and f.value == pytest.approx(truth, rel=1e-4)
    assert f.interval == pytest.approx((truth, truth), rel=1e-4)  # no noise, no spread
    m = forecast_metric(N, curve(N), 8_000)
    assert m.value == pytest.approx(curve(8_000), abs=1e-6)


def test_interval_covers_the_truth_on_noisy_curves_in_most_seeds():
    target, truth = 0.62, 1_000 * (B / (A - 0.62)) ** (1 / C)
    hits = made = 0
    for seed in range(10):
        rng = np.random.default_rng(seed)
        y = np.clip(curve(N) + rng.normal(0, 0.003, N.size), 0, 1)
        f = forecast_labels(N, y, target, random_state=seed, n_boot=100)
        if not f.declined:
            made += 1
            hits += f.interval[0] <= truth <= f.interval[1]
            assert abs(f.value - truth) / truth < 0.25
    assert made >= 8 and hits >= made - 2


def test_same_seed_same_interval():
    y = curve(N) + np.random.default_rng(1).normal(0, 0.004, N.size)
    a = forecast_labels(N, y, 0.6, random_state=7)
    b = forecast_labels(N, y, 0.6, random_state=7)
    assert a == b


def test_declines_with_a_reason_instead_of_a_number():
    few = forecast_labels(N[:3], curve(N[:3]), 0.6)
    assert few.declined and few.interval is None and "too few points" in few.reason
    above = forecast_labels(N, curve(N), 0.9)
    assert above.declined and "asymptote" in above.reason
    noisy = np.clip(curve(N) + np.random.default_rng(0).normal(0, 0.06, N.size), 0, 1)
    far = forecast_labels(N, noisy, float(noisy.max()) + 0.15)  # the true curve never gets there (asymptote 0.8)
    assert far.declined and "too far to extrapolate" in far.reason
    wide = far
    assert wide.as_dict()["value"] is None


def test_an_uncertain_curve_commits_with_an_open_upper_end_instead_of_declining():
    noisy = np.clip(curve(N) + np.random.default_rng(1).normal(0, 0.02, N.size), 0, 1)
    f = forecast_labels(N, noisy, float(noisy.max()) + 0.02)
    assert not f.declined and not f.reached
    low, high = f.interval
    assert high == np.inf and low <= f.value  # "at least low labels": honest about the curves that never get there


def test_a_target_already_measured_is_answered_by_the_points():
    y = curve(N)
    f = forecast_labels(N, y, float(y[3]) - 1e-6)  # first reached at the fourth point
    assert f.reached and not f.declined and f.curve is None
    assert f.value == N[3] and f.interval == (N[2], N[3])
    first = forecast_labels(N[:2], y[:2], float(y[0]))  # even with too few points for a curve
    assert first.reached and first.value == N[0] and first.interval == (N[0], N[0])
    assert f.as_dict()["reached"] is True


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: forecast_labels(N, curve(N), 0.0), r"target metric must be in \(0, 1\], got 0.0"),
        (lambda: forecast_labels(N, curve(N), 1.2), r"\(0, 1\], got 1.2"),
        (lambda: forecast_metric(N, curve(N), -5), "positive"),
        (lambda: forecast_labels(-N, curve(N), 0.5), "positive"),
        (lambda: forecast_labels(N, curve(N) + 2, 0.5), r"\[0, 1\]"),
        (lambda: forecast_labels(N, curve(N)[:-1], 0.5), "one length"),
        (lambda: forecast_labels(N, curve(N), 0.5, level=1.0), "level"),
    ],
)
def test_bad_inputs_are_input_errors(call, match):
    with pytest.raises(InputError, match=match):
        call()

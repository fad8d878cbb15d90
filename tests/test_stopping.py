import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activemine.budget.stopping import (
    CRITERIA,
    KappaStop,
    MaxStop,
    PlateauStop,
    RefitKappaStop,
    RoundRecord,
    UncertaintyStop,
    choose_stop_set,
    cohen_kappa,
    consecutive_kappas,
    default_criteria,
    first_stop,
    normalized_uncertainty,
    refit_kappas,
)
from activemine.errors import InputError


def test_kappa_of_a_hand_computed_pair():
    # observed agreement 3/4; chance agreement 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa (0.75 - 0.5) / 0.5
    assert cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    assert cohen_kappa([0, 1, 0, 1], [1, 0, 1, 0]) == pytest.approx(-1.0)
    assert cohen_kappa([2, 2, 2], [2, 2, 2]) == 1.0  # identical, one class: 1, not a division by zero
    assert cohen_kappa([0, 0, 0], [1, 1, 1]) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5), st.integers(2, 60), st.integers(0, 2**31 - 1))
def test_kappa_matches_scikit_learn(k, m, seed):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, size=m)
    b = np.where(rng.random(m) < 0.7, a, rng.integers(0, k, size=m))
    if np.array_equal(a, b):
        assert cohen_kappa(a, b) == 1.0
        return
    expected = cohen_kappa_score(a, b, labels=np.arange(k))
    if np.isfinite(expected):
        assert cohen_kappa(a, b, n_classes=k) == pytest.approx(expected, abs=1e-12)


def _prediction_stream(n_rounds: int, m: int, flips, seed: int = 0) -> list[np.ndarray]:
    """Predictions of ``n_rounds`` models on ``m`` rows; round r changes ``flips[r]`` of them."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 3, size=m)
    out = [p.copy()]
    for r in range(1, n_rounds):
        p = p.copy()
        idx = rng.choice(m, size=flips[r], replace=False)
        p[idx] = (p[idx] + 1) % 3
        out.append(p)
    return out


def test_kappa_stop_fires_once_consecutive_models_agree_over_the_window():
    flips = [0, 300, 200, 100, 40, 2, 1, 0, 0, 0]
    preds = _prediction_stream(10, 1000, flips)
    records = [RoundRecord(r, 100 * (r + 1), p) for r, p in enumerate(preds)]
    kappas = consecutive_kappas(preds)
    rnd, decision = first_stop(KappaStop(window=3, threshold=0.99), records)
    expected = next(r for r in range(3, 10) if np.mean(kappas[r - 3 : r]) >= 0.99)
    assert (
        rnd == expected and decision.stop and decision.value == pytest.approx(np.mean(kappas[expected - 3 : expected]))
    )


def test_small_text_kappa_average_makes_the_same_decisions():
    small_text = pytest.importorskip("small_text.stopping_criteria", reason="small-text (test extra) is not installed")
    rng = np.random.default_rng(3)
    for trial in range(6):
        window = int(rng.integers(1, 4))
        threshold = float(rng.choice([0.9, 0.97, 0.99]))
        flips = [0] + sorted(rng.integers(0, 60, size=11).tolist(), reverse=True)
        preds = _prediction_stream(12, 400, flips, seed=trial)
        reference = small_text.KappaAverage(num_classes=3, window_size=window, kappa=threshold)
        ours = KappaStop(window=window, threshold=threshold, n_classes=3)
        records = []
        for r, p in enumerate(preds):
            records.append(RoundRecord(r, 100 * (r + 1), p))
            assert ours.decide(records).stop == reference.stop(predictions=p), (trial, r)


def test_kappa_never_fires_while_predictions_keep_changing():
    preds = _prediction_stream(12, 500, [0] + [50] * 11)
    records = [RoundRecord(r, r + 1, p) for r, p in enumerate(preds)]
    assert first_stop(KappaStop(), records)[0] is None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.005, 0.05), min_size=4, max_size=15), st.floats(0.0, 0.5), st.integers(1, 4))
def test_plateau_never_fires_on_a_curve_still_rising(gains, start, window):
    # every round sets a new best by at least min_delta: no window without progress
    metric = np.minimum(start + np.cumsum([0.0] + gains), 1.0)
    if np.any(np.diff(metric) < 0.005):
        return  # clipped at 1: no longer rising
    records = [RoundRecord(r, 100 * (r + 1), metric=float(m)) for r, m in enumerate(metric)]
    stop_round, decision = first_stop(PlateauStop(window=window, min_delta=0.005), records)
    assert stop_round is None and not decision.stop


def test_plateau_fires_on_a_flat_curve_after_its_window():
    metric = [0.5, 0.6, 0.65, 0.652, 0.651, 0.653, 0.65]
    records = [RoundRecord(r, 100 * (r + 1), metric=m) for r, m in enumerate(metric)]
    stop_round, decision = first_stop(PlateauStop(window=3, min_delta=0.005), records)
    assert stop_round == 5  # rounds 3-5 add 0.003 over 0.65
    assert decision.value == pytest.approx(0.003)


def test_uncertainty_and_max_decide_on_the_last_round():
    records = [RoundRecord(0, 100)] + [
        RoundRecord(r, 100 + 50 * r, batch_uncertainty=u) for r, u in enumerate([0.6, 0.3, 0.04, 0.2], start=1)
    ]
    assert first_stop(UncertaintyStop(level=0.05), records)[0] == 3
    assert UncertaintyStop(level=0.05).decide(records).value == 0.2
    assert first_stop(MaxStop(max_rounds=2), records)[0] == 2
    assert first_stop(MaxStop(max_labels=250), records)[0] == 3
    assert first_stop(MaxStop(), records)[0] is None


def test_round_zero_is_history_never_a_stop():
    records = [RoundRecord(0, 100, np.zeros(10, int), metric=0.5), RoundRecord(1, 150, np.zeros(10, int), metric=0.5)]
    assert first_stop(KappaStop(window=1), records)[0] == 1
    assert first_stop(MaxStop(max_rounds=1), records[:1])[0] is None


def test_defaults_and_decisions_carry_their_figure():
    assert [c.name for c in default_criteria()] == list(CRITERIA)
    d = KappaStop().decide([])
    assert not d.stop and d.value is None and "needs 4 rounds" in d.detail
    assert d.as_dict()["threshold"] == 0.99


def test_normalized_uncertainty_is_zero_for_certain_and_one_for_uniform():
    np.testing.assert_allclose(normalized_uncertainty([[1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0]]), [0, 1, 0.75])


def test_stop_set_is_seeded_and_no_larger_than_the_pool():
    a = choose_stop_set(10_000, 2_000, random_state=5)
    assert (
        a.size == 2_000
        and np.unique(a).size == 2_000
        and np.array_equal(a, choose_stop_set(10_000, 2_000, random_state=5))
    )
    with pytest.raises(InputError, match="stop set size 20 is larger than the pool \\(10 rows\\)"):
        choose_stop_set(10, 20)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: KappaStop(window=0), "window"),
        (lambda: KappaStop(threshold=2), "threshold"),
        (lambda: UncertaintyStop(level=0), "level"),
        (lambda: PlateauStop(min_delta=-1), "min_delta"),
        (lambda: MaxStop(max_rounds=0), "max_rounds"),
        (lambda: cohen_kappa([0, 1], [0]), "one length"),
        (lambda: RefitKappaStop(window=0), "window"),
        (lambda: RefitKappaStop(tolerance=1.0), "tolerance"),
        (lambda: RefitKappaStop(tolerance=-0.1), "tolerance"),
    ],
)
def test_bad_settings_are_input_errors(make, match):
    with pytest.raises(InputError, match=match):
        make()


def _refit_stream(drift, seed_noise: int, m: int = 1000, seed: int = 0) -> list[RoundRecord]:
    """Rounds whose model moves ``drift[r]`` stop-set predictions from the round before (binary), each refit
    ``seed_noise`` predictions away from its round's model (other rows every round, as another seed would)."""
    rng = np.random.default_rng(seed)
    p = (rng.random(m) < 0.3).astype(np.int16)
    records = [RoundRecord(0, 100, p.copy())]
    for r in range(1, len(drift)):
        p = p.copy()
        p[rng.choice(m, size=drift[r], replace=False)] ^= 1
        refit = p.copy()
        refit[rng.choice(m, size=seed_noise, replace=False)] ^= 1
        records.append(RoundRecord(r, 100 * (r + 1), p, refit_predictions=refit))
    return records


def test_refit_kappas_share_the_refit_and_hand_computed_values():
    prev, cur, refit = [0, 0, 1, 1], [0, 1, 1, 1], [0, 1, 1, 1]
    change, ceiling = refit_kappas(prev, cur, refit)
    assert ceiling == 1.0 and change == pytest.approx(
        0.5
    )  # kappa(prev, refit) as in test_kappa_of_a_hand_computed_pair


def test_kappa_refit_stops_when_rounds_change_predictions_no_more_than_a_refit_does():
    # drift until round 5, none after: from round 6 on the previous model predicts exactly what this round's
    # model does, so change == ceiling (gap exactly 0); the window of 3 is all zero gaps first at round 8
    drift = [0, 120, 100, 80, 60, 40, 0, 0, 0, 0, 0]
    records = _refit_stream(drift, seed_noise=40)
    crit = RefitKappaStop(window=3, tolerance=0.01)
    gaps = {rnd: ceiling - change for rnd, change, ceiling in crit.gaps(records)}
    assert all(gaps[r] == 0.0 for r in range(6, 11)) and all(gaps[r] > 0.03 for r in range(1, 6))
    stop_round, decision = first_stop(crit, records)
    assert stop_round == 8 and decision.stop and decision.value == 0.0
    assert max(ceiling for _, _, ceiling in crit.gaps(records)) < 0.95  # far below the 0.99 of plain kappa


def _noisy_model_stream(drift, seed_noise: int, m: int, seed: int) -> list[RoundRecord]:
    """Like :func:`_refit_stream`, but the round's model carries seed noise of its own too (fresh rows each
    round, as a refit on new labels would), so consecutive models never agree beyond the refit ceiling."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(m) < 0.3).astype(np.int16)

    def noisy(p):
        p = p.copy()
        p[rng.choice(m, size=seed_noise, replace=False)] ^= 1
        return p

    records = [RoundRecord(0, 100, noisy(truth))]
    for r in range(1, len(drift)):
        truth = truth.copy()
        truth[rng.choice(m, size=drift[r], replace=False)] ^= 1
        records.append(RoundRecord(r, 100 * (r + 1), noisy(truth), refit_predictions=noisy(truth)))
    return records


@pytest.mark.parametrize("seed", range(5))
def test_kappa_refit_stops_after_the_drift_where_plain_kappa_at_0_99_never_can(seed):
    # the learned part stops moving after round 5; each model still differs from its refit by 100 of 4,000
    # rows: consecutive kappa levels off near the ceiling (about 0.9), never at 0.99
    drift = [0, 400, 300, 200, 150, 100] + [0] * 9
    records = _noisy_model_stream(drift, seed_noise=100, m=4_000, seed=seed)
    stop_round, decision = first_stop(RefitKappaStop(window=3, tolerance=0.01), records)
    assert stop_round == 8 and decision.value <= 0.01  # the first window of three rounds after the drift
    assert first_stop(KappaStop(window=3, threshold=0.99), records)[0] is None
    assert max(consecutive_kappas([r.stop_predictions for r in records])) < 0.95


@pytest.mark.parametrize("seed", range(5))
def test_kappa_refit_never_fires_while_rounds_keep_moving_predictions_beyond_seed_noise(seed):
    # every round moves 60 of 1,000 predictions, a refit 40 others: the model is still learning
    records = _refit_stream([0] + [60] * 12, seed_noise=40, seed=seed)
    stop_round, decision = first_stop(RefitKappaStop(), records)
    assert stop_round is None and not decision.stop and decision.value > 0.05


def test_kappa_refit_with_a_deterministic_model_is_plain_kappa_at_one_minus_the_tolerance():
    preds = _prediction_stream(10, 1000, [0, 300, 200, 100, 40, 2, 1, 0, 0, 0])
    plain = [RoundRecord(r, 100 * (r + 1), p) for r, p in enumerate(preds)]
    refit = [RoundRecord(r, 100 * (r + 1), p, refit_predictions=p if r else None) for r, p in enumerate(preds)]
    assert first_stop(RefitKappaStop(tolerance=0.01), refit)[0] == first_stop(KappaStop(threshold=0.99), plain)[0]


def test_kappa_refit_says_what_is_missing_without_refits():
    records = _refit_stream([0, 50, 50, 50, 50], seed_noise=10)
    d = RefitKappaStop().decide([RoundRecord(r.round, r.labels, r.stop_predictions) for r in records])
    assert not d.stop and d.value is None and "refit predictions" in d.detail and "has 0" in d.detail
    # a gap from an old round does not stand in for the latest rounds
    stripped = records[:-1] + [RoundRecord(records[-1].round, records[-1].labels, records[-1].stop_predictions)]
    assert RefitKappaStop(window=1).decide(stripped).value is None

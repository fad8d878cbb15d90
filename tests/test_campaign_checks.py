"""The suspect check of returned labels: thresholds per class spare a rare class's correct labels."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activemine.campaign import import_labels, init_campaign, mine_round
from activemine.campaign.batchdata import read_batch
from activemine.campaign.checks import class_thresholds, disagreement
from activemine.selection.strategies import make_strategy


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.floats(0, 1)), min_size=1, max_size=80),
    st.sampled_from([0.0, 0.3, 0.8, 1.0]),
)
def test_a_class_threshold_only_spares_and_never_leaves_a_class_flagged_more_often_than_the_others(rows, threshold):
    given_, d = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
    limits = class_thresholds(given_, d, 3, threshold)
    assert limits.shape == (3,) and (limits >= threshold).all()
    flagged = d > limits[given_]
    assert not (flagged & ~(d > threshold)).any()  # a class threshold only ever spares labels
    for c in range(3):
        mine, others = given_ == c, given_ != c
        if not mine.any() or not others.any():
            assert limits[c] == threshold
            continue
        n_c, n_o, others_flagged = mine.sum(), others.sum(), (d[others] > threshold).sum()
        if (d[mine] > threshold).sum() * n_o <= others_flagged * n_c:  # not above the others: nothing spared
            assert limits[c] == threshold
        if limits[c] > threshold:  # spared: never a larger share than the others' (whole labels, rounded down)
            assert flagged[mine].sum() * n_o <= others_flagged * n_c


def test_a_class_flagged_much_more_often_is_cut_to_the_others_rate_rounded_down_and_chance_differences_are_not():
    given_ = np.array([1] * 100 + [0] * 900)
    d = np.r_[np.linspace(0.85, 0.99, 60), np.full(40, 0.1), np.full(16, 0.9), np.full(884, 0.1)]  # 60% against 1.8%
    limits = class_thresholds(given_, d, 2, 0.8)
    assert limits[0] == 0.8 and limits[1] > 0.8
    assert (d[:100] > limits[1]).sum() == 1  # 1.8% of 100 is 1.78 labels: 1, never rounded up to 2
    close = np.r_[np.full(3, 0.95), np.full(97, 0.1), np.full(20, 0.9), np.full(880, 0.1)]  # 3% against 2.2%
    assert class_thresholds(given_, close, 2, 0.8).tolist() == [0.8, 0.8]


def _rare_probability_campaign(tmp_path, seed=0):
    """A probability pool where the model sees a third of the positives it holds (as LightGBM did on a 2% class).

    Returns the store (one random round of 1,500 mined) and the truth per id.
    """
    rng = np.random.default_rng(seed)
    n = 4_000
    p1 = (rng.beta(0.5, 12, n)).astype(np.float32)  # mostly near 0, as a model of a rare class scores the pool
    truth = (rng.random(n) < np.clip(3 * p1, 0, 1)).astype(np.int64)  # three times as many positives as it expects
    ids = [f"u{i:05d}" for i in range(n)]
    tmp_path.mkdir(parents=True, exist_ok=True)
    U, L = tmp_path / "U.parquet", tmp_path / "L.parquet"
    pq.write_table(pa.table({"id": ids, "p0": 1 - p1, "p1": p1}), U)
    pq.write_table(pa.table({"id": [f"L{i}" for i in range(40)], "y": np.arange(40) % 2}), L)
    store = init_campaign(tmp_path / "camp", pool=U, labeled=L, proba_cols=[["p0", "p1"]])
    mine_round(store, make_strategy("random", random_state=seed), budget=1_500)
    return store, dict(zip(ids, truth.tolist()))


def _import_truth(store, truth, path, round_no=1, **options):
    with store.snapshot() as conn:
        sids, data = read_batch(conn, round_no)
    path.write_text("id,label\n" + "".join(f"{s},{truth[s]}\n" for s in sids))
    report = import_labels(store, path, **options)
    given_ = np.array([truth[s] for s in sids])
    flagged = np.isin(np.array(sids), np.array(report.suspect, dtype=str))
    return given_, flagged, data.proba


def test_a_campaign_fed_correct_labels_does_not_flag_positives_more_often_than_negatives(tmp_path):
    store, truth = _rare_probability_campaign(tmp_path / "a")
    given_, flagged, proba = _import_truth(store, truth, tmp_path / "truth.csv")
    pos, neg = given_ == 1, given_ == 0
    assert 20 <= pos.sum() <= 300  # a rare class, present in the round
    assert flagged[pos].mean() <= flagged[neg].mean()
    # the shared threshold on the same labels flags many correct positives: what the class thresholds spare
    shared = disagreement(given_, proba) > 0.8
    assert shared[pos].mean() > 0.1 and shared[pos].mean() > 10 * max(shared[neg].mean(), 1e-3)
    other, truth_b = _rare_probability_campaign(tmp_path / "b")
    _, flagged_shared, _ = _import_truth(other, truth_b, tmp_path / "truth_b.csv", suspect_by_class=False)
    assert flagged_shared[pos].sum() == shared[pos].sum()


def _standing_flag_rates(store):
    """Share of each class's returned labels that stands flagged suspect now: {label: share}."""
    with store.snapshot() as conn:
        rows = conn.execute(
            "SELECT label, suspect FROM labels WHERE retracted_at IS NULL AND source != 'initial'"
        ).fetchall()
    labels, suspect = np.array([r[0] for r in rows]), np.array([r[1] for r in rows], dtype=bool)
    return {c: float(suspect[labels == c].mean()) for c in np.unique(labels)}


@pytest.mark.parametrize("second_round", ["file", "web"])
def test_a_campaign_fed_correct_labels_over_rounds_does_not_leave_positives_flagged_more_often(tmp_path, second_round):
    """Round 1's flags match the negatives' share of that round; round 2's labels, all of which the model is sure
    of, halve the negatives' share over the campaign, so flags kept from round 1 would cost a positive more."""
    rng = np.random.default_rng(0)
    n = 4_000
    sure = rng.random(n) < 0.06  # rows the model is sure are positive; 30% of them are not
    p1 = np.where(sure, rng.beta(12, 0.5, n), rng.beta(0.5, 12, n)).astype(np.float32)
    truth = np.where(sure, rng.random(n) < 0.7, rng.random(n) < np.clip(3 * p1, 0, 1)).astype(np.int64)
    ids = [f"u{i:05d}" for i in range(n)]
    U, L = tmp_path / "U.parquet", tmp_path / "L.parquet"
    pq.write_table(pa.table({"id": ids, "p0": 1 - p1, "p1": p1}), U)
    pq.write_table(pa.table({"id": [f"L{i}" for i in range(40)], "label": np.arange(40) % 2}), L)
    store = init_campaign(tmp_path / "camp", pool=U, labeled=L, proba_cols=[["p0", "p1"]])
    truth = dict(zip(ids, truth.tolist()))
    mine_round(store, make_strategy("random", random_state=0), budget=1_500)
    given_, flagged, _ = _import_truth(store, truth, tmp_path / "round1.csv")
    assert flagged[given_ == 1].mean() <= flagged[given_ == 0].mean() and flagged[given_ == 1].any()
    mine_round(store, make_strategy("random", random_state=1), budget=1_500)
    with store.snapshot() as conn:
        sids, data = read_batch(conn, 2)
    truth.update(zip(sids, (data.proba[:, 1] > 0.5).astype(int).tolist()))  # round 2: the model is right
    if second_round == "file":
        path = tmp_path / "round2.csv"
        path.write_text("id,label\n" + "".join(f"{s},{truth[s]}\n" for s in sids))
        report = import_labels(store, path)
        assert report.suspect == [] and report.lifted > 0  # round 1's flags on positives the new threshold spares
    else:
        from activemine.campaign.leases import LabelingQueue

        queue = LabelingQueue(store)
        for s in sids:
            queue.submit("ann", s, str(truth[s]))
    rates = _standing_flag_rates(store)
    assert rates["0"] > 0 and rates["1"] <= rates["0"]


def test_web_labels_use_the_round_s_class_thresholds(tmp_path):
    from activemine.campaign.leases import LabelingQueue

    store, truth = _rare_probability_campaign(tmp_path)
    with store.snapshot() as conn:
        sids, data = read_batch(conn, 1)
    queue = LabelingQueue(store)
    doubted_pos = [s for s, p in zip(sids, data.proba[:, 1].tolist()) if truth[s] == 1 and p < 0.1]
    assert doubted_pos, "the fixture should hold positives the model doubts"
    for s in sids[:300]:  # labels of the common class first, none doubted
        if truth[s] == 0:
            queue.submit("ann", s, "0")
    queue.submit("ann", doubted_pos[0], "1")
    assert store.flagged() == {}

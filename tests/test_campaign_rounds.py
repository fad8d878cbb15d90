import numpy as np
import pytest

from _campaign_helpers import digits_campaign
from activemine.campaign import campaign_status, mine_round
from activemine.campaign.batchdata import read_batch
from activemine.errors import PoolExhaustedError
from activemine.selection.strategies import make_strategy


def _batch(store, round_no):
    with store.snapshot() as conn:
        sids, data = read_batch(conn, round_no)
    return list(zip(sids, range(len(sids)), data.score.tolist(), data.predicted.tolist(), data.proba))


def test_round_stores_scores_predictions_and_class_probabilities(tmp_path):
    store, _ = digits_campaign(tmp_path, budget=30)
    rows = _batch(store, 1)
    assert len(rows) == 30 and [r[1] for r in rows] == list(range(30))
    proba = np.array([r[4] for r in rows])  # (30, 10) in the campaign's class order
    assert proba.shape == (30, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-4)
    assert [r[3] for r in rows] == [str(c) for c in proba.argmax(axis=1)]
    scores = [r[2] for r in rows]
    assert scores == sorted(scores, reverse=True)  # lc without quotas: higher score first
    assert store.read("SELECT strategy, budget FROM rounds") == [("lc", 30)]


def test_next_round_excludes_queued_and_labeled_ids_and_learns_from_new_labels(tmp_path):
    store, truth = digits_campaign(tmp_path, budget=30)
    first = [r[0] for r in _batch(store, 1)]
    labeled_now = first[:10]
    with store.transaction() as conn:
        conn.executemany(
            "INSERT INTO labels (sid, label, annotator, created_at, source) VALUES (?, ?, 'a', 't', 'import')",
            [(s, str(truth[int(s)])) for s in labeled_now],
        )
    strategy = make_strategy("lc", model="logreg", random_state=0)
    round_no, batch = mine_round(store, strategy, budget=25)
    assert round_no == 2
    assert not set(map(str, batch.ids.tolist())) & set(first)
    assert strategy.labeled_counts_.sum() == 150 + 10  # L plus the returned labels
    status = campaign_status(store)
    assert (status["labeled"], status["queued"]) == (10, 20 + 25)
    assert [r["size"] for r in status["rounds"]] == [30, 25]


def test_round_larger_than_what_is_left_is_refused_and_recorded_nowhere(tmp_path):
    store, truth = digits_campaign(tmp_path, budget=0, n_pool=60)
    mine_round(store, make_strategy("random", model="logreg", random_state=0), budget=50)
    with pytest.raises(PoolExhaustedError):
        mine_round(store, make_strategy("random", model="logreg", random_state=0), budget=11)
    assert store.last_round() == 1

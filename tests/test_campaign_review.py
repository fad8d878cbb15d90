"""Flagged samples come back for review: export --flagged, the page's review queue, relabel --flagged, and the
dataset keeps their labels until a review replaces them."""

from __future__ import annotations

import csv
import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_campaign, snapshot
from activemine.campaign.annotators import open_relabel_round
from activemine.campaign.batchdata import read_batch
from activemine.campaign.exchange import export_round, import_labels, write_dataset
from activemine.campaign.review import ReviewQueue
from activemine.cli import app
from activemine.errors import BudgetError, LeaseError

runner = CliRunner()


@pytest.fixture()
def flagged_campaign(tmp_path):
    """A digits round of 30 with correct labels, 3 of them doubted by a zero threshold; returns (store, truth, doubted)."""
    store, truth = digits_campaign(tmp_path, budget=30, strategy="random")
    with store.snapshot() as conn:
        sids, data = read_batch(conn, 1)
    path = tmp_path / "labels.csv"
    path.write_text("id,label,annotator\n" + "".join(f"{s},{truth[int(s)]},ann\n" for s in sids))
    report = import_labels(store, path, suspect_threshold=0.0, suspect_by_class=False)
    doubted = sorted(str(s) for s in report.suspect)
    assert 1 <= len(doubted) < 30, "the fixture wants some labels the model does not put first"
    return store, truth, doubted


def test_dataset_keeps_flagged_labels_until_reviewed_unless_asked_to_drop_them(flagged_campaign, tmp_path):
    store, truth, doubted = flagged_campaign
    counts = write_dataset(store, tmp_path / "keep.parquet")
    ids = {str(i) for i in pq.read_table(tmp_path / "keep.parquet").column("id").to_pylist()}
    assert set(doubted) <= ids and counts["flagged_kept"] == len(doubted) and counts["flagged_left_out"] == 0
    counts = write_dataset(store, tmp_path / "drop.parquet", drop_flagged=True)
    ids = {str(i) for i in pq.read_table(tmp_path / "drop.parquet").column("id").to_pylist()}
    assert not set(doubted) & ids and counts["flagged_left_out"] == len(doubted)
    result = runner.invoke(app, ["campaign", "dataset", str(store.folder), "--out", str(tmp_path / "c.parquet")])
    assert result.exit_code == 0, result.output
    assert f"{len(doubted)} flagged ids kept with their label" in result.output


def test_export_flagged_writes_every_flagged_sample_with_why_and_its_labels(flagged_campaign, tmp_path):
    store, truth, doubted = flagged_campaign
    n = export_round(store, None, fmt="csv", out=tmp_path / "f.csv", flagged=True)
    rows = list(csv.DictReader((tmp_path / "f.csv").open()))
    assert n == len(doubted) and sorted(r["id"] for r in rows) == doubted
    assert all(r["flagged"] == "suspect" and r["given"].endswith("(ann)") and r["label"] == "" for r in rows)
    export_round(store, None, fmt="label-studio", out=tmp_path / "f.json", flagged=True)
    tasks = json.loads((tmp_path / "f.json").read_text())
    assert sorted(str(t["data"]["activemine_id"]) for t in tasks) == doubted
    assert all(t["meta"]["flagged"] == "suspect" for t in tasks)
    result = runner.invoke(
        app, ["campaign", "export", str(store.folder), "--flagged", "--round", "1", "--out", str(tmp_path / "x.csv")]
    )
    assert result.exit_code != 0 and "leave out --round" in result.output
    # the reviewers' answers, imported as a review, clear the flags
    (tmp_path / "r.csv").write_text("id,label\n" + "".join(f"{r['id']},{truth[int(r['id'])]}\n" for r in rows))
    import_labels(store, tmp_path / "r.csv", annotator="lead", review=True)
    assert store.flagged() == {}
    assert export_round(store, None, fmt="csv", out=tmp_path / "none.csv", flagged=True) == 0


def test_the_review_queue_serves_flagged_samples_and_a_review_replaces_their_labels(flagged_campaign):
    store, truth, doubted = flagged_campaign
    queue, other = ReviewQueue(store), ReviewQueue(store)
    assert queue.remaining() == len(doubted)
    first = queue.next("lead")
    assert first == doubted[0] and other.next("bob") != first  # one reviewer per sample
    with pytest.raises(LeaseError, match="being reviewed"):
        other.submit("bob", first, "3")
    queue.submit("lead", first, str(truth[int(first)]))
    assert first not in store.flagged() and queue.remaining() == len(doubted) - 1
    active = store.read("SELECT label, annotator, source FROM labels WHERE sid = ? AND retracted_at IS NULL", (first,))
    assert active == [(str(truth[int(first)]), "lead", "web-review")]
    assert queue.undo("lead") == first  # the review undone: the earlier label and its flag are back
    assert store.flagged()[first] == ["suspect"]
    assert store.read("SELECT annotator FROM labels WHERE sid = ? AND retracted_at IS NULL", (first,)) == [("ann",)]


def test_relabel_flagged_queues_only_flagged_samples_and_says_why_a_budget_is_too_large(flagged_campaign):
    store, truth, doubted = flagged_campaign
    before = snapshot(store)
    with pytest.raises(BudgetError) as err:
        open_relabel_round(store, len(doubted) + 1, flagged_only=True)
    message = str(err.value)
    assert f"above the {len(doubted)} flagged returned labels" in message
    assert "30 samples have a returned label" in message and "150 labels of the initial labeled set L" in message
    assert snapshot(store) == before
    round_no, sids = open_relabel_round(store, len(doubted), flagged_only=True)
    assert sorted(sids) == doubted and round_no == 2
    result = runner.invoke(app, ["campaign", "relabel", str(store.folder), "--budget", "500"])
    assert result.exit_code != 0 and "initial labeled set L are not relabeled" in result.output


@pytest.mark.parametrize("spelling", ["{:08d}", " {} ", "{}.0", "+{}"])
def test_a_review_reads_the_id_as_every_other_reader_does(flagged_campaign, spelling):
    # the campaign's ids are integers: 00019 and 19.0 are the sample 19, as in import and on the labeling page
    store, truth, doubted = flagged_campaign
    queue = ReviewQueue(store)
    sid = queue.next("lead")
    queue.submit("lead", spelling.format(int(sid)), str(truth[int(sid)]))
    assert sid not in store.flagged()
    active = store.read("SELECT sid, annotator FROM labels WHERE sid = ? AND retracted_at IS NULL", (sid,))
    assert active == [(sid, "lead")]

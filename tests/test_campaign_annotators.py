"""Campaign overlap, annotator report, consensus datasets and relabel rounds."""

from __future__ import annotations

import contextlib
import csv
import json
import threading

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_campaign, snapshot
from activemine.campaign.annotators import annotator_summary, open_relabel_round, training_labels
from activemine.campaign.exchange import export_round, import_labels
from activemine.campaign.leases import LabelingQueue
from activemine.campaign.overlap import assign_overlap, open_sids, wanted_counts
from activemine.cli import app
from activemine.errors import BudgetError, InputError, LeaseError

runner = CliRunner()


def _labels(store):
    return store.read("SELECT sid, annotator, label FROM labels WHERE retracted_at IS NULL AND source != 'initial'")


def _work(queue, who, truth, *, wrong=lambda sid: False):
    done = []
    while (sid := queue.next(who)) is not None:
        label = truth[int(sid)]
        queue.submit(who, sid, str((label + 1) % 10 if wrong(sid) else label))
        done.append(sid)
    return done


@pytest.fixture()
def overlap_campaign(tmp_path):
    store, truth = digits_campaign(tmp_path, budget=40)
    shared = assign_overlap(store, 1, overlap=0.25, per_item=2, seed=0)
    return store, truth, shared


def test_overlap_share_is_seeded_and_each_annotator_labels_a_sample_once(overlap_campaign):
    store, truth, shared = overlap_campaign
    assert len(shared) == 10 and wanted_counts(store, 1) == {s: 2 for s in shared}
    queue = LabelingQueue(store)
    for who in ("ann", "bob", "cy"):
        _work(queue, who, truth)
    rows = _labels(store)
    pairs = [(s, who) for s, who, _ in rows]
    assert len(pairs) == len(set(pairs))  # nobody labeled a sample twice
    per_sid = {}
    for s, who, _ in rows:
        per_sid.setdefault(s, set()).add(who)
    assert {s for s, people in per_sid.items() if len(people) == 2} == set(shared)
    assert len(per_sid) == 40 and len(rows) == 50
    assert queue.remaining() == 0 and not open_sids(store, 1)


def test_overlap_under_two_concurrent_sessions_of_one_annotator(overlap_campaign):
    store, truth, shared = overlap_campaign
    sessions = [LabelingQueue(store), LabelingQueue(store), LabelingQueue(store)]  # two pages of ann, one of bob
    errors = []

    def page(queue, who):
        try:
            while (sid := queue.next(who)) is not None:
                # the other page of the same annotator was faster, or the lease moved on
                with contextlib.suppress(LeaseError):
                    queue.submit(who, sid, str(truth[int(sid)]))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=page, args=(q, w)) for q, w in zip(sessions, ("ann", "ann", "bob"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors
    # a page that found everything leased to the other annotator stopped early; a reload picks up the rest
    for who in ("bob", "ann"):
        _work(sessions[0], who, truth)
    rows = _labels(store)
    pairs = [(s, who) for s, who, _ in rows]
    assert len(pairs) == len(set(pairs))
    per_sid = {}
    for s, who, _ in rows:
        per_sid.setdefault(s, set()).add(who)
    assert {s: sorted(per_sid[s]) for s in shared} == {s: ["ann", "bob"] for s in shared}
    assert len(per_sid) == 40


def test_export_keeps_overlap_samples_until_they_have_enough_labels(overlap_campaign, tmp_path):
    store, truth, shared = overlap_campaign
    queue = LabelingQueue(store)
    _work(queue, "ann", truth)  # one label on everything
    out = tmp_path / "r1.csv"
    assert export_round(store, 1, fmt="csv", out=out) == 10
    assert {r["id"] for r in csv.DictReader(out.open())} == set(shared)


def test_bad_overlap_and_relabel_input_changes_nothing(tmp_path):
    store, truth = digits_campaign(tmp_path, budget=20)
    folder = str(store.folder)
    before = snapshot(store)
    for extra, match in (
        (["--overlap", "1.0"], "overlap must be in"),
        (["--overlap", "-0.1"], "overlap must be in"),
        (["--overlap", "0.1", "--per-item", "1"], "per-item must be"),
    ):
        result = runner.invoke(app, ["campaign", "mine", folder, "--budget", "10", "--model", "logreg", *extra])
        assert result.exit_code == 2 and match in result.output, result.output
    result = runner.invoke(app, ["campaign", "relabel", folder, "--budget", "1"])
    assert result.exit_code == 2 and "above the 0 returned labels" in result.output
    assert snapshot(store) == before
    with pytest.raises(InputError):
        assign_overlap(store, 1, overlap=0.5, per_item=1)


def _import(store, tmp_path, rows, name):
    path = tmp_path / name
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "label", "annotator"])
        w.writerows(rows)
    return import_labels(store, path)


@pytest.fixture()
def labeled_campaign(tmp_path):
    """40 returned labels from four annotators, 'bad' wrong on most of theirs, 16 samples labeled twice."""
    store, truth = digits_campaign(tmp_path, budget=40)
    sids = [int(s) for (s,) in store.read("SELECT sid FROM batches WHERE round = 1 ORDER BY rank")]
    people = ["ann", "bob", "cy", "bad"]
    rows = []
    for i, sid in enumerate(sids):
        for who in {people[i % 4], people[(i + 1) % 4]} if i < 16 else {people[i % 4]}:
            label = truth[sid] if who != "bad" or i % 5 == 0 else (truth[sid] + 1) % 10
            rows.append((sid, label, who))
    _import(store, tmp_path, rows, "labels.csv")
    return store, truth, sids


def test_annotators_json_has_exactly_the_schema_and_flags_nobody_without_evidence(labeled_campaign):
    store, truth, sids = labeled_campaign
    result = runner.invoke(app, ["campaign", "annotators", str(store.folder), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert set(doc) == {"annotators", "pairs", "alpha"}
    assert all(
        set(a) == {"name", "labels", "agreement_with_consensus", "agreement_with_model", "flagged"}
        for a in doc["annotators"]
    )
    assert all(set(p) == {"a", "b", "shared", "kappa"} for p in doc["pairs"])
    by_name = {a["name"]: a for a in doc["annotators"]}
    assert sum(a["labels"] for a in doc["annotators"]) == 56
    assert by_name["bad"]["agreement_with_model"] < by_name["ann"]["agreement_with_model"]
    assert (store.folder / "reports" / "annotator_agreement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = annotator_summary(store)
    assert min(report["annotators"], key=lambda a: a["rank"])["name"] == "bad"
    table = runner.invoke(app, ["campaign", "annotators", str(store.folder)])
    assert table.exit_code == 0 and "alpha" in table.output and "bad" in table.output


def test_dataset_uses_the_consensus_of_disagreeing_annotators(labeled_campaign, tmp_path):
    store, truth, sids = labeled_campaign
    conflicted = {s for s, why in store.flagged().items() if "conflict" in why}
    assert conflicted
    assert not conflicted & set(training_labels(store, method="none"))
    resolved = training_labels(store, method="majority")
    assert conflicted <= set(resolved)
    out = tmp_path / "train.parquet"
    result = runner.invoke(app, ["campaign", "dataset", str(store.folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pydict()
    got = dict(zip(map(str, table["id"]), table["y"]))
    assert conflicted <= set(got)  # default consensus (dawid-skene) keeps them, with one label each
    assert len(table["id"]) == 150 + 40
    out2 = tmp_path / "none.parquet"
    assert (
        runner.invoke(
            app, ["campaign", "dataset", str(store.folder), "--out", str(out2), "--consensus", "none"]
        ).exit_code
        == 0
    )
    assert len(pq.read_table(out2)) == 150 + 40 - len(conflicted)
    bad = runner.invoke(
        app, ["campaign", "dataset", str(store.folder), "--out", str(tmp_path / "x.parquet"), "--consensus", "vote"]
    )
    assert bad.exit_code == 2 and not (tmp_path / "x.parquet").exists()


def test_relabel_round_asks_new_annotators_for_the_most_doubtful_labels(labeled_campaign, tmp_path):
    store, truth, sids = labeled_campaign
    before = snapshot(store)
    with pytest.raises(BudgetError, match="above the 40"):
        open_relabel_round(store, 41)
    assert snapshot(store) == before
    result = runner.invoke(app, ["campaign", "relabel", str(store.folder), "--budget", "6"])
    assert result.exit_code == 0, result.output
    assert "advice for the next budget" in result.output
    (round_no,) = store.read("SELECT MAX(round) FROM rounds")[0]
    chosen = [s for (s,) in store.read("SELECT sid FROM batches WHERE round = ? ORDER BY rank", (round_no,))]
    assert len(chosen) == 6 and open_sids(store, round_no) == set(chosen)
    # the doubtful labels are mostly the wrong ones
    current = training_labels(store)
    wrong = [s for s in chosen if current.get(s) != str(truth[int(s)])]
    assert len(wrong) >= 3
    assert export_round(store, round_no, fmt="csv", out=tmp_path / "second.csv") == 6
    queue = LabelingQueue(store, round_no=round_no)
    labeled_by = {
        s: {w for (w,) in store.read("SELECT annotator FROM labels WHERE sid = ? AND retracted_at IS NULL", (s,))}
        for s in chosen
    }
    for who in ("ann", "bob", "cy", "bad", "dee"):
        for sid in _work(queue, who, truth):
            assert who not in labeled_by[sid]
    assert queue.remaining() == 0
    assert all(
        len({w for (w,) in store.read("SELECT annotator FROM labels WHERE sid = ? AND retracted_at IS NULL", (s,))})
        == len(labeled_by[s]) + 1
        for s in chosen
    )


def test_labeling_page_with_overlap_two_sessions_of_one_annotator(overlap_campaign):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from activemine.campaign.web import create_app

    store, truth, shared = overlap_campaign
    token = "overlap-token-1234"
    app_ = create_app(store, token=token)
    pages = {who: TestClient(app_, headers={"X-Activemine-Token": token}) for who in ("ann-1", "ann-2", "bob")}
    name = {"ann-1": "ann", "ann-2": "ann", "bob": "bob"}
    current = {p: pages[p].post("/api/next", json={"annotator": name[p]}).json() for p in pages}
    assert current["ann-1"]["sample"]["id"] == current["ann-2"]["sample"]["id"]  # one lease, shown on both pages
    refused = 0
    for _ in range(200):
        active = [p for p in pages if current[p].get("sample")]
        if not active:
            break
        for p in active:
            sid = current[p]["sample"]["id"]
            r = pages[p].post(
                "/api/label",
                json={"annotator": name[p], "id": sid, "label": str((truth[int(sid)] + (p == "ann-2")) % 10)},
            )
            if r.status_code == 409:  # the other page of ann labeled it differently first: refused, not stored twice
                refused += 1
                r = pages[p].post("/api/next", json={"annotator": name[p]})
            assert r.status_code == 200, r.text
            current[p] = r.json()
    rows = _labels(store)
    pairs = [(s, who) for s, who, _ in rows]
    assert len(pairs) == len(set(pairs))
    per_sid = {}
    for s, who, _ in rows:
        per_sid.setdefault(s, set()).add(who)
    assert len(per_sid) == 40 and all(per_sid[s] == {"ann", "bob"} for s in shared)
    assert refused > 0  # the second page of ann was refused at least once instead of adding a second label


def _status(store):
    result = runner.invoke(app, ["campaign", "status", str(store.folder), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_a_second_opinion_is_asked_once_and_counted_as_queued_like_export_counts_it(labeled_campaign, tmp_path):
    store, truth, sids = labeled_campaign
    first, asked_first = open_relabel_round(store, 15)
    second, asked_second = open_relabel_round(store, 15)
    assert not set(asked_first) & set(asked_second)  # nobody is paid twice for the same second opinion
    before = snapshot(store)
    with pytest.raises(BudgetError) as err:
        open_relabel_round(store, 11)  # 40 returned labels, 30 of them already waiting
    assert str(err.value) == (
        "relabel budget 11 is above the 10 returned labels that can get a second opinion "
        "(30 more are already waiting for one in an open round)"
    )
    assert snapshot(store) == before
    status = _status(store)
    for r in (first, second):
        row = next(x for x in status["rounds"] if x["round"] == r)
        written = export_round(store, r, fmt="csv", out=tmp_path / f"r{r}.csv")
        assert row["queued"] == written == 15 and row["labeled"] == 0
    assert status["queued"] == sum(1 for s in open_sids(store, 1)) + 30
    # once answered, neither status nor export counts them, and they may be asked again
    queue = LabelingQueue(store, round_no=first)
    _work(queue, "zed", truth)
    status = _status(store)
    row = next(x for x in status["rounds"] if x["round"] == first)
    assert row["queued"] == 0 and row["labeled"] == 15
    assert export_round(store, first, fmt="csv", out=tmp_path / "again.csv") == 0


def test_an_overlap_sample_still_waiting_is_no_relabel_candidate(overlap_campaign, tmp_path):
    store, truth, shared = overlap_campaign
    queue = LabelingQueue(store)
    done = _work(queue, "ann", truth)  # every sample gets one label; the 10 shared ones still want a second
    others = [s for s in done if s not in shared]
    _import(store, tmp_path, [(int(s), truth[int(s)], "bob") for s in others[:2]], "bob.csv")
    round_no, asked = open_relabel_round(store, 28)  # 38 could get another opinion, 10 already wait for one
    assert not set(asked) & set(shared)
    with pytest.raises(BudgetError, match=r"above the 0 .* \(38 more are already waiting for one in an open round\)"):
        open_relabel_round(store, 1)
    status = _status(store)
    assert next(x for x in status["rounds"] if x["round"] == 1)["queued"] == 10
    assert next(x for x in status["rounds"] if x["round"] == round_no)["queued"] == 28
    assert status["queued"] == 10 + 28

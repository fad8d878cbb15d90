import base64
import csv
import json
import struct
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _campaign_helpers import digits_campaign, snapshot, synthetic_campaign
from activemine.campaign import campaign_status, export_round, import_labels, write_dataset
from activemine.campaign.batchdata import read_batch
from activemine.errors import InputError, RejectedImportError


@pytest.fixture()
def camp(tmp_path):
    return digits_campaign(tmp_path, budget=30)


def _batch(store):
    with store.snapshot() as conn:
        sids, data = read_batch(conn, 1)
    return list(zip([int(s) for s in sids], data.predicted.tolist(), data.score.tolist(), data.proba.tolist()))


def _ls_export(tasks, labels, who="ana@example.com"):
    """What Label Studio exports after an annotator chose ``labels[i]`` on task i (None: not annotated)."""
    out = []
    for n, (task, label) in enumerate(zip(tasks, labels)):
        anns = (
            []
            if label is None
            else [
                {
                    "id": n,
                    "completed_by": {"id": 1, "email": who},
                    "was_cancelled": False,
                    "created_at": "2024-05-01T10:00:00Z",
                    "result": [
                        {
                            "from_name": "label",
                            "to_name": "image",
                            "type": "choices",
                            "value": {"choices": [str(label)]},
                        }
                    ],
                }
            ]
        )
        out.append({"id": n + 1, "data": task["data"], "annotations": anns, "predictions": task["predictions"]})
    return out


def test_label_studio_export_carries_image_prediction_and_score(camp, tmp_path):
    store, _ = camp
    n = export_round(store, 1, fmt="label-studio", out=tmp_path / "t.json")
    tasks = json.loads((tmp_path / "t.json").read_text())
    batch = _batch(store)
    assert n == len(tasks) == 30
    for task, (sid, predicted, score, proba) in zip(tasks, batch):
        assert task["data"]["activemine_id"] == sid
        png = base64.b64decode(task["data"]["image"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (64, 64)  # 8x8 scaled by 8
        pred = task["predictions"][0]
        assert pred["result"][0]["value"]["choices"] == [predicted]
        assert pred["score"] == pytest.approx(max(proba))
        assert task["meta"]["acquisition_score"] == pytest.approx(score)


@pytest.mark.parametrize("fmt, suffix", [("csv", ".csv"), ("jsonl", ".jsonl")])
def test_export_fill_in_and_import_round_trip(camp, tmp_path, fmt, suffix):
    store, truth = camp
    out = tmp_path / f"r1{suffix}"
    export_round(store, 1, fmt=fmt, out=out)
    if fmt == "csv":
        rows = list(csv.DictReader(out.open()))
        for r in rows[:20]:
            r["label"] = truth[int(r["id"])]
        with out.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        for r in rows[:20]:
            r["label"] = truth[r["id"]]
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = import_labels(store, out, annotator="bo")
    assert (report.records, report.added, report.skipped_empty) == (30, 20, 10)
    assert campaign_status(store)["annotators"]["bo"]["labels"] == 20
    export_round(store, 1, fmt=fmt, out=tmp_path / f"rest{suffix}")
    remaining = (tmp_path / f"rest{suffix}").read_text().splitlines()
    assert len(remaining) == 10 + (fmt == "csv")  # only samples still without a label


def test_label_studio_import_then_reimport_changes_nothing(camp, tmp_path):
    store, truth = camp
    export_round(store, 1, fmt="label-studio", out=tmp_path / "t.json")
    tasks = json.loads((tmp_path / "t.json").read_text())
    labels = [truth[t["data"]["activemine_id"]] for t in tasks[:25]] + [None] * 5
    (tmp_path / "done.json").write_text(json.dumps(_ls_export(tasks, labels)))
    report = import_labels(store, tmp_path / "done.json")
    assert report.added == 25
    assert store.read("SELECT DISTINCT annotator, source FROM labels WHERE source != 'initial'") == [
        ("ana@example.com", "import")
    ]
    before = snapshot(store)
    assert import_labels(store, tmp_path / "done.json").already_imported
    # the same labels in a re-formatted file are recognised label by label
    (tmp_path / "again.json").write_text(json.dumps(_ls_export(tasks, labels), indent=2))
    again = import_labels(store, tmp_path / "again.json")
    assert (again.added, again.already_present) == (0, 25)
    after = snapshot(store)
    assert after["labels"] == before["labels"] and after["batches"] == before["batches"]


def test_a_second_different_label_is_kept_and_flags_the_id(camp, tmp_path):
    store, truth = camp
    sid = _batch(store)[0][0]
    other = (truth[sid] + 1) % 10
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": sid, "label": truth[sid], "annotator": "a"}) + "\n")
    (tmp_path / "b.csv").write_text(f"id,label,annotator\n{sid},{other},b\n")
    import_labels(store, tmp_path / "a.jsonl")
    report = import_labels(store, tmp_path / "b.csv")
    assert report.conflicts == [sid]
    assert sorted(store.read("SELECT label FROM labels WHERE sid = ?", (str(sid),))) == sorted(
        [(str(truth[sid]),), (str(other),)]
    )
    assert "conflict" in store.flagged()[str(sid)]
    assert campaign_status(store)["flagged"] >= 1
    dataset = pq.read_table(tmp_path / "d.parquet") if write_dataset(store, tmp_path / "d.parquet") else None
    assert sid not in dataset.column("id").to_pylist()
    # a re-review replaces both labels and clears the flag
    (tmp_path / "review.csv").write_text(f"id,label\n{sid},{truth[sid]}\n")
    import_labels(store, tmp_path / "review.csv", annotator="lead", review=True)
    assert str(sid) not in store.flagged()
    assert store.current_labels()[str(sid)] == str(truth[sid])


def test_labels_the_model_doubts_are_flagged_suspect(tmp_path):
    store, _ = digits_campaign(tmp_path, budget=30, strategy="random")  # random picks include rows the model is sure of
    sure = [(sid, proba) for sid, _, _, proba in _batch(store) if max(proba) > 0.8][:2]
    assert sure, "the fixture's model should be sure of some batch rows"
    lines = []
    for sid, proba in sure[:1]:  # the model's least likely class: disagreement > 0.5
        lines.append({"id": sid, "label": min(range(10), key=lambda c: proba[c])})
    for sid, proba in sure[1:]:  # the model's own top class: no disagreement
        lines.append({"id": sid, "label": max(range(10), key=lambda c: proba[c])})
    (tmp_path / "s.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    # one label per class: with thresholds per class no class is doubted more than another, so one shared threshold
    report = import_labels(store, tmp_path / "s.jsonl", annotator="c", suspect_threshold=0.5, suspect_by_class=False)
    assert report.suspect == [sure[0][0]]
    assert store.flagged()[str(sure[0][0])] == ["suspect"]


def test_unknown_ids_and_classes_are_rejected_naming_the_lines_and_nothing_is_applied(camp, tmp_path):
    store, truth = camp
    sid = _batch(store)[0][0]
    (tmp_path / "bad.csv").write_text(f"id,label\n{sid},3\n999999,3\n{sid},cat\n")
    before = snapshot(store)
    with pytest.raises(RejectedImportError) as err:
        import_labels(store, tmp_path / "bad.csv")
    message = str(err.value)
    assert "line 3: unknown id 999999" in message.replace("'", "")
    assert "line 4: unknown class 'cat'" in message and "2 bad record(s)" in message
    assert snapshot(store) == before


def _malformed(tmp_path, kind):
    if kind == "bad-encoding-csv":
        path = tmp_path / "x.csv"
        path.write_bytes(b"id,label\n10151,3\n10152,\xff\xfe3\n")
        return path, "line 3: not valid UTF-8"
    if kind == "bad-encoding-json":
        path = tmp_path / "x.json"
        path.write_bytes(b'[{"data": {"activemine_id": 1}, \n"annotations": ["\xc3\x28"]}]')
        return path, "line 2: not valid UTF-8"
    if kind == "truncated-json":
        path = tmp_path / "x.json"
        path.write_text('[{"data": {"activemine_id": 10151}, "annotations": [{"result": [')
        return path, "not valid JSON"
    if kind == "truncated-jsonl":
        path = tmp_path / "x.jsonl"
        path.write_text('{"id": 10151, "label": 3}\n{"id": 10152, "lab')
        return path, "line 2: not valid JSON"
    if kind == "wrong-columns":
        path = tmp_path / "x.csv"
        path.write_text("sample,class\n10151,3\n")
        return path, "wrong columns ['sample', 'class']: missing ['id', 'label']"
    if kind == "not-a-list":
        path = tmp_path / "x.json"
        path.write_text('{"tasks": []}')
        return path, "expected a JSON list of Label Studio tasks"
    suffix = {"huge-line-csv": ".csv", "huge-line-jsonl": ".jsonl", "huge-line-json": ".json"}[kind]
    path = tmp_path / f"x{suffix}"
    with path.open("wb") as fh:  # one line of 100 MB, made here so nothing large is committed
        if suffix == ".csv":
            fh.write(b"id,label\n")
        block = b"7" * (1 << 20)
        for _ in range(100):
            fh.write(block)
    return path, {
        ".csv": "line 2: longer than",
        ".jsonl": "line 1: longer than",
        ".json": "not valid JSON for a label export",
    }[suffix]


@pytest.mark.parametrize(
    "kind",
    [
        "bad-encoding-csv",
        "bad-encoding-json",
        "truncated-json",
        "truncated-jsonl",
        "wrong-columns",
        "not-a-list",
        "huge-line-csv",
        "huge-line-jsonl",
        "huge-line-json",
    ],
)
def test_malformed_files_give_a_clear_error_and_leave_the_store_unchanged(camp, tmp_path, kind):
    store, _ = camp
    path, expected = _malformed(tmp_path, kind)
    before = snapshot(store)
    with pytest.raises(RejectedImportError) as err:
        import_labels(store, path)
    assert expected in str(err.value)
    assert len(str(err.value)) < 2000  # a clear message, not a dump of the file
    assert snapshot(store) == before


def test_unknown_format_and_missing_file_are_input_errors(camp, tmp_path):
    store, _ = camp
    with pytest.raises(InputError, match="expected .csv, .jsonl or .json"):
        import_labels(store, tmp_path / "labels.xlsx")
    with pytest.raises(InputError, match="file not found"):
        import_labels(store, tmp_path / "nope.csv")
    with pytest.raises(InputError, match="round 7 does not exist"):
        export_round(store, 7, fmt="csv", out=tmp_path / "o.csv")
    with pytest.raises(InputError, match="unknown export format"):
        export_round(store, 1, fmt="xml", out=tmp_path / "o.xml")


def test_dataset_holds_initial_and_new_labels_with_the_original_features(camp, tmp_path):
    store, truth = camp
    batch = _batch(store)
    (tmp_path / "l.csv").write_text("id,label\n" + "".join(f"{sid},{truth[sid]}\n" for sid, *_ in batch[:12]))
    import_labels(store, tmp_path / "l.csv", annotator="d")
    counts = write_dataset(store, tmp_path / "train.parquet")
    table = pq.read_table(tmp_path / "train.parquet")
    L = pq.read_table(tmp_path / "L.parquet")
    U = pq.read_table(tmp_path / "U.parquet")
    assert table.schema == L.schema
    assert (counts["rows"], counts["initial"], counts["new"]) == (162, 150, 12)
    new = table.slice(150).to_pydict()
    assert new["y"] == [truth[i] for i in new["id"]]
    pool = {i: r for i, r in zip(U.column("id").to_pylist(), U.select(["px10"]).column(0).to_pylist())}
    assert new["px10"] == [pool[i] for i in new["id"]]


records = st.lists(
    st.tuples(st.integers(40, 59), st.integers(0, 2), st.sampled_from(["a", "b"])), min_size=1, max_size=30
)


@settings(max_examples=12, deadline=None)
@given(records=records, cut=st.integers(0, 30), reverse=st.booleans())
def test_final_labels_do_not_depend_on_how_records_are_split_into_files_or_repeated(records, cut, reverse):
    with tempfile.TemporaryDirectory() as tmp:
        one = synthetic_campaign(Path(tmp) / "one", 20)
        many = synthetic_campaign(Path(tmp) / "many", 20)
        lines = [json.dumps({"id": i, "label": y, "annotator": a}) + "\n" for i, y, a in records]
        (Path(tmp) / "all.jsonl").write_text("".join(lines))
        import_labels(one, Path(tmp) / "all.jsonl", allow_unmined=True)
        parts = [lines[:cut], lines[cut:], lines]  # the last file repeats everything
        if reverse:
            parts = parts[::-1]
        for n, part in enumerate(parts):
            (Path(tmp) / f"p{n}.jsonl").write_text("".join(part))
            if part:
                import_labels(many, Path(tmp) / f"p{n}.jsonl", allow_unmined=True)
        query = "SELECT sid, label, annotator FROM labels WHERE retracted_at IS NULL ORDER BY sid, label, annotator"
        assert one.read(query) == many.read(query)
        assert one.flagged() == many.flagged()
        expected_conflicts = {str(i) for i in {i for i, *_ in records} if len({y for j, y, _ in records if j == i}) > 1}
        assert {s for s, why in one.flagged().items() if "conflict" in why} == expected_conflicts


def test_label_studio_json_min_export_and_unannotated_tasks(camp, tmp_path):
    store, truth = camp
    export_round(store, 1, fmt="label-studio", out=tmp_path / "t.json")
    tasks = json.loads((tmp_path / "t.json").read_text())
    ids = [t["data"]["activemine_id"] for t in tasks]
    minimal = [{"id": n, "activemine_id": i, "label": str(truth[i]), "annotator": "kim"} for n, i in enumerate(ids[:4])]
    (tmp_path / "min.json").write_text(json.dumps(minimal + [{"data": {"activemine_id": ids[5]}, "annotations": []}]))
    report = import_labels(store, tmp_path / "min.json")
    assert report.added == 4
    assert sorted(store.read("SELECT sid, label, annotator FROM labels WHERE source = 'import'")) == sorted(
        (str(i), str(truth[i]), "kim") for i in ids[:4]
    )

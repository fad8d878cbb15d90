"""Ids mean one thing: every reader of user-given ids (import in each format, the labeling page) normalizes them alike."""

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from _campaign_helpers import digits_campaign, snapshot
from activemine.campaign import CampaignStore, export_round, import_labels, init_campaign, mine_round
from activemine.campaign.leases import LabelingQueue
from activemine.campaign.store import normalize_id
from activemine.errors import InputError, RejectedImportError
from activemine.selection.strategies import make_strategy


def _write(path, fmt: str, records: list[tuple]):
    """Label records ``(id, label)`` as CSV (ids as the text given), JSONL or a Label Studio export (JSON values)."""
    if fmt == "csv":
        path = path.with_suffix(".csv")
        path.write_text("id,label\n" + "".join(f"{i},{lab}\n" for i, lab in records))
    elif fmt == "jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text("".join(json.dumps({"id": i, "label": lab}) + "\n" for i, lab in records))
    else:
        path = path.with_suffix(".json")
        tasks = [
            {
                "data": {"activemine_id": i},
                "annotations": [{"result": [{"type": "choices", "value": {"choices": [str(lab)]}}]}],
            }
            for i, lab in records
        ]
        path.write_text(json.dumps(tasks))
    return path


def _counts(store):
    return {t: len(rows) for t, rows in snapshot(store).items()}


@pytest.fixture(scope="module")
def int_campaign(tmp_path_factory):
    store, truth = digits_campaign(tmp_path_factory.mktemp("ids"), budget=30)
    return store, truth


FORMATS = ["csv", "jsonl", "label-studio"]


def _spellings(sid: int) -> list:
    """Ways a person or a tool writes one integer id."""
    return [str(sid).zfill(8), f" {sid} ", f"{sid}.0", f"+{sid}", float(sid)]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_spelling_of_an_integer_id_is_that_id_in_every_import_format(int_campaign, tmp_path, fmt):
    store, truth = int_campaign
    queued = [int(s) for (s,) in store.read("SELECT sid FROM batches ORDER BY rank")]
    records = []
    for j, sid in enumerate(queued[:5]):
        given = _spellings(sid)[j]  # id j is spelled the j-th way
        records.append((str(given) if fmt == "csv" else given, truth[sid]))  # a CSV cell is text
    path = _write(tmp_path / "labels", fmt, records)
    work = CampaignStore(_copy(store, tmp_path))
    report = import_labels(work, path, annotator="kim")
    assert report.added == 5
    got = {int(s) for (s,) in work.read("SELECT sid FROM labels WHERE annotator = 'kim'")}
    assert got == set(queued[:5])


def _copy(store, tmp_path):
    import shutil

    dest = tmp_path / "copy"
    shutil.copytree(store.folder, dest)
    return dest


BAD_INT_IDS = [
    ("abc", "id 'abc' is not an integer; this campaign's ids are integers"),
    ("1915.5", "id '1915.5' is not an integer; this campaign's ids are integers"),
    ("12e3", "id '12e3' is not an integer; this campaign's ids are integers"),
    ("99999999999999999999", "id '99999999999999999999' does not fit in a 64-bit integer, as this campaign's ids do"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("given", "message"), BAD_INT_IDS)
def test_a_bad_integer_id_is_refused_with_the_reason_and_nothing_changes(int_campaign, tmp_path, fmt, given, message):
    store, truth = int_campaign
    work = CampaignStore(_copy(store, tmp_path))
    queued = [int(s) for (s,) in work.read("SELECT sid FROM batches ORDER BY rank")]
    records = [(str(queued[0]), truth[queued[0]]), (given, truth[queued[1]])]
    path = _write(tmp_path / "labels", fmt, records)
    before = _counts(work)
    with pytest.raises(RejectedImportError) as err:
        import_labels(work, path, annotator="kim")
    where = "line 3" if fmt == "csv" else ("line 2" if fmt == "jsonl" else "task 2 annotation 1")
    assert f"{where}: {message}" in str(err.value)
    assert "1 bad record(s), nothing imported" in str(err.value)
    assert _counts(work) == before


@pytest.mark.parametrize("fmt", ["jsonl", "label-studio"])
@pytest.mark.parametrize(
    ("given", "message"),
    [
        (1915.5, "id 1915.5 is not a whole number; this campaign's ids are integers"),
        (True, "id True is a bool; expected an integer or a string"),
        ([1], "id [1] is a list; expected an integer or a string"),
        (None, "missing id"),
        ("  ", "missing id"),
    ],
)
def test_json_values_that_are_no_integer_id_are_refused(int_campaign, tmp_path, fmt, given, message):
    store, truth = int_campaign
    work = CampaignStore(_copy(store, tmp_path))
    before = _counts(work)
    path = _write(tmp_path / "labels", fmt, [(given, 1)])
    with pytest.raises(RejectedImportError, match=re.escape(f": {message}")):
        import_labels(work, path, annotator="kim")
    assert _counts(work) == before


def test_the_labeling_page_reads_ids_the_same_way(int_campaign, tmp_path):
    store, truth = int_campaign
    work = CampaignStore(_copy(store, tmp_path))
    queue = LabelingQueue(work)
    sid = queue.next("eve")
    queue.submit("eve", sid.zfill(10), str(truth[int(sid)]))  # the id spelled with leading zeros
    assert work.read("SELECT sid FROM labels WHERE annotator = 'eve'") == [(sid,)]
    other = queue.next("eve")
    queue.skip("eve", f" {other} ")
    assert work.read("SELECT sid FROM skips") == [(other,)]
    before = _counts(work)
    with pytest.raises(InputError, match="id 'abc' is not an integer; this campaign's ids are integers"):
        queue.submit("eve", "abc", "1")
    with pytest.raises(InputError, match="id '1.5' is not an integer"):
        queue.skip("eve", "1.5")
    assert _counts(work) == before


@pytest.fixture(scope="module")
def string_campaign(tmp_path_factory):
    """A campaign whose ids have spaces, case and unicode that must survive export and import exactly."""
    base = tmp_path_factory.mktemp("strids")
    rng = np.random.default_rng(0)
    pool_ids = [" space ", "space", "Ünïcode", "tab\tid", "  lead", "trail  "] + [f"p{i}" for i in range(54)]
    p = rng.random(len(pool_ids))
    pq.write_table(pa.table({"id": pool_ids, "p0": 1 - p, "p1": p}), base / "U.parquet")
    pq.write_table(pa.table({"id": [f"L{i}" for i in range(10)], "y": np.arange(10) % 2}), base / "L.parquet")
    store = init_campaign(base / "camp", pool=base / "U.parquet", labeled=base / "L.parquet", proba_cols=[["p0", "p1"]])
    mine_round(store, make_strategy("random", random_state=0), budget=len(pool_ids))
    return store


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_string_ids_round_trip_through_export_and_import_exactly(string_campaign, tmp_path, fmt):
    work = CampaignStore(_copy(string_campaign, tmp_path))
    out = tmp_path / f"round.{fmt}"
    export_round(work, 1, fmt=fmt, out=out)
    if fmt == "csv":
        lines = out.read_text().splitlines()
        filled = [lines[0]] + [line.replace(",,", ",1,", 1) for line in lines[1:]]
        out.write_text("\n".join(filled) + "\n")
    else:
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        out.write_text("".join(json.dumps(dict(r, label=1)) + "\n" for r in rows))
    report = import_labels(work, out, annotator="kim")
    assert report.added == 60
    stored = {s for (s,) in work.read("SELECT sid FROM labels WHERE annotator = 'kim'")}
    assert {" space ", "space", "Ünïcode", "tab\tid", "  lead", "trail  "} <= stored


def test_a_string_id_is_never_trimmed_so_a_near_miss_is_named(string_campaign, tmp_path):
    work = CampaignStore(_copy(string_campaign, tmp_path))
    (tmp_path / "x.csv").write_text('id,label\n" lead",1\n')
    before = _counts(work)
    with pytest.raises(RejectedImportError, match=r"line 2: unknown id ' lead': no round selected it"):
        import_labels(work, tmp_path / "x.csv", annotator="kim")
    assert _counts(work) == before


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (19632, "int", "19632"),
        ("00019632", "int", "19632"),
        (" -7 ", "int", "-7"),
        (np.int64(5), "int", "5"),
        (np.float32(8.0), "int", "8"),
        (" space ", "str", " space "),
        (12, "str", "12"),
        ("Ünï", "str", "Ünï"),
    ],
)
def test_normalize_id(value, kind, expected):
    assert normalize_id(value, kind) == expected

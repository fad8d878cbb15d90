"""Readers never take the write lock; a writer that waits too long says the store is busy, changes nothing."""

import json
import sqlite3
import time
from contextlib import contextmanager

import pytest
from typer.testing import CliRunner

import activemine.campaign.store as store_module
from _campaign_helpers import digits_campaign, snapshot
from activemine.campaign import CampaignStore, import_labels
from activemine.cli import app

runner = CliRunner()
WAIT = 1.5  # seconds a writer waits for the lock in these tests (the command-line default is a minute)


def invoke(*args):
    started = time.perf_counter()
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or ""), time.perf_counter() - started


@contextmanager
def another_writer(store: CampaignStore):
    """Another process in the middle of a long write: it holds the store's write lock, uncommitted."""
    conn = sqlite3.connect(store.db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta VALUES ('half-written', '1')")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("busy")
    store, truth = digits_campaign(base, budget=30)
    sids = [s for (s,) in store.read("SELECT sid FROM batches ORDER BY rank")]
    (base / "labels.csv").write_text("id,label\n" + "".join(f"{s},{truth[int(s)]}\n" for s in sids[:20]))
    import_labels(store, base / "labels.csv", annotator="kim")
    (base / "lee.csv").write_text("id,label\n" + "".join(f"{s},{truth[int(s)]}\n" for s in sids[:10]))
    import_labels(store, base / "lee.csv", annotator="lee")  # a second annotator: second opinions can be asked
    (base / "more.csv").write_text("id,label\n" + "".join(f"{s},{truth[int(s)]}\n" for s in sids[20:]))
    return store


@pytest.fixture(params=["current", "made before the wanted table"])
def store(built, tmp_path, request, monkeypatch):
    import shutil

    shutil.copytree(built.folder.parent, tmp_path / "c")
    store = CampaignStore(tmp_path / "c" / built.folder.name)
    if request.param != "current":
        with store.transaction() as conn:
            conn.execute("DROP TABLE wanted")
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", WAIT)
    return store


READERS = {
    "status": ("status",),
    "status --json": ("status", "--json"),
    "export csv": ("export", "--format", "csv", "--out", "{tmp}/r.csv"),
    "export label-studio": ("export", "--format", "label-studio", "--out", "{tmp}/r.json", "--round", "1"),
    "export include-labeled": ("export", "--format", "jsonl", "--out", "{tmp}/r.jsonl", "--include-labeled"),
    "dataset": ("dataset", "--out", "{tmp}/train.parquet"),
    "annotators": ("annotators", "--json"),
}


@pytest.mark.parametrize("reader", READERS)
def test_readers_run_while_another_process_writes(store, tmp_path, reader, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.0)  # any wait for the write lock would fail at once
    args = [a.format(tmp=tmp_path) for a in READERS[reader]]
    before = {t: len(rows) for t, rows in snapshot(store).items()}
    with another_writer(store):
        code, text, _ = invoke("campaign", args[0], store.folder, *args[1:])
    assert code == 0, text
    assert {t: len(rows) for t, rows in snapshot(store).items()} == before


WRITERS = {
    "mine": ("mine", "--budget", 5, "--strategy", "random", "-q"),
    "import": ("import", "{more}", "-q"),
    "relabel": ("relabel", "--budget", 2),
}


@pytest.mark.parametrize("writer", WRITERS)
def test_a_writer_behind_a_long_write_says_the_store_is_busy_and_changes_nothing(store, writer):
    args = [str(a).format(more=store.folder.parent / "more.csv") for a in WRITERS[writer]]
    before = {t: len(rows) for t, rows in snapshot(store).items()}
    with another_writer(store):
        code, text, seconds = invoke("campaign", args[0], store.folder, *args[1:])
    assert code == 75, text
    flat = " ".join(text.split())
    assert (
        f"error: StoreBusyError: the campaign store '{store.folder}' is busy: another process (a `campaign mine`, "
        f"an import or the labeling page) kept it locked for writing for more than {WAIT:g} s; nothing was changed, "
        "try again when it has finished"
    ) in flat, text
    assert {t: len(rows) for t, rows in snapshot(store).items()} == before
    code, text, _ = invoke("campaign", args[0], store.folder, *args[1:])  # the same command, once the lock is free
    assert code == 0, text


def test_the_labeling_page_answers_a_busy_store_with_503_and_a_json_message(store):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from activemine.campaign.web import create_app

    client = TestClient(create_app(store, token="busy-token-123", busy_timeout=0.3))
    headers = {"X-Activemine-Token": "busy-token-123"}
    with another_writer(store):
        r = client.post("/api/next", json={"annotator": "eve"}, headers=headers)
    assert r.status_code == 503 and r.headers["retry-after"] == "5"
    assert r.json() == {
        "detail": "The campaign is busy with another task (saving a round or an import); nothing was lost. "
        "Try again in a few seconds."
    }
    r = client.post("/api/next", json={"annotator": "eve"}, headers=headers)
    assert r.status_code == 200 and r.json()["sample"] is not None
    assert json.loads(r.text)["remaining"] == 10

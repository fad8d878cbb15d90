"""A killed import or round leaves the store exactly as it was before it."""

import signal
import subprocess
import sys
import textwrap

import pytest

from _campaign_helpers import proba_campaign, snapshot, synthetic_campaign
from activemine.campaign import import_labels, mine_round
from activemine.selection.strategies import make_strategy

N = 120_000

CHILD = textwrap.dedent(
    """
    import sys, time
    from activemine.campaign import CampaignStore, import_labels

    calls = 0

    def progress(n):
        global calls
        calls += 1
        if calls == 2:  # 100,000 of the rows are written inside the open transaction
            print("half written", flush=True)
            time.sleep(120)

    import_labels(CampaignStore(sys.argv[1]), sys.argv[2], annotator="batch", progress=progress, allow_unmined=True)
    print("committed", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_large_import_leaves_the_store_unchanged(tmp_path):
    store = synthetic_campaign(tmp_path, N)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"{i},{i % 3}\n" for i in range(40, 40 + N)))
    before = snapshot(store)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store.folder), str(labels)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "half written"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert store.read("PRAGMA integrity_check") == [("ok",)]
    assert snapshot(store) == before
    report = import_labels(
        store, labels, annotator="batch", allow_unmined=True
    )  # the import was not recorded, so it runs again, whole
    assert report.added == N and len(store.labeled_sids()) == 40 + N


MINE_CHILD = textwrap.dedent(
    """
    import sys, time
    from contextlib import contextmanager
    from activemine.campaign import CampaignStore, mine_round
    from activemine.selection.strategies import make_strategy

    @contextmanager
    def steps(description, total=None, unit="rows"):
        def progress(n):
            if description == "writing the round":  # the first 50,000 rows are in the open transaction
                print("half written", flush=True)
                time.sleep(120)
        yield progress

    mine_round(CampaignStore(sys.argv[1]), make_strategy("hw", random_state=0), budget=80_000, steps=steps)
    print("committed", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_writing_a_round_leaves_the_store_unchanged(tmp_path):
    store = proba_campaign(tmp_path, 200_000)
    mine_round(store, make_strategy("hw", random_state=0), budget=1_000)  # a round before, which must stay as it is
    before = snapshot(store)
    child = subprocess.Popen([sys.executable, "-c", MINE_CHILD, str(store.folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "half written"
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert store.read("PRAGMA integrity_check") == [("ok",)]
    assert snapshot(store) == before
    round_no, batch = mine_round(store, make_strategy("hw", random_state=0), budget=80_000)  # and the next round works
    assert round_no == 2 and len(batch) == 80_000

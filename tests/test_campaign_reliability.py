"""A killed import leaves the store exactly as it was before the import."""

import signal
import subprocess
import sys
import textwrap

import pytest
from _campaign_helpers import snapshot, synthetic_campaign

from activemine.campaign import import_labels

N = 20_000

CHILD = textwrap.dedent(
    """
    import sys, time
    from activemine.campaign import CampaignStore, import_labels

    calls = 0

    def progress(n):
        global calls
        calls += 1
        if calls == 10:  # half of the rows are written inside the open transaction
            print("half written", flush=True)
            time.sleep(120)

    import_labels(CampaignStore(sys.argv[1]), sys.argv[2], annotator="batch", progress=progress)
    print("committed", flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_large_import_leaves_the_store_unchanged(tmp_path):
    store = synthetic_campaign(tmp_path, N)
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\n" + "".join(f"{i},{i % 3}\n" for i in range(40, 40 + N)))
    before = snapshot(store)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(store.folder), str(labels)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
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
    report = import_labels(store, labels, annotator="batch")  # the import was not recorded, so it runs again, whole
    assert report.added == N and len(store.labeled_sids()) == 40 + N

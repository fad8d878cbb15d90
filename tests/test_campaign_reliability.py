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


# the child kills itself with SIGKILL (no cleanup runs) when the named function is entered
KILL_AT = textwrap.dedent(
    """
    import os, signal, sys, importlib
    module, path = sys.argv[1].split(":")
    owner = importlib.import_module(module)
    *parents, name = path.split(".")
    for parent in parents:
        owner = getattr(owner, parent)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(owner, name, die)
    from activemine.cli import app
    app(sys.argv[2:])
    """
)


def _killed(tmp_path, where: str, *args) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT, where, *[str(a) for a in args]],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc


def _cli(*args):
    from typer.testing import CliRunner

    from activemine.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


@pytest.mark.parametrize(
    "where",
    [
        "activemine.campaign.samples:_copy_pool",
        "activemine.campaign.samples:pq.write_table",  # L, after the pool was copied
        "activemine.campaign.store:CampaignStore.create",
        "activemine.campaign.store:json.dumps",  # inside the store's creation, the database half written
    ],
)
def test_a_killed_init_is_started_over_by_the_next_init(tmp_path, where):
    from _campaign_helpers import digits_files

    L, U, _ = digits_files(tmp_path, n_pool=200)
    camp = tmp_path / "camp"
    _killed(tmp_path, where, "campaign", "init", camp, "--pool", U, "--labeled", L, "--label-col", "y", "-q")
    assert not (camp / "campaign.db").exists()
    code, text = _cli("campaign", "status", camp)
    assert code == 2 and "its `campaign init` was interrupted before it finished" in text, text
    code, text = _cli("campaign", "init", camp, "--pool", U, "--labeled", L, "--label-col", "y", "-q")
    assert code == 0, text
    code, text = _cli("campaign", "status", camp, "--json")
    assert code == 0 and '"initial": 150' in text, text
    assert not (camp / ".init-incomplete").exists()


def test_a_folder_with_someone_elses_data_is_still_refused(tmp_path):
    from _campaign_helpers import digits_files

    L, U, _ = digits_files(tmp_path, n_pool=200)
    (tmp_path / "camp" / "data").mkdir(parents=True)
    (tmp_path / "camp" / "data" / "mine.txt").write_text("keep me")
    code, text = _cli("campaign", "init", tmp_path / "camp", "--pool", U, "--labeled", L, "--label-col", "y", "-q")
    assert code == 2 and "already exists and is not empty" in text, text
    assert (tmp_path / "camp" / "data" / "mine.txt").read_text() == "keep me"


def test_a_round_killed_while_its_overlap_is_marked_leaves_no_round(tmp_path):
    store = synthetic_campaign(tmp_path, 2_000)
    before = snapshot(store)
    mine = ("campaign", "mine", store.folder, "--budget", 40, "--strategy", "lc", "--model", "logreg")
    _killed(tmp_path, "activemine.campaign.overlap:mark_overlap", *mine, "--overlap", 0.5, "-q")
    assert snapshot(store) == before  # no round without its overlap
    code, text = _cli(*mine, "--overlap", 0.5, "-q")
    assert code == 0 and "20 of them go to 2 distinct annotators each" in text, text
    assert store.read("SELECT COUNT(*), MIN(labels) FROM wanted WHERE round = 1")[0] == (20, 2)

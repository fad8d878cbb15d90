"""Campaigns at pool scale: the pool stays on disk, probability pools, exclusions as arrays, concurrency."""

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import activemine.engines
from _campaign_helpers import proba_campaign, proba_pool, snapshot
from activemine.campaign import CampaignStore, campaign_status, import_labels, init_campaign, mine_round, write_dataset
from activemine.campaign.batchdata import read_batch
from activemine.errors import CampaignError, InputError, RejectedImportError
from activemine.selection.strategies import make_strategy


def _hw():
    return make_strategy("hw", balance="equal", easy_share=0.1, random_state=0)


def _batch_sids(store, round_no):
    return [r[0] for r in store.read("SELECT sid FROM batches WHERE round = ? ORDER BY rank", (round_no,))]


def _write_labels(path, sids, labels, annotator=None):
    rows = "".join(f"{s},{y}" + (f",{annotator}" if annotator else "") + "\n" for s, y in zip(sids, labels))
    path.write_text("id,label" + (",annotator" if annotator else "") + "\n" + rows)
    return path


@pytest.fixture()
def no_whole_pool_reads(monkeypatch):
    """Fail any attempt to read a pool file whole (pq.read_table or ParquetFile.read on it)."""
    real_read_table = pq.read_table

    def read_table(source, *args, **kwargs):
        name = Path(str(source)).name
        assert name != "U.parquet" and not name.startswith("part-"), f"read whole: {source}"
        return real_read_table(source, *args, **kwargs)

    def read(self, *args, **kwargs):
        raise AssertionError("a pool file was read whole")

    monkeypatch.setattr(pq, "read_table", read_table)
    monkeypatch.setattr(pq.ParquetFile, "read", read)


@pytest.mark.parametrize("id_type", [pa.string(), pa.large_string(), pa.dictionary(pa.int32(), pa.string())])
def test_probability_pool_round_import_and_second_round_never_read_the_pool_whole(
    tmp_path, no_whole_pool_reads, id_type
):
    store = proba_campaign(tmp_path, 5_000, id_type=id_type)
    assert store.meta["id_kind"] == "str" and store.meta["proba_cols"] == [["p0", "p1"]]
    assert store.read("SELECT COUNT(*) FROM samples")[0][0] == 100  # only L: the pool is not copied into SQLite
    r1, b1 = mine_round(store, _hw(), budget=400)
    assert len(b1) == 400 and r1 == 1
    assert sorted(b1.quotas.values()) == [200, 200]
    first = _batch_sids(store, 1)
    truth = (np.asarray(b1.scores) >= 0).astype(int)  # any labels will do
    import_labels(store, _write_labels(tmp_path / "l.csv", first, truth), annotator="vendor")
    r2, b2 = mine_round(store, _hw(), budget=400)
    assert r2 == 2 and not set(_batch_sids(store, 2)) & set(first)
    # the stored probabilities are the pool's own p0, p1
    table = pq.ParquetFile(tmp_path / "U.parquet").read_row_groups([0])
    p1 = dict(zip(table.column("id").to_pylist(), table.column("p1").to_pylist()))
    with store.snapshot() as conn:
        sids, data = read_batch(conn, 1)
    assert sids[0] not in p1 or data.proba[0, 1] == pytest.approx(p1[sids[0]])


def test_exclusions_reach_the_engine_as_one_sorted_array(tmp_path, monkeypatch):
    store = proba_campaign(tmp_path, 3_000)
    mine_round(store, _hw(), budget=300)
    seen = {}
    real = activemine.engines.prepare_run

    def spy(strategy, source, **kwargs):
        seen["exclude"] = kwargs["exclude"]
        return real(strategy, source, **kwargs)

    monkeypatch.setattr(activemine.engines, "prepare_run", spy)
    mine_round(store, _hw(), budget=300)
    ex = seen["exclude"]
    assert isinstance(ex, np.ndarray) and ex.dtype.kind == "U" and ex.size == 300 + 100
    assert (ex[1:] > ex[:-1]).all()


def test_a_feature_pool_trains_on_returned_labels_found_in_the_pool_files(tmp_path):
    rng = np.random.default_rng(1)
    n, n_l = 2_000, 60
    X = rng.normal(size=(n + n_l, 3)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    cols = {f"f{j}": X[:, j] for j in range(3)}
    pq.write_table(
        pa.table({"id": np.arange(n), **{k: v[:n] for k, v in cols.items()}}),
        tmp_path / "U.parquet",
        row_group_size=500,
    )
    pq.write_table(
        pa.table({"id": np.arange(n, n + n_l), **{k: v[n:] for k, v in cols.items()}, "y": y[n:]}),
        tmp_path / "L.parquet",
    )
    store = init_campaign(tmp_path / "c", pool=tmp_path / "U.parquet", labeled=tmp_path / "L.parquet")
    mine_round(store, make_strategy("lc", model="logreg", random_state=0), budget=50)
    sids = _batch_sids(store, 1)
    import_labels(store, _write_labels(tmp_path / "l.csv", sids, [y[int(s)] for s in sids]), annotator="a")
    counts = write_dataset(store, tmp_path / "train.parquet")
    t = pq.read_table(tmp_path / "train.parquet")
    assert {k: counts[k] for k in ("rows", "initial", "new")} == {"rows": 110, "initial": 60, "new": 50} or counts[
        "rows"
    ] == 110 - counts["flagged_left_out"]
    new = t.slice(60).to_pydict()
    assert new["f1"] == pytest.approx([float(X[i, 1]) for i in new["id"]])
    assert new["y"] == [int(y[i]) for i in new["id"]]
    mine_round(store, make_strategy("lc", model="logreg", random_state=0), budget=50)
    assert not set(_batch_sids(store, 2)) & set(sids)


def test_a_label_committed_while_a_round_is_mined_makes_the_round_fail_and_record_nothing(tmp_path, monkeypatch):
    store = proba_campaign(tmp_path, 3_000)
    real = activemine.engines.prepare_run

    def import_meanwhile(strategy, source, **kwargs):
        run = real(strategy, source, **kwargs)
        select = run.select

        def select_then_import():
            batch = select()
            # another process labels one of the ids this round is about to queue
            _write_labels(tmp_path / "meanwhile.csv", [str(batch.ids[0])], [1], annotator="other")
            import_labels(store, tmp_path / "meanwhile.csv", allow_unmined=True)
            return batch

        run.select = select_then_import
        return run

    monkeypatch.setattr(activemine.engines, "prepare_run", import_meanwhile)
    before = {k: v for k, v in snapshot(store).items() if k not in ("labels", "imports", "samples")}
    with pytest.raises(CampaignError, match="while this round was mined"):
        mine_round(store, _hw(), budget=200)
    after = {k: v for k, v in snapshot(store).items() if k not in ("labels", "imports", "samples")}
    assert after == before and store.last_round() is None


CONCURRENT_MINE = textwrap.dedent(
    """
    import sys
    from activemine.campaign import CampaignStore, mine_round
    from activemine.selection.strategies import make_strategy
    sys.stdin.readline()  # start together
    r, b = mine_round(CampaignStore(sys.argv[1]), make_strategy("hw", random_state=int(sys.argv[2])), budget=3_000)
    print(r)
    """
)


@pytest.mark.slow
def test_two_concurrent_mines_never_queue_the_same_id(tmp_path):
    store = proba_campaign(tmp_path, 10_000)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_MINE, str(store.folder), str(seed)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 0)
    ]
    for c in children:
        c.stdin.write("go\n")
        c.stdin.flush()
    outs = [c.communicate(timeout=300)[0].strip() for c in children]
    assert all(c.returncode == 0 for c in children) and sorted(outs) == ["1", "2"]
    a, b = _batch_sids(store, 1), _batch_sids(store, 2)
    assert len(a) == len(b) == 3_000 and not set(a) & set(b)


def test_status_answers_from_one_snapshot_while_imports_run(tmp_path):
    store = proba_campaign(tmp_path, 20_000)
    mine_round(store, _hw(), budget=6_000)
    sids = _batch_sids(store, 1)
    files = [
        _write_labels(tmp_path / f"part{i}.csv", sids[i::6], [i % 2] * len(sids[i::6]), annotator=f"a{i}")
        for i in range(6)
    ]
    errors, answers = [], []

    def importer():
        try:
            for f in files:
                import_labels(store, f)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=importer)
    thread.start()
    while thread.is_alive() or len(answers) < 3:
        s = campaign_status(store)
        answers.append(s)
        r = s["rounds"][0]
        # one snapshot: every breakdown agrees with the totals
        assert r["labeled"] + r["queued"] == r["size"] == 6_000
        assert s["labeled"] == r["labeled"] and s["queued"] == r["queued"]
        assert sum(a["samples"] for a in s["annotators"].values()) == s["labeled"]
    thread.join()
    assert not errors and len(answers) >= 3 and campaign_status(store)["labeled"] == 6_000


def test_import_with_one_bad_row_after_many_good_ones_changes_nothing(tmp_path):
    store = proba_campaign(tmp_path, 150_000)
    mine_round(store, _hw(), budget=120_000)
    sids = _batch_sids(store, 1)
    path = _write_labels(tmp_path / "l.csv", sids, [1] * len(sids))
    with path.open("a") as fh:
        fh.write(f"{sids[0]},cat\n")  # the very last row has an unknown class
    before = snapshot(store)
    with pytest.raises(RejectedImportError, match=f"line {len(sids) + 2}: unknown class 'cat'"):
        import_labels(store, path)
    assert snapshot(store) == before


def test_import_refuses_empty_files_ids_of_L_and_ids_never_mined_unless_allowed(tmp_path):
    store = proba_campaign(tmp_path, 2_000)
    mine_round(store, _hw(), budget=100)
    mined = _batch_sids(store, 1)
    unmined = next(s for s in proba_pool(2_000)["id"].to_pylist() if s not in set(mined))
    before = snapshot(store)
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("id,label\n")
    for name in ("empty.csv", "header.csv"):
        with pytest.raises(RejectedImportError):
            import_labels(store, tmp_path / name)
    with pytest.raises(RejectedImportError, match="initial labeled set"):
        import_labels(store, _write_labels(tmp_path / "l.csv", ["L3"], [0]))
    with pytest.raises(RejectedImportError, match="no round selected it"):
        import_labels(store, _write_labels(tmp_path / "u.csv", [unmined], [0]))
    with pytest.raises(RejectedImportError, match="no round selected it"):
        import_labels(store, _write_labels(tmp_path / "x.csv", ["not-in-the-pool"], [0]), allow_unmined=True)
    assert snapshot(store) == before
    assert import_labels(store, tmp_path / "l.csv", allow_labeled_set=True).added == 1
    assert import_labels(store, tmp_path / "u.csv", allow_unmined=True).added == 1
    assert unmined in store.labeled_sids()
    r3, _ = mine_round(store, _hw(), budget=100)  # the label of a never-mined id excludes it too
    assert unmined not in _batch_sids(store, r3)


def test_reimport_dedupes_by_content_and_options_so_a_review_applies(tmp_path):
    store = proba_campaign(tmp_path, 2_000)
    mine_round(store, _hw(), budget=50)
    sid = _batch_sids(store, 1)[0]
    _write_labels(tmp_path / "a.csv", [sid], [0], annotator="ana")
    _write_labels(tmp_path / "b.csv", [sid], [1], annotator="bob")
    import_labels(store, tmp_path / "a.csv")
    import_labels(store, tmp_path / "b.csv")
    assert store.flagged()[sid] == ["conflict"]
    assert import_labels(store, tmp_path / "b.csv").already_imported
    report = import_labels(store, tmp_path / "b.csv", review=True)  # same bytes, other options: it applies
    assert not report.already_imported and sid not in store.flagged()
    assert store.current_labels()[sid] == "1"
    assert import_labels(store, tmp_path / "b.csv", review=True).already_imported


def test_a_serve_round_that_does_not_exist_is_refused(tmp_path):
    pytest.importorskip("fastapi")
    from activemine.campaign.web import create_app

    store = proba_campaign(tmp_path, 500)
    mine_round(store, _hw(), budget=10)
    with pytest.raises(CampaignError, match="round 7 does not exist; the campaign has rounds 1..1"):
        create_app(store, token="t" * 12, round_no=7)


def test_budget_and_round_errors_are_input_errors_before_any_work(tmp_path):
    store = proba_campaign(tmp_path, 500)
    with pytest.raises(InputError, match="budget"):
        mine_round(store, _hw(), budget=0)
    with pytest.raises(InputError, match="budget 501"):
        mine_round(store, _hw(), budget=501)
    assert CampaignStore(store.folder).last_round() is None


@pytest.mark.slow
@pytest.mark.integration
def test_a_campaign_on_the_ray_engine_queues_what_the_local_engine_queues(tmp_path):
    ray = pytest.importorskip("ray")
    local, remote = proba_campaign(tmp_path / "local", 4_000), proba_campaign(tmp_path / "ray", 4_000)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for store, engine in ((local, "local"), (remote, "ray")):
            mine_round(store, _hw(), budget=300, engine=engine, chunk_size=1_000)
            first = _batch_sids(store, 1)
            import_labels(store, _write_labels(tmp_path / f"{engine}.csv", first, [1] * len(first)))
            mine_round(store, _hw(), budget=300, engine=engine, chunk_size=1_000)
    finally:
        ray.shutdown()
    assert _batch_sids(local, 1) == _batch_sids(remote, 1)
    assert _batch_sids(local, 2) == _batch_sids(remote, 2) and not set(_batch_sids(remote, 2)) & set(
        _batch_sids(remote, 1)
    )

"""An output never replaces a campaign's store, its data, a pool's source or a command's own input."""

import hashlib
import os
import shutil

import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_files, snapshot
from activemine.campaign import CampaignStore, import_labels, init_campaign, mine_round
from activemine.cli import app
from activemine.data.outputs import check_output, check_suffix
from activemine.errors import InputError
from activemine.selection.strategies import make_strategy

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


def _labeled_campaign(base, *, copy: bool):
    base.mkdir(parents=True)
    L, U, truth = digits_files(base, n_pool=300)
    store = init_campaign(base / "camp", pool=U, labeled=L, copy=copy)
    mine_round(store, make_strategy("lc", model="logreg", random_state=0), budget=30)
    sids = [s for (s,) in store.read("SELECT sid FROM batches ORDER BY rank")][:20]
    (base / "labels.csv").write_text("id,label\n" + "".join(f"{s},{truth[int(s)]}\n" for s in sids))
    import_labels(store, base / "labels.csv", annotator="kim")
    return store


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("outputs")
    return {copy: _labeled_campaign(base / ("copy" if copy else "nocopy"), copy=copy) for copy in (True, False)}


@pytest.fixture
def campaign(built, tmp_path, request):
    """A fresh copy of a campaign with 20 returned labels; ``request.param``: copy the pool (True) or not."""
    copy = getattr(request, "param", True)
    src = built[copy]
    shutil.copytree(src.folder.parent, tmp_path / "c", symlinks=True)
    return CampaignStore(tmp_path / "c" / "camp")


def _fingerprint(store: CampaignStore) -> dict:
    files = {}
    for path in [*store.folder.rglob("*"), *store.pool_files()]:
        if path.is_file():
            files[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def _counts(store: CampaignStore) -> dict:
    return {t: len(rows) for t, rows in snapshot(store).items()}


def _targets(store: CampaignStore, tmp_path):
    """Every way of naming a file the campaign cannot lose: directly, by a relative path, through a symlink."""
    camp = store.folder
    pool = store.pool_files()[0]
    link = tmp_path / "innocent.csv"
    link.symlink_to(camp / "campaign.db")
    linked_dir = tmp_path / "elsewhere"
    linked_dir.symlink_to(camp / "data", target_is_directory=True)
    return {
        "store": camp / "campaign.db",
        "wal": camp / "campaign.db-wal",
        "shm": camp / "campaign.db-shm",
        "pool file": pool,
        "labeled set": camp / "data" / "labeled.parquet",
        "new file in data": camp / "data" / "pool" / "extra.parquet",
        "relative path": os.path.relpath(camp / "campaign.db"),
        "dot-dot path": camp / "data" / ".." / "campaign.db",
        "symlink to the store": link,
        "through a symlinked folder": linked_dir / "labeled.parquet",
    }


COMMANDS = {
    "export csv": ("export", "--format", "csv"),
    "export jsonl": ("export", "--format", "jsonl"),
    "export label-studio": ("export", "--format", "label-studio"),
    "export include-labeled": ("export", "--format", "csv", "--include-labeled"),
    "dataset": ("dataset",),
}
TARGETS = [
    "store",
    "wal",
    "shm",
    "pool file",
    "labeled set",
    "new file in data",
    "relative path",
    "dot-dot path",
    "symlink to the store",
    "through a symlinked folder",
]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("target", TARGETS)
def test_no_campaign_command_writes_over_the_campaigns_own_files(campaign, tmp_path, monkeypatch, command, target):
    monkeypatch.chdir(tmp_path)
    out = _targets(campaign, tmp_path)[target]
    before, files = _counts(campaign), _fingerprint(campaign)
    sub, *opts = COMMANDS[command]
    code, text = invoke("campaign", sub, campaign.folder, *opts, "--out", out)
    assert code == 2, text
    assert "would overwrite" in text and "nothing was written" in text, text
    assert _counts(campaign) == before and before["labels"] > 150
    assert _fingerprint(campaign) == files
    code, text = invoke("campaign", "status", campaign.folder, "--json")
    assert code == 0, text


@pytest.mark.parametrize("campaign", [False], indirect=True)
@pytest.mark.parametrize("command", COMMANDS)
def test_a_no_copy_pools_source_file_is_protected_too(campaign, command):
    source = campaign.pool_files()[0]
    assert campaign.folder not in source.parents  # the user's own file, outside the campaign
    before, files = _counts(campaign), _fingerprint(campaign)
    sub, *opts = COMMANDS[command]
    code, text = invoke("campaign", sub, campaign.folder, *opts, "--out", source)
    assert code == 2 and "a file of the campaign's pool" in text, text
    assert _counts(campaign) == before and _fingerprint(campaign) == files


def test_the_label_studio_config_beside_an_export_is_checked_too(campaign, tmp_path):
    (tmp_path / "round.label-config.xml").symlink_to(campaign.folder / "campaign.db")
    files = _fingerprint(campaign)
    code, text = invoke(
        "campaign", "export", campaign.folder, "--format", "label-studio", "--out", tmp_path / "round.json"
    )
    assert code == 2 and "the labeling config" in text and "the campaign's store" in text, text
    assert not (tmp_path / "round.json").exists()
    assert _fingerprint(campaign) == files


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("csv", "r.json"), ("csv", "r.jsonl"), ("jsonl", "r.csv"), ("label-studio", "r.csv"), ("label-studio", "r")],
)
def test_an_export_suffix_must_match_its_format(campaign, tmp_path, fmt, name):
    code, text = invoke("campaign", "export", campaign.folder, "--format", fmt, "--out", tmp_path / name)
    assert code == 2 and f"the suffix of --format {fmt}" in text, text
    assert not (tmp_path / name).exists()


def test_exports_under_matching_suffixes_still_work(campaign, tmp_path):
    for fmt, name in (("csv", "r.csv"), ("jsonl", "r.ndjson"), ("label-studio", "r.json")):
        code, text = invoke("campaign", "export", campaign.folder, "--format", fmt, "--out", tmp_path / name)
        assert code == 0 and (tmp_path / name).is_file(), text


def test_mine_and_clean_never_write_over_their_inputs_or_a_campaign(campaign, tmp_path):
    (tmp_path / "files").mkdir()
    L, U, _ = digits_files(tmp_path / "files", n_pool=200)
    pool_copy = tmp_path / "pooldir"
    pool_copy.mkdir()
    shutil.copy(U, pool_copy / "part-0.parquet")
    files = _fingerprint(campaign)
    mine = ("mine", "--budget", 5, "--strategy", "random", "--label-col", "y")
    cases = [
        ((*mine, "--pool", U, "--labeled", L, "--out", U), "the pool given by --pool"),
        ((*mine, "--pool", U, "--labeled", L, "--out", L), "the labeled set given by --labeled"),
        ((*mine, "--pool", pool_copy, "--labeled", L, "--out", pool_copy / "part-1.parquet"), "--pool"),
        ((*mine, "--pool", U, "--labeled", L, "--out", campaign.folder / "data" / "labeled.parquet"), "data folder"),
        (("clean", "--labeled", L, "--label-col", "y", "--out", L), "the labeled set given by --labeled"),
        (("clean", "--labeled", L, "--out", campaign.folder / "campaign.db-wal"), "write-ahead log"),
    ]
    for args, what in cases:
        sizes = {p: p.stat().st_size for p in (U, L)}
        code, text = invoke(*args)
        assert code == 2 and "would overwrite" in text and what in text, (args, text)
        assert {p: p.stat().st_size for p in (U, L)} == sizes
    assert _fingerprint(campaign) == files


def test_experiment_output_folder_inside_a_campaigns_data_is_refused(campaign):
    code, text = invoke("experiment", "--out", campaign.folder / "data", "--dataset", "digits", "--budget", 10)
    assert code == 2 and "data folder" in text, text


def test_check_output_allows_ordinary_paths_and_names_the_resolved_target(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_output("out.csv") == (tmp_path / "out.csv").resolve()
    (tmp_path / "in.csv").write_text("x")
    (tmp_path / "alias.csv").symlink_to(tmp_path / "in.csv")
    with pytest.raises(InputError, match=r"'alias.csv' \(that is '.*in.csv'\) would overwrite the input"):
        check_output("alias.csv", protected={"in.csv": "the input"})
    os.link(tmp_path / "in.csv", tmp_path / "hard.csv")  # a hard link is the same file
    with pytest.raises(InputError, match="would overwrite the input"):
        check_output("hard.csv", protected={"in.csv": "the input"})
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(InputError, match=r"does not end in \.csv"):
        check_suffix("x.CSVX", "csv", {"csv": (".csv",)})

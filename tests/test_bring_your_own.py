"""Bring your own outputs: the dirty-data step from given out-of-fold probabilities, campaigns with given
embeddings (pool columns or a file joined by id), and experiments with embedding columns."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.errors import InputError

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, " ".join(text.split())


# -- the dirty-data step from out-of-fold probabilities ------------------------------


@pytest.fixture()
def oof_labeled(tmp_path):
    """600 rows, labels cat/dog; rows 0..19 are labeled cat although their out-of-fold probabilities say dog."""
    rng = np.random.default_rng(0)
    n = 600
    truth = np.where(np.arange(n) % 2 == 0, "cat", "dog")
    truth[:20] = "dog"
    p_dog = np.where(truth == "dog", rng.uniform(0.75, 0.99, n), rng.uniform(0.01, 0.25, n))
    p_dog[:20] = rng.uniform(0.95, 0.99, 20)  # confidently dog
    y = truth.copy()
    y[:20] = "cat"  # wrong labels
    path = tmp_path / "L.parquet"
    pq.write_table(pa.table({"id": np.arange(n), "y": y, "oof_cat": 1 - p_dog, "oof_dog": p_dog}), path)
    return path


def test_clean_from_oof_columns_drops_the_wrong_labels(oof_labeled, tmp_path):
    out = tmp_path / "report.parquet"
    code, text = invoke(
        "clean",
        "--labeled",
        oof_labeled,
        "--out",
        out,
        "--oof-proba-prefix",
        "oof_",
        "--rule",
        "target",
        "--max-dirty",
        "0.0",
        "--max-class-fraction",
        "0.2",
    )
    assert code == 0, text
    assert "no model was trained" in text
    report = pq.read_table(out).to_pydict()
    dropped = {i for i, a in zip(report["id"], report["action"]) if a == "drop"}
    assert dropped == set(range(20))
    assert all(report["suggested_label"][i] == "dog" for i in range(20))


def test_clean_from_oof_columns_by_name_list(oof_labeled, tmp_path):
    out = tmp_path / "report.csv"
    code, text = invoke(
        "clean", "--labeled", oof_labeled, "--out", out, "--oof-proba-cols", "oof_cat,oof_dog", "--policy", "review"
    )
    assert code == 0, text
    assert "0 drop" in text and "review" in text


def test_clean_from_oof_columns_refuses_the_adaptive_check(oof_labeled, tmp_path):
    out = tmp_path / "report.parquet"
    code, text = invoke("clean", "--labeled", oof_labeled, "--out", out, "--oof-proba-prefix", "oof_")
    assert code == 2 and "--rule target" in text
    assert not out.exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--oof-proba-prefix", "p_", "missing ['p_cat', 'p_dog']"), ("--oof-proba-cols", "oof_cat", "1 columns")],
)
def test_clean_oof_column_errors(oof_labeled, tmp_path, flag, value, message):
    out = tmp_path / "report.parquet"
    code, text = invoke("clean", "--labeled", oof_labeled, "--out", out, flag, value, "--rule", "target")
    assert code == 2 and message in text
    assert not out.exists()


# -- campaigns with embeddings ----------------------------------------------------------


def _proba_pool(tmp_path, *, with_embedding: bool):
    """A probability pool of 400 rows; rows 0..29 are the most uncertain and come as 10 groups of 3 copies
    (one embedding per group), every other row far from every other."""
    rng = np.random.default_rng(1)
    n = 400
    p1 = rng.uniform(0.0, 0.3, n)
    p1[:30] = 0.5 - np.arange(30) * 1e-4  # the 30 most uncertain rows
    emb = rng.normal(size=(n, 4)) * 100
    emb[:30] = np.repeat(rng.normal(size=(10, 4)) * 100, 3, axis=0)
    cols = {"id": np.arange(1000, 1000 + n), "p0": 1 - p1, "p1": p1}
    if with_embedding:
        cols.update({f"e{j}": emb[:, j] for j in range(4)})
    pq.write_table(pa.table(cols), tmp_path / "U.parquet")
    pq.write_table(pa.table({"id": np.arange(6), "y": [0, 1] * 3}), tmp_path / "L.parquet")
    return tmp_path / "U.parquet", tmp_path / "L.parquet", emb, cols["id"]


def _round_ids(camp) -> list:
    from activemine.campaign import CampaignStore

    return sorted(int(s) for s in CampaignStore(camp).queued_sids())


def _groups_in(ids) -> list[int]:
    return [(i - 1000) // 3 for i in ids if i < 1030]


def test_campaign_with_embedding_columns_suppresses_near_duplicates(tmp_path):
    pool, labeled, _, _ = _proba_pool(tmp_path, with_embedding=True)
    camp = tmp_path / "camp"
    code, text = invoke(
        "campaign",
        "init",
        camp,
        "--pool",
        pool,
        "--labeled",
        labeled,
        "--proba-cols",
        "p0,p1",
        "--embedding-prefix",
        "e",
        "--quiet",
    )
    assert code == 0, text
    assert "embeddings: 4 columns" in text
    code, text = invoke(
        "campaign", "mine", camp, "--budget", 10, "--strategy", "lc", "--near-duplicates", "1.0", "--quiet"
    )
    assert code == 0, text
    groups = _groups_in(_round_ids(camp))
    assert sorted(groups) == list(range(10))  # one row of each group of copies


def test_campaign_without_embeddings_selects_the_copies(tmp_path):
    pool, labeled, _, _ = _proba_pool(tmp_path, with_embedding=True)
    camp = tmp_path / "camp"
    assert invoke("campaign", "init", camp, "--pool", pool, "--labeled", labeled, "--proba-cols", "p0,p1")[0] == 0
    code, text = invoke("campaign", "mine", camp, "--budget", 10, "--strategy", "lc", "--quiet")
    assert code == 0, text
    assert len(set(_groups_in(_round_ids(camp)))) < 10
    code, text = invoke(
        "campaign", "mine", camp, "--budget", 5, "--strategy", "lc", "--near-duplicates", "1.0", "--quiet"
    )
    assert code == 2 and "embedding" in text


def test_campaign_with_an_embedding_file_joined_by_id(tmp_path):
    pool, labeled, emb, ids = _proba_pool(tmp_path, with_embedding=False)
    order = np.random.default_rng(2).permutation(ids.size)  # the file's rows in another order
    pq.write_table(
        pa.table({"id": ids[order], "vec": pa.FixedSizeListArray.from_arrays(pa.array(emb[order].ravel()), 4)}),
        tmp_path / "emb.parquet",
    )
    camp = tmp_path / "camp"
    code, text = invoke(
        "campaign",
        "init",
        camp,
        "--pool",
        pool,
        "--labeled",
        labeled,
        "--proba-cols",
        "p0,p1",
        "--embeddings",
        tmp_path / "emb.parquet",
        "--quiet",
    )
    assert code == 0, text
    from activemine.campaign import CampaignStore

    meta = CampaignStore(camp).meta
    assert meta["embedding_cols"] == ["emb_0", "emb_1", "emb_2", "emb_3"]
    written = pq.read_table(camp / meta["pool_files"][0])
    assert np.allclose(np.column_stack([written.column(f"emb_{j}") for j in range(4)]), emb)
    code, text = invoke(
        "campaign", "mine", camp, "--budget", 10, "--strategy", "lc", "--near-duplicates", "1.0", "--quiet"
    )
    assert code == 0, text
    assert sorted(_groups_in(_round_ids(camp))) == list(range(10))


def test_campaign_embedding_file_missing_ids_writes_nothing(tmp_path):
    pool, labeled, emb, ids = _proba_pool(tmp_path, with_embedding=False)
    pq.write_table(pa.table({"id": ids[1:], "e0": emb[1:, 0]}), tmp_path / "emb.parquet")
    camp = tmp_path / "camp"
    code, text = invoke(
        "campaign",
        "init",
        camp,
        "--pool",
        pool,
        "--labeled",
        labeled,
        "--proba-cols",
        "p0,p1",
        "--embeddings",
        tmp_path / "emb.parquet",
        "--quiet",
    )
    assert code == 2 and "1 pool ids have no embedding" in text and "1000" in text
    assert not (camp / "campaign.db").exists() and not (camp / "data").exists()


def test_campaign_embedding_columns_with_nan_are_refused(tmp_path):
    pool, labeled, _, _ = _proba_pool(tmp_path, with_embedding=True)
    table = pq.read_table(pool)
    e0 = table.column("e0").to_numpy().copy()
    e0[7] = np.nan
    pq.write_table(table.set_column(table.schema.get_field_index("e0"), "e0", pa.array(e0)), pool)
    camp = tmp_path / "camp"
    code, text = invoke(
        "campaign",
        "init",
        camp,
        "--pool",
        pool,
        "--labeled",
        labeled,
        "--proba-cols",
        "p0,p1",
        "--embedding-cols",
        "e0,e1,e2,e3",
        "--quiet",
    )
    assert code == 2 and "row" in text
    assert not (camp / "campaign.db").exists()


def test_image_campaign_with_an_embedding_file(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    for c in (0, 1):
        for i in range(10):
            (tmp_path / "L" / f"c{c}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), 60 + 120 * c, np.uint8)).save(tmp_path / "L" / f"c{c}" / f"{i}.png")
    names = []
    for i in range(40):
        (tmp_path / "U").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8)).astype(np.uint8)).save(tmp_path / "U" / f"u{i:02d}.png")
        names.append(f"u{i:02d}.png")
    pq.write_table(pa.table({"id": names, "x": rng.normal(size=40), "y": rng.normal(size=40)}), tmp_path / "e.parquet")
    camp = tmp_path / "camp"
    code, text = invoke(
        "campaign",
        "init",
        camp,
        "--pool",
        tmp_path / "U",
        "--labeled",
        tmp_path / "L",
        "--embeddings",
        tmp_path / "e.parquet",
        "--quiet",
    )
    assert code == 0, text
    code, text = invoke(
        "campaign",
        "mine",
        camp,
        "--budget",
        5,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--near-duplicates",
        "0.01",
        "--quiet",
    )
    assert code == 0, text


# -- experiments with the file's own embeddings -------------------------------------------


@pytest.fixture()
def file_with_embeddings(tmp_path):
    rng = np.random.default_rng(4)
    n = 400
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=n) > 0, "pos", "neg")
    emb = np.repeat(rng.normal(size=(n // 4, 2)) * 50, 4, axis=0)  # groups of 4 rows share one embedding
    cols = {"id": np.arange(n), "f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2], "label": y}
    cols.update({"emb_0": emb[:, 0], "emb_1": emb[:, 1]})
    pq.write_table(pa.table(cols), tmp_path / "data.parquet")
    return tmp_path / "data.parquet", emb


def test_load_task_keeps_the_file_embeddings_apart_from_the_features(file_with_embeddings):
    from activemine.experiments.tasks import load_task

    path, emb = file_with_embeddings
    task = load_task(str(path), "binary:pos", embedding_prefix="emb_")
    assert task.X_train.shape[1] == 3  # the embedding columns are not features
    assert task.embedding_train.shape == (task.y_train.size, 2)
    nearest = np.abs(task.embedding_train[:, None, :] - emb[None]).max(axis=2).min(axis=1)
    assert (nearest < 1e-3).all()  # every train row carries one of the file's embeddings
    with pytest.raises(InputError, match="emb_x"):
        load_task(str(path), "binary:pos", embedding_cols=["emb_x"])


def test_experiment_with_the_file_embeddings(file_with_embeddings, tmp_path):
    path, _ = file_with_embeddings
    out = tmp_path / "exp"
    code, text = invoke(
        "experiment",
        "--dataset",
        path,
        "--task",
        "binary:pos",
        "--labeled-size",
        60,
        "--budget",
        20,
        "--strategies",
        "lc,lc+near-duplicates",
        "--near-duplicates",
        "1.0",
        "--model",
        "logreg",
        "--embedding-prefix",
        "emb_",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0, text
    runs = json.loads((out / "results.json").read_text())["runs"]
    diverse = [r for r in runs if r["strategy"] == "lc+near-duplicates"]
    assert diverse and diverse[0]["diversity"]["suppressed"] > 0  # copies in embedding space were skipped


def test_experiment_embeddings_need_a_file(tmp_path):
    code, text = invoke("experiment", "--dataset", "digits", "--embedding-prefix", "e", "--out", tmp_path / "x")
    assert code == 2 and "apply to a .parquet/.csv file" in text

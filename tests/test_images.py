"""Images as data: listing, decoding, checking, image sources, and the CLI on folders of images."""

import io
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

import activemine.data.images as images_module
from activemine.cli import app
from activemine.data.images import (
    ImageSpec,
    check_images,
    decode_images,
    is_image_folder,
    list_images,
    list_labeled_images,
    parse_image_size,
    read_labeled_folder,
)
from activemine.data.sources import ImageFolderSource, PoolColumns, open_pool
from activemine.errors import ImageError, InputError

runner = CliRunner()
N_POOL = 300
N_PER_CLASS = 60


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    text = result.output + (getattr(result, "stderr", "") or "")
    return result.exit_code, " ".join(text.split())


def save_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
    return path


def class_image(rng, c: int) -> np.ndarray:
    """An 8x8 grayscale image whose brightness tells its class."""
    return np.clip(rng.normal(70 + 110 * c, 25, size=(8, 8)), 0, 255)


@pytest.fixture()
def folders(tmp_path):
    """A labeled folder (two classes, nested, a unicode name) and a pool folder of 300 PNGs in three subfolders."""
    rng = np.random.default_rng(0)
    labeled = tmp_path / "L"
    for c, name in enumerate(["dark", "bright"]):
        for i in range(N_PER_CLASS):
            sub = labeled / name / ("deep" if i % 4 == 0 else "")
            save_png(sub / f"{name}_{i:03d}.png", class_image(rng, c))
    save_png(labeled / "bright" / "été ☀.png", class_image(rng, 1))
    pool = tmp_path / "U"
    for i in range(N_POOL):
        save_png(pool / f"part{i % 3}" / f"img_{i:04d}.png", class_image(rng, i % 2))
    save_png(pool / "ünïcode" / "画像.png", class_image(rng, 1))
    (pool / "notes.txt").write_text("not an image")
    (pool / ".hidden.png").write_bytes(b"junk")
    return labeled, pool


# -- listing ----------------------------------------------------------------------


def test_listing_is_sorted_posix_relative_and_skips_other_files(folders):
    _, pool = folders
    paths = list_images(pool).to_pylist()
    assert len(paths) == N_POOL + 1
    # each folder's files in name order, then its subfolders in name order
    assert paths[:3] == ["part0/img_0000.png", "part0/img_0003.png", "part0/img_0006.png"]
    assert paths[-1] == "ünïcode/画像.png"
    assert paths == sorted(paths)  # here every file sits in a subfolder, so that is sorted order
    assert "ünïcode/画像.png" in paths
    assert all("\\" not in p and not p.startswith("/") for p in paths)
    assert not any(p.endswith(".txt") or p.startswith(".") for p in paths)
    assert is_image_folder(pool)


def test_labeled_listing_nested_and_unicode(folders):
    labeled, _ = folders
    paths, y, classes = list_labeled_images(labeled)
    assert classes == ["bright", "dark"]
    paths = paths.to_pylist()
    assert "bright/été ☀.png" in paths and "dark/deep/dark_000.png" in paths
    assert np.bincount(y).tolist() == [N_PER_CLASS + 1, N_PER_CLASS]
    assert all(p.split("/")[0] == classes[c] for p, c in zip(paths, y))


def test_empty_class_folder_is_an_error_naming_it(folders):
    labeled, _ = folders
    (labeled / "empty").mkdir()
    with pytest.raises(InputError, match="class folder 'empty'"):
        list_labeled_images(labeled)


def test_image_outside_a_class_folder_is_an_error(folders):
    labeled, _ = folders
    save_png(labeled / "loose.png", np.zeros((8, 8)))
    with pytest.raises(InputError, match="loose.png"):
        list_labeled_images(labeled)


def test_parquet_folder_is_not_an_image_folder(tmp_path):
    pq.write_table(pa.table({"id": [1]}), tmp_path / "a.parquet")
    assert not is_image_folder(tmp_path)


# -- decoding ---------------------------------------------------------------------


def test_decode_scales_to_unit_range_channel_first(tmp_path):
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0] = 255  # red everywhere
    rgb[1, 2, 2] = 51  # one blue pixel, last row and column
    save_png(tmp_path / "a.png", rgb)
    X = decode_images(["a.png"], ImageSpec((2, 3), "RGB", str(tmp_path)))
    assert X.shape == (1, 3 * 2 * 3) and X.dtype == np.float32
    planes = X[0].reshape(3, 2, 3)  # (C, H, W)
    assert np.allclose(planes[0], 1.0)
    assert planes[2, 1, 2] == pytest.approx(0.2)
    assert planes[2].sum() == pytest.approx(0.2)


def test_decode_resizes_and_converts_mode(tmp_path):
    save_png(tmp_path / "big.png", np.full((16, 20, 3), 128))
    X = decode_images([str(tmp_path / "big.png")], ImageSpec((4, 5), "L"))
    assert X.shape == (1, 20)
    assert np.allclose(X, 128 / 255, atol=1 / 255)


def test_decode_bytes_and_threads_agree(tmp_path):
    rng = np.random.default_rng(1)
    blobs = []
    for _ in range(40):
        buf = io.BytesIO()
        Image.fromarray(class_image(rng, 1).astype(np.uint8)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    one = decode_images(blobs, ImageSpec((8, 8), "L", None, 1))
    four = decode_images(pa.array(blobs, pa.binary()), ImageSpec((8, 8), "L", None, 4))
    assert np.array_equal(one, four)


def test_spec_resolved_from_first_image(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((6, 7)))
    spec = ImageSpec(root=str(tmp_path)).resolved("a.png", where="test")
    assert spec.shape == (1, 6, 7)
    save_png(tmp_path / "c.png", np.zeros((6, 7, 3)))
    assert ImageSpec(root=str(tmp_path)).resolved("c.png", where="test").shape == (3, 6, 7)


@pytest.mark.parametrize("text", ["28", "0x5", "ax4", "3x4x5", ""])
def test_bad_image_size(text):
    with pytest.raises(InputError, match="HEIGHTxWIDTH"):
        parse_image_size(text)


def test_bad_image_mode():
    with pytest.raises(InputError, match="image mode"):
        ImageSpec(mode="CMYK")


# -- checking ---------------------------------------------------------------------


def _corrupt(pool):
    (pool / "part0" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    good = (pool / "part1" / "img_0001.png").read_bytes()
    (pool / "part1" / "truncated.png").write_bytes(good[: len(good) - 16])


def test_check_names_corrupt_and_truncated_files(folders):
    _, pool = folders
    _corrupt(pool)
    paths = list_images(pool)
    with pytest.raises(ImageError, match="corrupt.png"):
        check_images(paths, root=str(pool))
    bad = check_images(paths, root=str(pool), skip_bad=True, n_jobs=2)
    assert len(bad) == 2
    named = " ".join(bad.reasons)
    assert "corrupt.png" in named and "truncated.png" in named
    assert sorted(paths.take(pa.array(bad.rows)).to_pylist()) == ["part0/corrupt.png", "part1/truncated.png"]


def test_check_names_missing_file(tmp_path):
    with pytest.raises(ImageError, match="not found.*gone.png"):
        check_images(["gone.png"], root=str(tmp_path))


# -- sources ----------------------------------------------------------------------


def test_folder_source_streams_bounded_chunks(folders, monkeypatch):
    _, pool = folders
    monkeypatch.setattr(images_module, "IMAGE_CHUNK_BYTES", 4 * 64 * 50)  # 50 images of 8x8 per chunk
    source = open_pool(pool)
    assert isinstance(source, ImageFolderSource)
    assert source.image_shape == (1, 8, 8) and source.num_rows == N_POOL + 1
    chunks = list(source.chunks(10_000))
    assert max(len(c) for c in chunks) == 50
    ids = np.concatenate([c.ids for c in chunks])
    assert ids.tolist() == list_images(pool).to_pylist()
    X = np.concatenate([c.X for c in chunks])
    assert X.shape == (N_POOL + 1, 64) and X.min() >= 0 and X.max() <= 1


def test_folder_source_skips_bad_images(folders):
    _, pool = folders
    _corrupt(pool)
    source = open_pool(pool)
    assert source.num_rows == N_POOL + 3
    bad = source.check_images(skip_bad=True)
    assert len(bad) == 2 and source.num_rows == N_POOL + 1
    ids = np.concatenate([c.ids for c in source.chunks(64)])
    assert "part0/corrupt.png" not in ids and ids.size == N_POOL + 1


@pytest.mark.parametrize("kind", ["path", "bytes"])
def test_parquet_image_column(folders, tmp_path, kind):
    _, pool = folders
    rel = list_images(pool).to_pylist()[:50]
    values = [f"U/{p}" for p in rel] if kind == "path" else [(pool / p).read_bytes() for p in rel]
    pq.write_table(pa.table({"id": np.arange(50), "image": values}), tmp_path / "pool.parquet")
    source = open_pool(tmp_path / "pool.parquet", PoolColumns(image="image", image_spec=ImageSpec()))
    X = np.concatenate([c.X for c in source.chunks(16)])
    expected = decode_images(rel, ImageSpec((8, 8), "L", str(pool)))
    assert np.array_equal(X, expected)


def test_parquet_image_column_skips_bad_rows(folders, tmp_path):
    _, pool = folders
    rel = list_images(pool).to_pylist()[:20]
    values = [f"U/{p}" for p in rel]
    values[3] = "U/missing.png"
    pq.write_table(pa.table({"id": np.arange(20), "image": values}), tmp_path / "pool.parquet")
    source = open_pool(tmp_path / "pool.parquet", PoolColumns(image="image", image_spec=ImageSpec((8, 8), "L")))
    with pytest.raises(ImageError, match="missing.png"):
        source.check_images()
    bad = source.check_images(skip_bad=True)
    assert len(bad) == 1 and source.num_rows == 19
    assert 3 not in np.concatenate([c.ids for c in source.chunks(7)])


def test_read_labeled_folder(folders):
    labeled, _ = folders
    L, spec, bad = read_labeled_folder(labeled, ImageSpec(n_jobs=2))
    assert len(L) == 2 * N_PER_CLASS + 1 and not len(bad)
    assert L.image_shape == spec.shape == (1, 8, 8)
    assert set(L.y) == {"dark", "bright"}
    # the classes are told apart by brightness: the decoded pixels carry it
    assert L.X[L.y == "bright"].mean() > L.X[L.y == "dark"].mean() + 0.3


# -- command line -----------------------------------------------------------------


def test_mine_from_image_folders(folders, tmp_path):
    labeled, pool = folders
    out = tmp_path / "batch.parquet"
    code, text = invoke(
        "mine",
        "--labeled",
        labeled,
        "--pool",
        pool,
        "--budget",
        20,
        "--out",
        out,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--quiet",
        "--n-jobs",
        2,
    )
    assert code == 0, text
    batch = pq.read_table(out).to_pydict()
    assert len(batch["id"]) == 20
    listed = set(list_images(pool).to_pylist())
    assert set(batch["id"]) <= listed
    assert set(batch["predicted_class"]) <= {"dark", "bright"}


def test_mine_same_batch_for_any_chunk_size(folders, tmp_path):
    labeled, pool = folders
    batches = []
    for chunk in (7, 1000):
        out = tmp_path / f"b{chunk}.parquet"
        code, text = invoke(
            "mine",
            "--labeled",
            labeled,
            "--pool",
            pool,
            "--budget",
            15,
            "--out",
            out,
            "--strategy",
            "lc",
            "--model",
            "logreg",
            "--chunk-size",
            chunk,
            "--quiet",
        )
        assert code == 0, text
        batches.append(pq.read_table(out).column("id").to_pylist())
    assert batches[0] == batches[1]


def test_mine_corrupt_pool_image_fails_before_fitting_and_writes_nothing(folders, tmp_path):
    labeled, pool = folders
    _corrupt(pool)
    out = tmp_path / "batch.parquet"
    code, text = invoke(
        "mine", "--labeled", labeled, "--pool", pool, "--budget", 5, "--out", out, "--model", "logreg", "--quiet"
    )
    assert code == 2
    assert "corrupt.png" in text and "fitting" not in text
    assert not out.exists()


def test_mine_skip_bad_images_counts_them(folders, tmp_path):
    labeled, pool = folders
    _corrupt(pool)
    save_png(labeled / "dark" / "x.png", np.zeros((8, 8)))
    (labeled / "dark" / "x.png").write_bytes(b"garbage")
    out = tmp_path / "batch.parquet"
    code, text = invoke(
        "mine",
        "--labeled",
        labeled,
        "--pool",
        pool,
        "--budget",
        5,
        "--out",
        out,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--skip-bad-images",
        "--quiet",
    )
    assert code == 0, text
    assert "skipped 1 unreadable labeled images" in text and "dark/x.png" in text
    assert "skipped 2 unreadable pool images" in text
    assert "corrupt.png" not in pq.read_table(out).column("id").to_pylist()


def test_mine_labeled_folder_needs_an_image_pool(folders, tmp_path):
    labeled, _ = folders
    pq.write_table(pa.table({"id": [1, 2], "f0": [0.1, 0.2]}), tmp_path / "U.parquet")
    code, text = invoke(
        "mine",
        "--labeled",
        labeled,
        "--pool",
        tmp_path / "U.parquet",
        "--budget",
        1,
        "--out",
        tmp_path / "b.parquet",
        "--quiet",
    )
    assert code == 2 and "--image-col" in text


def test_mine_bad_image_size_changes_nothing(folders, tmp_path):
    labeled, pool = folders
    code, text = invoke(
        "mine",
        "--labeled",
        labeled,
        "--pool",
        pool,
        "--budget",
        1,
        "--out",
        tmp_path / "b.parquet",
        "--image-size",
        "8by8",
    )
    assert code == 2 and "8by8" in text
    assert not (tmp_path / "b.parquet").exists()


def test_mine_resizes_to_image_size(folders, tmp_path):
    labeled, pool = folders
    save_png(pool / "part0" / "larger.png", np.full((12, 12), 200))
    out = tmp_path / "batch.parquet"
    code, text = invoke(
        "mine",
        "--labeled",
        labeled,
        "--pool",
        pool,
        "--budget",
        5,
        "--out",
        out,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--image-size",
        "4x4",
        "--image-mode",
        "RGB",
        "--quiet",
    )
    assert code == 0, text


def test_campaign_round_from_image_folders(folders, tmp_path):
    labeled, pool = folders
    camp = tmp_path / "camp"
    code, text = invoke("campaign", "init", camp, "--labeled", labeled, "--pool", pool, "--quiet")
    assert code == 0, text
    assert "images 8x8 L" in text
    code, text = invoke("campaign", "mine", camp, "--budget", 10, "--strategy", "lc", "--model", "logreg", "--quiet")
    assert code == 0, text
    from activemine.campaign import CampaignStore

    store = CampaignStore(camp)
    queued = store.queued_sids()
    assert len(queued) == 10 and queued <= set(list_images(pool).to_pylist())


def test_campaign_init_corrupt_image_writes_nothing(folders, tmp_path):
    labeled, pool = folders
    _corrupt(pool)
    camp = tmp_path / "camp"
    code, text = invoke("campaign", "init", camp, "--labeled", labeled, "--pool", pool, "--quiet")
    assert code == 2 and "corrupt.png" in text
    assert not (camp / "campaign.db").exists() and not (camp / "data").exists()
    code, text = invoke("campaign", "init", camp, "--labeled", labeled, "--pool", pool, "--skip-bad-images", "--quiet")
    assert code == 0 and "skipped 2 unreadable pool images" in text


def test_experiment_on_an_image_folder(folders, tmp_path):
    labeled, _ = folders
    code, text = invoke(
        "experiment",
        "--dataset",
        labeled,
        "--task",
        "binary:bright",
        "--labeled-size",
        30,
        "--budget",
        10,
        "--strategies",
        "random,lc",
        "--model",
        "logreg",
        "--out",
        tmp_path / "exp",
        "--quiet",
    )
    assert code == 0, text
    assert (tmp_path / "exp" / "results.json").exists()


def test_load_task_keeps_the_image_shape(folders):
    from activemine.experiments.runner import load_task

    labeled, _ = folders
    task = load_task(str(labeled), "multiclass", images={"image_size": "4x4", "image_mode": "RGB"})
    assert task.image_shape == (3, 4, 4) and task.X_train.shape[1] == 48
    assert task.X_train.shape[0] + task.X_test.shape[0] == 2 * N_PER_CLASS + 1


def test_import_activemine_does_not_import_pillow():
    code = "import sys, activemine, activemine.cli, activemine.data.sources; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_mine_image_folder_with_near_duplicates(folders, tmp_path):
    labeled, pool = folders
    for i in range(5):  # five copies of one image: string ids, rows let go by the candidate buffers
        save_png(pool / "copies" / f"copy_{i}.png", np.full((8, 8), 128))
    out = tmp_path / "batch.parquet"
    code, text = invoke(
        "mine",
        "--labeled",
        labeled,
        "--pool",
        pool,
        "--budget",
        40,
        "--out",
        out,
        "--strategy",
        "lc",
        "--model",
        "logreg",
        "--near-duplicates",
        "0.05",
        "--candidate-factor",
        "1",
        "--chunk-size",
        50,
        "--quiet",
    )
    assert code == 0, text
    chosen = pq.read_table(out).column("id").to_pylist()
    assert len(chosen) == 40 and sum(c.startswith("copies/") for c in chosen) <= 1


def test_mine_joins_embeddings_to_an_image_folder_by_relative_path(folders, tmp_path):
    labeled, pool = folders
    paths = list_images(pool).to_pylist()
    pair = np.arange(len(paths)) // 2  # images listed side by side share one embedding: near-duplicates
    emb = np.stack([10.0 * pair, np.zeros(len(paths))], axis=1).astype(np.float32)
    emb_file = tmp_path / "emb.parquet"
    pq.write_table(pa.table({"id": paths[::-1], "e0": emb[::-1, 0], "e1": emb[::-1, 1]}), emb_file)  # by id
    args = ["mine", "--labeled", labeled, "--pool", pool, "--budget", 40, "--strategy", "lc", "--model", "logreg"]
    out = tmp_path / "batch.parquet"
    code, text = invoke(*args, "--out", out, "--near-duplicates", "0.5", "--embeddings", emb_file, "--n-jobs", 1)
    assert code == 0, text
    chosen = [paths.index(i) for i in pq.read_table(out).column("id").to_pylist()]
    assert len(chosen) == 40 and np.unique(pair[chosen]).size == 40  # never both images of a pair
    pq.write_table(pa.table({"id": paths[1:], "e0": emb[1:, 0], "e1": emb[1:, 1]}), emb_file)
    out.unlink()
    code, text = invoke(*args, "--out", out, "--near-duplicates", "0.5", "--embeddings", emb_file)
    assert code == 2 and "1 pool ids have no embedding in" in " ".join(text.split()) and not out.exists()

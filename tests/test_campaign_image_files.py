"""The labeling page of an image campaign: the sample's file is served, from inside the pool folder only."""

import os

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from activemine.campaign.imagefiles import pool_image
from activemine.cli import app
from activemine.errors import InputError

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient

from activemine.campaign import CampaignStore
from activemine.campaign.web import create_app

TOKEN = "test-token-1234"


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path, format="PNG")


@pytest.fixture()
def image_campaign(tmp_path):
    for c in (0, 1):
        for i in range(12):
            _png(tmp_path / "L" / f"class{c}" / f"{i}.png", 40 + 150 * c + i)
    for i in range(30):
        _png(tmp_path / "U" / f"u{i:02d}.png", 7 * i)
    # a JPEG named .png: the content type comes from the file, not its name
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "U" / "u99.png", format="JPEG")
    camp = tmp_path / "camp"
    runner = CliRunner()
    init = ["campaign", "init", str(camp), "--labeled", str(tmp_path / "L"), "--pool", str(tmp_path / "U"), "--quiet"]
    assert runner.invoke(app, init).exit_code == 0
    mine = ["campaign", "mine", str(camp), "--budget", "31", "--strategy", "lc", "--model", "logreg", "--quiet"]
    assert runner.invoke(app, mine).exit_code == 0
    return CampaignStore(camp), tmp_path


def test_page_serves_the_sample_file_with_its_content_type(image_campaign):
    store, root = image_campaign
    c = TestClient(create_app(store, token=TOKEN))
    headers = {"X-Activemine-Token": TOKEN}
    seen = {}
    state = c.post("/api/next", json={"annotator": "ann"}, headers=headers).json()
    while state["sample"] is not None:
        sample = state["sample"]
        assert sample["kind"] == "image_file" and sample["image_url"]
        r = c.get(sample["image_url"], headers=headers)
        assert r.status_code == 200
        seen[sample["id"]] = r
        state = c.post("/api/skip", json={"annotator": "ann", "id": sample["id"]}, headers=headers).json()
        if len(seen) == 31:  # every sample of the round seen (skipped ones may come round again)
            break
    assert "u05.png" in seen
    assert seen["u05.png"].content == (root / "U" / "u05.png").read_bytes()
    assert seen["u05.png"].headers["content-type"] == "image/png"
    assert seen["u99.png"].headers["content-type"] == "image/jpeg"


def test_unknown_ids_and_paths_are_not_served(image_campaign):
    store, root = image_campaign
    (root / "secret.png").write_bytes((root / "U" / "u01.png").read_bytes())
    c = TestClient(create_app(store, token=TOKEN))
    headers = {"X-Activemine-Token": TOKEN}
    for sid in ["../secret.png", str(root / "secret.png"), "..%2Fsecret.png", "class0/0.png", "nothere.png"]:
        r = c.get("/api/image", params={"id": sid}, headers=headers)
        assert r.status_code == 404, sid
        assert r.content[:4] != b"\x89PNG"


def test_pool_image_refuses_paths_leaving_the_folder(tmp_path):
    _png(tmp_path / "pool" / "a.png", 10)
    _png(tmp_path / "outside.png", 20)
    os.symlink(tmp_path / "outside.png", tmp_path / "pool" / "link.png")
    body, media = pool_image("a.png", tmp_path / "pool")
    assert media == "image/png" and body == (tmp_path / "pool" / "a.png").read_bytes()
    for value in ["../outside.png", str(tmp_path / "outside.png"), "link.png", "sub/../../outside.png"]:
        with pytest.raises(InputError, match="leaves the pool folder"):
            pool_image(value, tmp_path / "pool")
    with pytest.raises(InputError, match="missing"):
        pool_image("gone.png", tmp_path / "pool")
    (tmp_path / "pool" / "text.png").write_text("not an image")
    with pytest.raises(InputError, match="cannot be read"):
        pool_image("text.png", tmp_path / "pool")


def test_pool_image_serves_bytes(tmp_path):
    _png(tmp_path / "a.png", 10)
    body, media = pool_image((tmp_path / "a.png").read_bytes(), tmp_path)
    assert media == "image/png" and body[:4] == b"\x89PNG"

"""The labeling page: token, no file serving, two concurrent annotators, and a real browser."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from _campaign_helpers import digits_campaign

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from activemine.campaign.web import create_app  # noqa: E402

TOKEN = "test-token-1234"
CHROMIUM = os.environ.get("ACTIVEMINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture()
def client(tmp_path):
    store, _ = digits_campaign(tmp_path, budget=5)
    return TestClient(create_app(store, token=TOKEN)), store


@pytest.mark.integration
@pytest.mark.parametrize("path", ["/", "/api/image?id=10151"])
def test_every_route_needs_the_token(client, path):
    c, _ = client
    assert c.get(path).status_code == 401
    assert c.get(path, headers={"X-Activemine-Token": "wrong-token-0000"}).status_code == 401
    assert c.post("/api/next", json={"annotator": "a"}).status_code == 401
    assert c.get("/docs").status_code in (401, 404) and c.get("/openapi.json").status_code in (401, 404)


@pytest.mark.integration
def test_no_file_outside_the_campaign_is_ever_served(client, tmp_path):
    c, store = client
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    headers = {"X-Activemine-Token": TOKEN}
    paths = [
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/api/image?id=../../../etc/passwd",
        f"/api/image?id={secret}",
        "/static/..%2f..%2fsecret.txt",
        "/data/pool.parquet",
        "/campaign.db",
        "/api/image?id=..%2Fcampaign.db",
    ]
    for path in paths:
        r = c.get(path, headers=headers)
        assert r.status_code == 404, path
        assert b"root:" not in r.content and b"top secret" not in r.content and b"SQLite" not in r.content


@pytest.mark.integration
def test_page_flow_with_the_token_cookie(client):
    c, store = client
    page = c.get("/?token=" + TOKEN)
    assert page.status_code == 200 and "activemine labeling" in page.text
    first = c.post("/api/next", json={"annotator": "ann"}).json()  # the cookie set by the page is enough now
    assert first["remaining"] == 5 and first["sample"]["kind"] == "image"
    png = c.get(first["sample"]["image_url"])
    assert png.headers["content-type"] == "image/png" and png.content[:4] == b"\x89PNG"
    after = c.post("/api/label", json={"annotator": "ann", "id": first["sample"]["id"], "label": "4"}).json()
    assert after["remaining"] == 4 and after["sample"]["id"] != first["sample"]["id"]
    assert (
        c.post("/api/label", json={"annotator": "ann", "id": first["sample"]["id"], "label": "cat"}).status_code == 400
    )
    bob = c.post("/api/next", json={"annotator": "bob"}).json()["sample"]["id"]
    assert c.post("/api/label", json={"annotator": "ann", "id": bob, "label": "1"}).status_code == 409
    undone = c.post("/api/undo", json={"annotator": "ann"}).json()
    assert undone["sample"]["id"] == first["sample"]["id"] and undone["remaining"] == 5


class LiveServer:
    """uvicorn in a thread on 127.0.0.1 and a free port."""

    def __init__(self, app):
        import uvicorn

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


class ServedCampaign:
    """``activemine campaign serve`` in its own process, so the clients' threads do not share its GIL."""

    def __init__(self, folder):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.args = [
            sys.executable,
            "-m",
            "activemine",
            "campaign",
            "serve",
            str(folder),
            "--port",
            str(port),
            "--token",
            TOKEN,
        ]

    def __enter__(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(self.url)
                return self
            except httpx.ConnectError:
                assert self.proc.poll() is None, self.proc.stderr.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(10)


@pytest.mark.integration
@pytest.mark.slow
def test_two_concurrent_annotators_submit_1000_labels_and_none_is_lost_or_doubled(tmp_path):
    store, truth = digits_campaign(tmp_path, budget=1000, strategy="random")
    submitted = {"ann": [], "bob": []}
    failures = []

    def annotate(name):
        with httpx.Client(base_url=server.url, headers={"X-Activemine-Token": TOKEN}, timeout=60) as http:
            sample = http.post("/api/next", json={"annotator": name}).json()["sample"]
            while sample is not None:
                r = http.post(
                    "/api/label", json={"annotator": name, "id": sample["id"], "label": str(truth[int(sample["id"])])}
                )
                if r.status_code != 200:
                    failures.append((name, sample["id"], r.status_code, r.text))
                    return
                submitted[name].append(sample["id"])
                sample = r.json()["sample"]

    with ServedCampaign(store.folder) as server:
        workers = [threading.Thread(target=annotate, args=(n,)) for n in submitted]
        for w in workers:
            w.start()
        for w in workers:
            w.join(300)
    assert not failures
    both = submitted["ann"] + submitted["bob"]
    assert len(both) == 1000 and len(set(both)) == 1000
    assert min(len(v) for v in submitted.values()) > 100  # both really worked at the same time
    rows = store.read("SELECT sid, label, annotator FROM labels WHERE source = 'web'")
    assert len(rows) == 1000 and len({r[0] for r in rows}) == 1000
    assert {(r[0], r[2]) for r in rows} == {(s, n) for n, ids in submitted.items() for s in ids}
    assert all(r[1] == str(truth[int(r[0])]) for r in rows)
    assert store.read("SELECT COUNT(*) FROM assignments") == [(0,)]


def _chromium_or_skip():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package (make test does when apt is usable)")
    return pytest.importorskip("playwright.sync_api", reason="the python package playwright is in the test extra")


@pytest.mark.integration
@pytest.mark.slow
def test_labeling_in_headless_chromium_shows_the_image_and_records_keys(tmp_path):
    sync_api = _chromium_or_skip()
    store, truth = digits_campaign(tmp_path, budget=5)
    with LiveServer(create_app(store, token=TOKEN)) as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=CHROMIUM_FLAGS
        )
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/?token={TOKEN}")
            page.fill("#annotator", "eve")
            page.click("#start")
            image = page.locator("#sample-image")
            image.wait_for(state="visible")
            _wait_until(
                page,
                "document.getElementById('sample-image').complete && document.getElementById('sample-image').naturalWidth > 0",
            )
            assert page.evaluate("document.getElementById('sample-image').naturalWidth") == 8
            shot = tmp_path / "sample.png"
            image.screenshot(path=str(shot))
            _assert_rendered_digit(shot)
            first = page.get_attribute("#sample", "data-id")
            page.keyboard.press(str(truth[int(first)] + 1)[-1])  # key of the digit's class (class 9 is key 0)
            _wait_until(page, f"document.getElementById('sample').dataset.id !== '{first}'")
            assert store.read("SELECT sid, label, annotator FROM labels WHERE source = 'web'") == [
                (first, str(truth[int(first)]), "eve")
            ]
            second = page.get_attribute("#sample", "data-id")
            page.keyboard.press("s")
            _wait_until(page, f"document.getElementById('sample').dataset.id !== '{second}'")
            page.keyboard.press("u")
            _wait_until(page, f"document.getElementById('sample').dataset.id === '{first}'")
            assert store.read("SELECT COUNT(*) FROM labels WHERE source = 'web' AND retracted_at IS NULL") == [(0,)]
            assert store.read("SELECT sid, annotator FROM skips") == [(second, "eve")]
        finally:
            browser.close()


@pytest.mark.integration
@pytest.mark.slow
def test_the_page_shows_a_busy_store_and_works_again_when_it_is_free(tmp_path):
    import sqlite3

    sync_api = _chromium_or_skip()
    store, truth = digits_campaign(tmp_path, budget=5)
    with LiveServer(create_app(store, token=TOKEN, busy_timeout=0.3)) as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=CHROMIUM_FLAGS
        )
        writer = sqlite3.connect(store.db_path, isolation_level=None)
        try:
            page = browser.new_page()
            page.goto(f"{server.url}/?token={TOKEN}")
            page.fill("#annotator", "eve")
            writer.execute("BEGIN IMMEDIATE")  # another process writing for a long time
            page.click("#start")
            _wait_until(page, "document.getElementById('message').textContent.length > 0")
            assert page.text_content("#message") == (
                "The campaign is busy with another task (saving a round or an import); nothing was lost. "
                "Try again in a few seconds."
            )
            writer.execute("ROLLBACK")
            page.click("#undo")  # any action asks again; nothing to undo, so it fetches the next sample
            _wait_until(page, "document.getElementById('sample').dataset.id !== undefined")
            assert page.text_content("#message") == ""
        finally:
            writer.close()
            browser.close()


def _wait_until(page, expression: str, *, timeout: float = 15.0) -> None:
    """Poll ``expression`` from Python: the page's CSP forbids eval, which Playwright's
    ``wait_for_function`` uses for polling (Runtime.evaluate from the test is not page script)."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        time.sleep(0.05)


def _assert_rendered_digit(path):
    """The screenshot of the image element shows a digit: many gray levels, dark and bright areas."""
    import matplotlib.image as mpimg
    import numpy as np

    pixels = mpimg.imread(path)[..., :3].mean(axis=2)  # (h, w) in [0, 1]
    assert pixels.shape[0] >= 200 and pixels.shape[1] >= 200  # shown at 280 px, not as a broken-image icon
    assert pixels.min() < 0.1 and pixels.max() > 0.6
    assert np.unique(np.round(pixels, 2)).size > 5


# -- the guard in front of the app --------------------------------
def _asgi_post(app, headers: dict, body_size: int):
    """POST ``body_size`` bytes to ``/api/next`` through the raw ASGI interface; return (status, headers, bytes read)."""
    import asyncio

    read = 0
    chunk = b"x" * 65536
    sent = {"n": 0}
    replies = []

    async def receive():
        nonlocal read
        if sent["n"] * len(chunk) >= body_size:
            return {"type": "http.disconnect"}
        sent["n"] += 1
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": sent["n"] * len(chunk) < body_size}

    async def send(message):
        replies.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/next",
        "raw_path": b"/api/next",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    start = next(m for m in replies if m["type"] == "http.response.start")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, read


@pytest.mark.integration
def test_the_token_is_checked_before_any_byte_of_the_body_is_read(tmp_path):
    store, _ = digits_campaign(tmp_path, budget=5)
    app = create_app(store, token=TOKEN)
    status, _, read = _asgi_post(app, {"host": "testserver", "content-type": "application/json"}, 300 * 2**20)
    assert status == 401 and read == 0
    # with the token, a body over the cap is refused after at most the cap (plus one chunk) was read
    status, _, read = _asgi_post(app, {"host": "testserver", "x-activemine-token": TOKEN}, 300 * 2**20)
    assert status == 413 and read <= 2 * 65536
    status, _, _ = _asgi_post(
        app, {"host": "testserver", "x-activemine-token": TOKEN, "content-length": str(300 * 2**20)}, 10
    )
    assert status == 413


@pytest.mark.integration
def test_cross_origin_posts_are_refused_and_every_response_carries_csp_and_frame_options(client):
    c, _ = client
    headers = {"X-Activemine-Token": TOKEN}
    r = c.post("/api/next", json={"annotator": "a"}, headers={**headers, "Origin": "https://evil.example"})
    assert r.status_code == 403
    r = c.post("/api/next", json={"annotator": "a"}, headers={**headers, "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert (
        c.post("/api/next", json={"annotator": "a"}, headers={**headers, "Origin": "http://testserver"}).status_code
        == 200
    )
    for r in (c.get("/", headers=headers), c.get("/api/image?id=nope", headers=headers), c.get("/")):
        assert r.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "default-src 'none'" in r.headers["content-security-policy"]
    page = c.get("/", headers=headers)
    nonce = page.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<script nonce="{nonce}">' in page.text  # the page's own script runs, nothing injected can

"""A real Label Studio server: import activemine's tasks, two annotators label overlapping tasks, export, import back.

Marked ``integration``. Label Studio is heavy (Django, many pinned packages) and
is not in the test extra: the test looks for a ``label-studio`` command in
``$ACTIVEMINE_LABEL_STUDIO`` (a path to the executable, e.g. a separate venv's
``bin/label-studio``) or on ``PATH``, and is skipped, saying so, when there is
none. ``make test-label-studio`` (run by ``.ci/run``) builds Label Studio's own
venv with the pins it needs to start (``make label-studio``) and runs this test
with ``ACTIVEMINE_LABEL_STUDIO_REQUIRED=1``, which turns every skip into a
failure: a Label Studio that does not start, or is missing, fails CI.

The server starts on a free local port with its own data folder, an admin
and an API token given on the command line. The first start migrates its
database, minutes on a busy machine; ``$ACTIVEMINE_LABEL_STUDIO_TEMPLATE``
names a data folder of an earlier start (with ``label_studio.sqlite3``) to
copy instead, which leaves only the server's start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from _campaign_helpers import digits_campaign
from activemine.campaign.exchange import export_round, import_labels, write_label_studio_config
from activemine.campaign.overlap import assign_overlap

pytestmark = pytest.mark.integration

TOKEN = "0123456789abcdef0123456789abcdef01234567"
START_TIMEOUT_S = float(os.environ.get("ACTIVEMINE_LABEL_STUDIO_START_S", "420"))


def _unavailable(reason: str):
    """Skip, or fail where the run asks for the real server (``ACTIVEMINE_LABEL_STUDIO_REQUIRED=1``, as in CI)."""
    if os.environ.get("ACTIVEMINE_LABEL_STUDIO_REQUIRED") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def _executable() -> str | None:
    given = os.environ.get("ACTIVEMINE_LABEL_STUDIO")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("label-studio")


def _log_tail(path: Path, lines: int = 15) -> str:
    """The end of the server's log, so a CI failure shows why it did not start."""
    try:
        return f"{path}:\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return str(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    httpx = pytest.importorskip("httpx")
    exe = _executable()
    if exe is None:
        _unavailable(
            "label-studio is not installed: `make label-studio` builds its venv, or set ACTIVEMINE_LABEL_STUDIO"
        )
    data = tmp_path_factory.mktemp("label-studio")
    template = os.environ.get("ACTIVEMINE_LABEL_STUDIO_TEMPLATE")
    if template and (Path(template) / "label_studio.sqlite3").is_file():
        db = data / "label_studio.sqlite3"
        shutil.copy2(Path(template) / "label_studio.sqlite3", db)
        with sqlite3.connect(db) as conn:  # the template's organization may predate the setting below
            conn.execute("UPDATE jwt_auth_jwtsettings SET legacy_api_tokens_enabled = 1")
    port = _free_port()
    # legacy tokens ("Token ..." headers): off by default since Label Studio 1.18, set when the organization is made
    env = dict(
        os.environ,
        LABEL_STUDIO_BASE_DATA_DIR=str(data),
        DJANGO_DB="sqlite",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="false",
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
    )
    env.pop("HOST", None)
    log = (data / "server.log").open("w")
    proc = subprocess.Popen(
        [
            exe,
            "start",
            "--no-browser",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--username",
            "admin@example.com",
            "--password",
            "admin-pass-123",
            "--user-token",
            TOKEN,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, headers={"Authorization": f"Token {TOKEN}"}, timeout=60)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if proc.poll() is not None:
                _unavailable(f"label-studio exited with {proc.returncode} at start: {_log_tail(data / 'server.log')}")
            try:
                if client.get("/api/current-user/whoami").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                _unavailable(
                    f"label-studio did not answer within {START_TIMEOUT_S:.0f} s: {_log_tail(data / 'server.log')}"
                )
            time.sleep(2)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_round_trip_through_a_real_label_studio(label_studio, tmp_path):
    client = label_studio
    store, truth = digits_campaign(tmp_path, budget=12)
    shared = set(assign_overlap(store, 1, overlap=0.5, per_item=2, seed=0))
    tasks_file, config_file = tmp_path / "round1.json", tmp_path / "round1.xml"
    assert export_round(store, 1, fmt="label-studio", out=tasks_file) == 12
    write_label_studio_config(store, config_file)

    project = client.post(
        "/api/projects", json={"title": "activemine round 1", "label_config": config_file.read_text()}
    )
    assert project.status_code == 201, project.text
    pid = project.json()["id"]
    imported = client.post(f"/api/projects/{pid}/import", json=json.loads(tasks_file.read_text()))
    assert imported.status_code == 201, imported.text
    tasks = client.get("/api/tasks", params={"project": pid, "page_size": 100}).json()
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    assert len(tasks) == 12

    # a second annotator: a user of the same organization; the admin posts in their name (``completed_by``),
    # as Label Studio's own importer does, since a second user's API token is not available over the API
    other = client.post("/api/users", json={"email": "bob@example.com", "username": "bob", "password": "bob-pass-123"})
    assert other.status_code == 201, other.text
    bob_id = other.json()["id"]

    target = "image"
    posted = {}
    for task in tasks:
        sid = str(task["data"]["activemine_id"])
        label = str(truth[int(sid)])
        result = [{"from_name": "label", "to_name": target, "type": "choices", "value": {"choices": [label]}}]
        r = client.post(f"/api/tasks/{task['id']}/annotations", json={"result": result})
        assert r.status_code == 201, r.text
        posted[(sid, "admin@example.com")] = label
        if sid in shared:
            other_label = str((truth[int(sid)] + 1) % 10) if sid == sorted(shared)[0] else label  # one conflict
            result = [{"from_name": "label", "to_name": target, "type": "choices", "value": {"choices": [other_label]}}]
            r = client.post(f"/api/tasks/{task['id']}/annotations", json={"result": result, "completed_by": bob_id})
            assert r.status_code == 201, r.text
            posted[(sid, "bob@example.com")] = other_label

    export = client.get(f"/api/projects/{pid}/export", params={"exportType": "JSON"})
    assert export.status_code == 200, export.text
    export_file = tmp_path / "export.json"
    export_file.write_bytes(export.content)
    report = import_labels(store, export_file)
    assert report.added == len(posted)
    stored = store.read("SELECT sid, annotator, label FROM labels WHERE source != 'initial' AND retracted_at IS NULL")
    users = {u["id"]: u["email"] for u in client.get("/api/users").json()}
    got = {(sid, users.get(int(who), who) if str(who).isdigit() else who): label for sid, who, label in stored}
    assert got == posted
    assert report.conflicts == [int(sorted(shared)[0])] or report.conflicts == [sorted(shared)[0]]

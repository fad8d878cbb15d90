import csv
import json
import re
import socket
import subprocess
import sys
import time

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from _campaign_helpers import digits_files
from activemine.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (getattr(result, "stderr", "") or "")


def test_a_full_round_as_a_new_user_would_run_it(tmp_path):
    L, U, truth = digits_files(tmp_path)
    camp = tmp_path / "camp"
    code, out = invoke("campaign", "init", camp, "--pool", U, "--labeled", L, "--label-col", "y", "--id-col", "id")
    assert code == 0, out
    code, out = invoke(
        "campaign", "mine", camp, "--budget", 20, "--strategy", "hw", "--model", "logreg", "--balance", "none"
    )
    assert code == 0 and "round 1: 20 samples" in out, out
    code, out = invoke(
        "campaign", "export", camp, "--round", 1, "--format", "label-studio", "--out", tmp_path / "r1.json"
    )
    assert code == 0 and (tmp_path / "r1.label-config.xml").exists(), out
    tasks = json.loads((tmp_path / "r1.json").read_text())
    for task in tasks[:15]:  # what Label Studio exports once an annotator has labeled 15 tasks
        label = str(truth[task["data"]["activemine_id"]])
        task["annotations"] = [
            {
                "completed_by": {"email": "kim@example.com"},
                "result": [
                    {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}
                ],
            }
        ]
    (tmp_path / "done.json").write_text(json.dumps(tasks))
    code, out = invoke("campaign", "import", camp, tmp_path / "done.json")
    assert code == 0 and "15 labels added" in out, out
    code, out = invoke("campaign", "status", camp, "--json")
    status = json.loads(out)
    assert (status["labeled"], status["queued"], status["flagged"] - status["flagged_suspect"]) == (15, 5, 0)
    assert status["annotators"]["kim@example.com"]["labels"] == 15
    code, out = invoke("campaign", "status", camp)
    assert code == 0 and "kim@example.com" in out
    code, out = invoke("campaign", "dataset", camp, "--out", tmp_path / "train.parquet")
    assert code == 0, out
    assert pq.read_table(tmp_path / "train.parquet").num_rows == 150 + 15 - (
        status["flagged"] - status["flagged_suspect"]
    )
    code, out = invoke("campaign", "mine", camp, "--budget", 10, "--strategy", "lc", "--model", "logreg")
    assert code == 0 and "round 2" in out


def test_bad_input_exits_2_with_the_reason(tmp_path):
    L, U, _ = digits_files(tmp_path)
    code, out = invoke("campaign", "status", tmp_path / "nothing")
    assert code == 2 and "error: " in out and "not a campaign folder" in out and "CampaignError" not in out
    invoke("campaign", "init", tmp_path / "c", "--pool", U, "--labeled", L)
    code, out = invoke("campaign", "export", tmp_path / "c", "--out", tmp_path / "x.csv")
    assert code == 2 and "no round yet" in out
    (tmp_path / "bad.csv").write_text("id,label\n1,2\n")
    code, out = invoke("campaign", "import", tmp_path / "c", tmp_path / "bad.csv")
    assert code == 2 and "line 2: unknown id 1: no round selected it" in out
    assert "RejectedImportError" not in out and any(line.startswith("error: ") for line in out.splitlines())


def test_markup_in_user_text_is_printed_as_it_is_and_never_crashes(tmp_path):
    L, U, _ = digits_files(tmp_path)
    camp = tmp_path / "camp[/bold]"
    code, out = invoke("campaign", "init", camp, "--pool", U, "--labeled", L)
    assert code == 0 and "camp[/bold]" in out, out
    code, out = invoke("campaign", "mine", camp, "--budget", 6, "--strategy", "random", "--model", "logreg")
    assert code == 0, out
    code, out = invoke("campaign", "export", camp, "--out", tmp_path / "r.csv")
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    with (tmp_path / "l[red]x.csv").open("w") as fh:
        fh.write("id,label,annotator\n" + "".join(f"{r['id']},1,[/bold]mallory[link=file:///etc]\n" for r in rows))
    code, out = invoke("campaign", "import", camp, tmp_path / "l[red]x.csv")
    assert code == 0 and "l[red]x.csv" in out, out
    code, out = invoke("campaign", "status", camp)
    assert code == 0 and "[/bold]mallory[link=file:///etc]" in out.replace("\n", ""), out
    code, out = invoke("campaign", "import", camp, tmp_path / "missing[/bold].csv")
    assert code == 2 and "missing[/bold].csv" in out and "Traceback" not in out, out
    code, out = invoke("campaign", "serve", camp, "--round", 9)
    assert code == 2 and "round 9 does not exist" in out, out


def test_label_studio_config_is_well_formed_xml_whatever_the_class_names(tmp_path):
    import xml.etree.ElementTree as ET

    L, U, _ = digits_files(tmp_path, n_pool=50)
    names = ['say "hi"', "<b>&amp;", "it's", "a>b", "x", "y", "z", "w", "v", "u"]
    t = pq.read_table(L)
    t = t.set_column(t.schema.get_field_index("y"), "y", pa.array([names[v] for v in t.column("y").to_pylist()]))
    pq.write_table(t, tmp_path / "L2.parquet")
    code, out = invoke("campaign", "init", tmp_path / "c", "--pool", U, "--labeled", tmp_path / "L2.parquet")
    assert code == 0, out
    from activemine.campaign import CampaignStore
    from activemine.campaign.exchange import label_studio_config

    root = ET.fromstring(label_studio_config(CampaignStore(tmp_path / "c")))
    assert sorted(c.get("value") for c in root.iter("Choice")) == sorted(names)


@pytest.mark.integration
def test_serve_binds_localhost_and_prints_the_token(tmp_path):
    L, U, _ = digits_files(tmp_path, n_pool=50)
    invoke("campaign", "init", tmp_path / "c", "--pool", U, "--labeled", L)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "activemine", "campaign", "serve", str(tmp_path / "c"), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
        assert match, line
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(url)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.status_code == 401
        assert httpx.get(url, params={"token": match.group(2)}).status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)


def test_status_prints_whole_figures_as_integers_never_in_exponent_form():
    from activemine.cli._app import console
    from activemine.cli._campaign_stopping import print_stopping

    stopping = {
        "stop_set_size": 2000,
        "rounds": [],
        "decisions": [
            {"criterion": "budget", "stop": False, "value": 10000.0, "threshold": 250000, "detail": "labels"},
            {"criterion": "kappa", "stop": True, "value": 0.98765, "threshold": 0.99, "detail": "mean"},
        ],
        "forecast": {"reason": "too few rounds"},
    }
    console_width = console.width
    console.width = 200
    try:
        with console.capture() as cap:
            print_stopping(stopping)
    finally:
        console.width = console_width
    text = cap.get()
    assert "10,000" in text and "250,000" in text and "0.9877" in text and "0.99" in text
    assert "e+" not in text

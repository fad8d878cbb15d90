"""A two-node Ray cluster on this machine, as a user starts one (`ray start --head`, `ray start --address`).

Each node is a `ray start --block` process in its own session; leaving the
context stops exactly those process groups (SIGTERM, then SIGKILL), never
other Ray instances on the machine. Recent Ray versions (2.60 here) turn token
authentication on at `ray start --head`; every node and every driver then
needs `RAY_AUTH_MODE=token` and the same token, which the cluster's
environment (:attr:`Cluster.env`) carries in `RAY_AUTH_TOKEN`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import activemine

START_TIMEOUT = 90.0


@dataclass
class Cluster:
    address: str
    env: dict


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    # the node's daemons (gcs_server, raylet, workers) share the group of its `ray start`
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _alive_nodes(address: str, env: dict) -> int:
    script = (
        f"import ray; ray.init(address={address!r}, log_to_driver=False); "
        "print(sum(1 for n in ray.nodes() if n['Alive']))"
    )
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0


@contextlib.contextmanager
def two_node_cluster():
    """Start a head and a second node (one CPU each); yield a :class:`Cluster`; stop both."""
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray_bin is None:
        raise RuntimeError("the ray command is not installed")
    # unix socket paths are short: a short temp folder of its own, not pytest's deep one
    temp = tempfile.mkdtemp(prefix="amray", dir="/tmp")
    port = _free_port()
    src = str(Path(activemine.__file__).resolve().parents[1])
    env = dict(os.environ)
    env.update(
        RAY_AUTH_MODE="token",
        RAY_AUTH_TOKEN=secrets.token_hex(16),
        PYTHONPATH=os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])]),
        RAY_USAGE_STATS_ENABLED="0",
    )
    common = ["--num-cpus=1", "--block", "--disable-usage-stats"]
    procs: list[subprocess.Popen] = []
    log = open(Path(temp) / "nodes.log", "w")  # noqa: SIM115  closed below
    try:
        head = [ray_bin, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}"]
        procs.append(subprocess.Popen(head + common, env=env, start_new_session=True, stdout=log, stderr=log))
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while _alive_nodes(address, env) < 1:
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError(f"the Ray head did not start: {(Path(temp) / 'nodes.log').read_text()[-2000:]}")
            time.sleep(2)
        node = [ray_bin, "start", f"--address={address}"]
        procs.append(subprocess.Popen(node + common, env=env, start_new_session=True, stdout=log, stderr=log))
        while _alive_nodes(address, env) < 2:
            if time.monotonic() > deadline or procs[1].poll() is not None:
                raise RuntimeError(f"the second node did not join: {(Path(temp) / 'nodes.log').read_text()[-2000:]}")
            time.sleep(2)
        yield Cluster(address, env)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)

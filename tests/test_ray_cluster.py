"""`mine` and `campaign mine` on a real two-node Ray cluster started on this machine.

The commands run as a user runs them: in a working folder, with relative
paths, joining the cluster by ``--ray-address HOST:PORT``. The workers' working
directory is not the driver's, so paths must be resolved before they are
shipped; a file some node cannot read must fail before any model is fitted.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("ray")

from _ray_cluster import two_node_cluster
from activemine.campaign import CampaignStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    with two_node_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working folder with L.parquet and U.parquet (string ids, four row groups)."""
    folder = tmp_path_factory.mktemp("work")
    rng = np.random.default_rng(4)
    n, n_l = 1600, 200
    X = rng.normal(size=(n, 3))
    y = np.where(X[:, 0] + 0.3 * rng.normal(size=n) > 0, "flag", "ok")
    ids = np.array([f"post_{v:06d}" for v in rng.permutation(10 * n)[:n]])
    cols = {"id": ids, "f0": X[:, 0], "f1": X[:, 1], "f2": X[:, 2]}
    pq.write_table(pa.table({k: v[:n_l] for k, v in cols.items()} | {"y": y[:n_l]}), folder / "L.parquet")
    pq.write_table(pa.table({k: v[n_l:] for k, v in cols.items()}), folder / "U.parquet", row_group_size=400)
    return folder


def cli(*args, cwd, env=None):
    result = subprocess.run(
        [sys.executable, "-m", "activemine", *map(str, args)],
        cwd=cwd,
        env=env or os.environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr


MINE = ["--budget", 80, "--strategy", "hw", "--seed", 2, "--n-jobs", 1, "--quiet"]


def test_mine_with_relative_paths_on_the_cluster_gives_the_local_batch(cluster, work):
    code, text = cli(
        "mine",
        "--pool",
        "U.parquet",
        "--labeled",
        "L.parquet",
        "--out",
        "local.parquet",
        *MINE,
        cwd=work,
        env=cluster.env,
    )
    assert code == 0, text
    code, text = cli(
        "mine",
        "--pool",
        "U.parquet",
        "--labeled",
        "L.parquet",
        "--out",
        "ray.parquet",
        *MINE,
        "--engine",
        "ray",
        "--ray-address",
        cluster.address,
        cwd=work,
        env=cluster.env,
    )
    assert code == 0, text
    local = pq.read_table(work / "local.parquet").column("id").to_pylist()
    assert pq.read_table(work / "ray.parquet").column("id").to_pylist() == local


def test_campaign_mine_on_the_cluster_gives_the_local_round(cluster, work):
    rounds = {}
    for engine in ("local", "ray"):
        folder = f"camp-{engine}"
        code, text = cli(
            "campaign", "init", folder, "--pool", "U.parquet", "--labeled", "L.parquet", "-q", cwd=work, env=cluster.env
        )
        assert code == 0, text
        ray_args = ["--engine", "ray", "--ray-address", cluster.address] if engine == "ray" else []
        code, text = cli("campaign", "mine", folder, *MINE, *ray_args, cwd=work, env=cluster.env)
        assert code == 0, text
        store = CampaignStore(work / folder)
        rounds[engine] = sorted(s for (s,) in store.read("SELECT sid FROM batches WHERE round = 1"))
    assert len(rounds["ray"]) == 80
    assert rounds["ray"] == rounds["local"]


def test_a_pool_a_node_cannot_read_fails_before_any_fit(cluster, work):
    """The driver opened the pool; the file is gone when the cluster is asked (as a disk only the driver sees)."""
    script = f"""
import shutil, sys
import numpy as np
import pyarrow.parquet as pq
from activemine import make_strategy
from activemine.data import LabeledSet
from activemine.engines import prepare_run
from activemine.engines.ray import RayExecutor
from activemine.errors import InputError
from activemine.data.sources import PoolColumns

shutil.copy("U.parquet", "only-here.parquet")
L = pq.read_table("L.parquet")
X = np.stack([L.column(c).to_numpy() for c in ("f0", "f1", "f2")], axis=1)
labeled = LabeledSet(X, L.column("y").to_numpy(zero_copy_only=False))
strategy = make_strategy("lc", model="logreg")
run = prepare_run(strategy, "only-here.parquet", budget=10, labeled=labeled,
                  columns=PoolColumns(features=("f0", "f1", "f2")))
import os; os.remove("only-here.parquet")
strategy.fit = lambda *a, **k: sys.exit("fitted before the check")
try:
    run.run(RayExecutor(address={cluster.address!r}))
except InputError as exc:
    print("REFUSED", exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=work, env=cluster.env, capture_output=True, text=True, timeout=300
    )
    assert "REFUSED" in result.stdout, result.stdout + result.stderr
    message = result.stdout.split("REFUSED", 1)[1]
    assert str(work / "only-here.parquet") in message and "cannot be read on Ray node" in message


def test_a_driver_without_the_clusters_token_gets_a_clear_error(cluster, work):
    env = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_MODE"] = "disabled"
    code, text = cli(
        "mine",
        "--pool",
        "U.parquet",
        "--labeled",
        "L.parquet",
        "--out",
        "x.parquet",
        *MINE,
        "--engine",
        "ray",
        "--ray-address",
        cluster.address,
        cwd=work,
        env=env,
    )
    assert code != 0
    # Ray says only that it failed to connect; the message names the likely cause
    assert "cannot reach the Ray cluster" in text and "RAY_AUTH_MODE=token" in text
    assert "Traceback" not in text
    assert not (work / "x.parquet").exists()

"""Campaign at mission scale: a 10M-row pool of the business model's probabilities, string ids.

    python benchmarks/scale_campaign.py [--rows 10000000] [--budget 1000000] [--labeled 10000]

Generates (once, under benchmarks/.data/, gitignored) a Parquet pool of binary
probabilities ``p0,p1`` (the business model), ``w0,w1`` (a weak model) and
string ids, and a labeled set L; then runs, each step in its own process
through the CLI (wall time and peak RSS of that process, from ``wait4``):

1. the floor: read the columns a round reads (ids as Arrow strings and the
   four probability columns) and ``argpartition`` the weak model's least
   confidence for the budget; also the floor without the ids;
2. ``campaign init DIR --pool P --proba-cols p0,p1 --weak-proba-cols w0,w1 --labeled L ...``;
3. ``campaign mine DIR --budget B --strategy hw --balance equal --easy-share 0.1``;
4. ``campaign import`` of B labels (a CSV written from round 1's batch, not timed);
5. ``campaign status``;
6. a second ``campaign mine``, whose batch must be disjoint from the first.

Targets (on 2 cores): the mine round at most 3x the floor measured in
the same run and under 2 GB peak RSS; the import under 60 s and 1.5 GB; the
second batch disjoint from the first. Writes
``benchmarks/results/scale_campaign/results.json``; the log of the run goes
beside it when the output is tee'd there (see the README section).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
OUT = HERE / "results" / "scale_campaign"
SRC = HERE.parent / "src"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


# -- data ------------------------------------------------------------------------
def write_pool(path: Path, rows: int, *, seed: int = 11, step: int = 1_000_000) -> None:
    """Binary probabilities of a business model and of a weaker one, ids like ``msg-00a3f2c1``; truth in ``y``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    perm = rng.permutation(rows)  # ids in no particular order, as an export would give them
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("p0", pa.float32()),
            ("p1", pa.float32()),
            ("w0", pa.float32()),
            ("w1", pa.float32()),
            ("y", pa.int8()),
        ]
    )
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            logit = rng.normal(scale=2.5, size=n)
            p = 1 / (1 + np.exp(-logit))
            y = (rng.random(n) < p).astype(np.int8)
            weak = 1 / (1 + np.exp(-(0.5 * logit + rng.normal(scale=1.0, size=n))))
            ids = np.char.add("msg-", np.char.zfill(np.char.mod("%x", perm[start : start + n]), 8))
            w.write_table(
                pa.table(
                    {
                        "id": ids,
                        "p0": (1 - p).astype(np.float32),
                        "p1": p.astype(np.float32),
                        "w0": (1 - weak).astype(np.float32),
                        "w1": weak.astype(np.float32),
                        "y": y,
                    },
                    schema=schema,
                ),
                row_group_size=step,
            )
    os.replace(tmp, path)


def write_labeled(path: Path, n: int, *, seed: int = 12) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    pq.write_table(pa.table({"id": [f"train-{i:06d}" for i in range(n)], "y": rng.integers(0, 2, n)}), path)


# -- measuring one step in its own process ----------------------------------------
def run_step(name: str, argv: list[str], results: dict, *, env: dict | None = None) -> dict:
    log(f"{name}: {' '.join(map(str, argv))}")
    started = time.perf_counter()
    proc = subprocess.Popen(
        [str(a) for a in argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    for line in output.rstrip().splitlines():
        print(f"    {line}", flush=True)
    row = {"step": name, "wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit_code": code}
    log(f"{name}: {wall:.2f} s, peak RSS {row['peak_rss_mb']:.0f} MB, exit {code}")
    results["steps"][name] = row
    if code != 0:
        raise SystemExit(f"step {name} failed with exit code {code}")
    return row


FLOOR = """
import sys, time, numpy as np, pyarrow.parquet as pq
path, budget, with_ids = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
cols = (["id"] if with_ids else []) + ["p0", "p1", "w0", "w1"]
t = pq.read_table(path, columns=cols)
w = np.stack([t.column("w0").to_numpy(), t.column("w1").to_numpy()], axis=1)
lc = 1.0 - w.max(axis=1)
chosen = np.argpartition(-lc, budget - 1)[:budget]
print(len(chosen), t.num_rows)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--budget", type=int, default=1_000_000)
    ap.add_argument("--labeled", type=int, default=10_000)
    ap.add_argument("--chunk-size", type=int, default=1 << 18)
    ap.add_argument("--engine", default="local")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-ray", action="store_true", help="skip round 1 on the Ray engine (run when Ray is installed)")
    args = ap.parse_args()

    DATA.mkdir(parents=True, exist_ok=True)
    pool = DATA / f"campaign_pool_{args.rows}.parquet"
    labeled = DATA / f"campaign_labeled_{args.labeled}.parquet"
    if not pool.exists():
        log(f"writing {pool}")
        write_pool(pool, args.rows)
    if not labeled.exists():
        write_labeled(labeled, args.labeled)
    camp = DATA / f"campaign_{args.rows}"
    shutil.rmtree(camp, ignore_errors=True)
    env = dict(
        os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", ACTIVEMINE_PROGRESS_INTERVAL="10"
    )
    py = sys.executable
    cli = [py, "-m", "activemine", "campaign"]
    results: dict = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "rows": args.rows,
        "budget": args.budget,
        "labeled": args.labeled,
        "chunk_size": args.chunk_size,
        "engine": args.engine,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "pool_file_mb": round(pool.stat().st_size / 2**20, 1),
        "steps": {},
    }

    run_step("floor_with_ids", [py, "-c", FLOOR, pool, args.budget, "1"], results, env=env)
    run_step("floor_proba_only", [py, "-c", FLOOR, pool, args.budget, "0"], results, env=env)
    run_step(
        "init",
        [
            *cli,
            "init",
            camp,
            "--pool",
            pool,
            "--proba-cols",
            "p0,p1",
            "--weak-proba-cols",
            "w0,w1",
            "--labeled",
            labeled,
            "--label-col",
            "y",
            "--id-col",
            "id",
        ],
        results,
        env=env,
    )
    mine = [
        *cli,
        "mine",
        camp,
        "--budget",
        args.budget,
        "--strategy",
        "hw",
        "--balance",
        "equal",
        "--easy-share",
        "0.1",
        "--chunk-size",
        args.chunk_size,
        "--engine",
        args.engine,
    ]
    run_step("mine_round_1", mine, results, env=env)

    # the annotators' answers for round 1: the pool's hidden truth (not timed)
    started = time.perf_counter()
    labels_csv = DATA / f"campaign_labels_{args.rows}.csv"
    _write_answers(camp, pool, labels_csv)
    log(f"wrote {labels_csv} in {time.perf_counter() - started:.1f} s")
    run_step("import", [*cli, "import", camp, labels_csv, "--annotator", "vendor"], results, env=env)
    run_step("status", [*cli, "status", camp], results, env=env)
    run_step("mine_round_2", mine, results, env=env)

    ray_same = None
    if not args.no_ray and args.engine == "local" and importlib.util.find_spec("ray") is not None:
        # round 1 again, in a second campaign, on a local Ray instance: the batch must be the local one
        camp_ray = DATA / f"campaign_{args.rows}_ray"
        shutil.rmtree(camp_ray, ignore_errors=True)
        run_step(
            "init_ray",
            [
                *cli,
                "init",
                camp_ray,
                "--pool",
                pool,
                "--proba-cols",
                "p0,p1",
                "--weak-proba-cols",
                "w0,w1",
                "--labeled",
                labeled,
                "--label-col",
                "y",
                "--id-col",
                "id",
            ],
            results,
            env=env,
        )
        ray_mine = [a if a != "local" else "ray" for a in mine]
        ray_mine[ray_mine.index(camp)] = camp_ray
        run_step("mine_round_1_ray", ray_mine, results, env=env)
        ray_same = _round_rows(camp_ray, 1) == _round_rows(camp, 1)
        shutil.rmtree(camp_ray, ignore_errors=True)

    db = sqlite3.connect(camp / "campaign.db")
    (overlap,) = db.execute(
        "SELECT COUNT(*) FROM (SELECT sid FROM batches WHERE round = 1 "
        "INTERSECT SELECT sid FROM batches WHERE round = 2)"
    ).fetchone()
    sizes = dict(db.execute("SELECT round, COUNT(*) FROM batches GROUP BY round").fetchall())
    (labels,) = db.execute("SELECT COUNT(*) FROM labels WHERE source = 'import'").fetchone()
    db.close()
    steps = results["steps"]
    floor = steps["floor_with_ids"]["wall_s"]
    results["checks"] = {
        "round_sizes": sizes,
        "labels_imported": labels,
        "round_2_overlaps_round_1": overlap,
        "mine_round_1_over_floor": round(steps["mine_round_1"]["wall_s"] / floor, 2),
        "mine_round_2_over_floor": round(steps["mine_round_2"]["wall_s"] / floor, 2),
        "mine_round_1_over_floor_proba_only": round(
            steps["mine_round_1"]["wall_s"] / steps["floor_proba_only"]["wall_s"], 2
        ),
        "ray_round_1_equals_local": ray_same,
    }
    if ray_same is not None:
        results["checks"]["ray_round_1_over_local"] = round(
            steps["mine_round_1_ray"]["wall_s"] / steps["mine_round_1"]["wall_s"], 2
        )
    targets = {
        "mine within 3x the floor": max(
            results["checks"]["mine_round_1_over_floor"], results["checks"]["mine_round_2_over_floor"]
        )
        <= 3,
        "mine under 2 GB": max(steps["mine_round_1"]["peak_rss_mb"], steps["mine_round_2"]["peak_rss_mb"]) < 2048,
        "import under 60 s": steps["import"]["wall_s"] < 60,
        "import under 1.5 GB": steps["import"]["peak_rss_mb"] < 1536,
        "second batch disjoint": overlap == 0 and sizes.get(2) == args.budget,
    }
    if ray_same is not None:
        targets["Ray round equals local"] = ray_same
    results["targets_met"] = targets
    for k, v in results["checks"].items():
        log(f"{k}: {v}")
    for k, v in targets.items():
        log(f"target {k}: {'met' if v else 'MISSED'}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {args.out / 'results.json'}")


def _round_rows(camp: Path, round_no: int) -> list[tuple]:
    """A round's batch as ``(rank, sid, stratum)`` rows, for comparing two campaigns."""
    if str(SRC) not in sys.path:  # this checkout's activemine, as the steps run it
        sys.path.insert(0, str(SRC))
    from activemine.campaign.batchdata import read_batch

    db = sqlite3.connect(camp / "campaign.db")
    try:
        sids, data = read_batch(db, round_no)
    finally:
        db.close()
    return list(zip(range(len(sids)), sids, data.stratum.tolist()))


def _write_answers(camp: Path, pool: Path, out: Path) -> None:
    """A label file for round 1's batch with the pool's hidden truth ``y``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    db = sqlite3.connect(camp / "campaign.db")
    sids = pa.array([r[0] for r in db.execute("SELECT sid FROM batches WHERE round = 1")])
    db.close()
    parts = []
    for batch in pq.ParquetFile(pool).iter_batches(batch_size=1 << 20, columns=["id", "y"]):
        parts.append(batch.filter(pc.is_in(batch.column(0), value_set=sids)))
    table = pa.Table.from_batches(parts).rename_columns(["id", "label"])
    pcsv.write_csv(table, out)


if __name__ == "__main__":
    main()

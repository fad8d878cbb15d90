"""Scale run of batches without copies: hw + near-duplicates on a Parquet pool of binary probabilities
and 32 float32 embedding columns with planted copies, beside a floor measured in the same run.

    python benchmarks/diversity_scale.py --rows 10000000 --budget 1000000 [--no-ray]

The pool (written once under benchmarks/.data/, gitignored): HW's weak probabilities ``w0, w1``
and embeddings ``emb_0..emb_31`` drawn from a Gaussian mixture in 8 latent dimensions mapped
linearly to 32 (real embeddings have a low intrinsic dimension) plus small noise; 1% of the rows
are near-copies of hard rows (groups of 10, noise 0.01), with their source's probabilities.
Selection: ``hw`` with equal quotas, 10% easy share, ``--near-duplicates auto``, local executor;
then the Ray executor, compared row for row. The floor reads the same columns and does one
``np.argpartition``. Each configuration runs in its own process (peak RSS = that process's maxrss);
floor and local run ``--repeats`` times (default 2) alternately, and the fastest of each is reported
beside every time measured (the machine is shared), with the largest peak RSS.
Writes benchmarks/results/diversity_scale/results.json (its ``scale`` entry).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
DIMS = 32


def write_pool(path: Path, rows: int, seed: int = 0) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    mix = rng.normal(scale=3.0, size=(50, 8)).astype(np.float32)  # 50 clusters in 8 latent dims
    lift = rng.normal(size=(8, DIMS)).astype(np.float32) / np.sqrt(8)
    schema = pa.schema(
        [("id", pa.int64()), ("w0", pa.float32()), ("w1", pa.float32())]
        + [(f"emb_{j}", pa.float32()) for j in range(DIMS)]
    )
    step = 1_000_000
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, schema) as w:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            z = mix[rng.integers(0, 50, n)] + rng.standard_normal((n, 8), dtype=np.float32)
            emb = (z @ lift + 0.05 * rng.standard_normal((n, DIMS), dtype=np.float32)).astype(np.float32)
            w1 = rng.beta(0.5, 2.0, n).astype(np.float32)
            copies = n // 100
            src = np.argsort(np.abs(w1 - 0.5))[: copies // 10]  # hard rows of this block
            at = n - copies
            emb[at:] = emb[np.repeat(src, 10)] + 0.01 * rng.standard_normal((copies, DIMS), dtype=np.float32)
            w1[at:] = w1[np.repeat(src, 10)]
            cols = {"id": np.arange(start, start + n, dtype=np.int64), "w0": 1 - w1, "w1": w1}
            cols |= {f"emb_{j}": emb[:, j] for j in range(DIMS)}
            w.write_table(pa.table(cols), row_group_size=1 << 18)
    os.replace(tmp, path)


def child(config: str, path: str, budget: int, out: str) -> None:
    """One configuration in this process; writes its figures to ``out``."""
    import pyarrow.dataset as ds

    names = ["w0", "w1"] + [f"emb_{j}" for j in range(DIMS)]
    started, cpu = time.perf_counter(), time.process_time()
    result: dict = {}
    if config == "floor":
        w1 = []
        for batch in ds.dataset(path).to_batches(columns=["id", *names], batch_size=1 << 18):
            w1.append(batch.column("w1").to_numpy())
            for c in names:  # read, as the engine does, every column the selection needs
                batch.column(c).to_numpy()
        w1 = np.concatenate(w1)
        np.argpartition(-np.minimum(w1, 1 - w1), budget)[:budget]
    else:
        from activemine import make_strategy
        from activemine.data.sources import PoolColumns
        from activemine.diversity.options import DiversityOptions
        from activemine.engines import make_executor, prepare_run
        from activemine.selection.plan import SelectionPlan

        strategy = make_strategy("hw", balance="equal", easy_share=0.1, random_state=0)
        plan = SelectionPlan.build(strategy, budget=budget, diversity=DiversityOptions(near_duplicates="auto"))
        cols = PoolColumns(weak_proba=("w0", "w1"), embedding=tuple(f"emb_{j}" for j in range(DIMS)))
        run = prepare_run(strategy, path, plan=plan, columns=cols)
        run.fit()
        # one Ray actor: the machine this ran on has 2 cores, one for the driver
        extra = {"concurrency": 1} if config == "ray" else {}
        run.scan(make_executor(config, chunk_size=1 << 18, **extra))
        scanned, scanned_cpu = time.perf_counter(), time.process_time()
        batch = run.select()
        result["dedup_seconds"] = time.perf_counter() - scanned
        result["dedup_cpu_seconds"] = time.process_time() - scanned_cpu
        result["radius"] = batch.diversity.radius
        result["suppressed"] = batch.diversity.suppressed
        result["rescans"] = batch.diversity.rescans
        result["selected"] = len(batch)
        ids = np.asarray(batch.ids)
        result["copies_in_batch"] = int((ids % 1_000_000 >= 990_000).sum())  # the last 1% of every block are copies
        np.save(out + ".ids.npy", ids)
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = time.process_time() - cpu  # this process only (a Ray run's actors are not in it)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(out).write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--budget", type=int, default=1_000_000)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="floor and local run this many times, alternately; the fastest of each is reported "
        "(the machine is shared: one slow run says more about the neighbours than the code)",
    )
    ap.add_argument("--out", default=str(HERE / "results" / "diversity_scale" / "results.json"))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        config, path, budget, out = args.child
        child(config, path, int(budget), out)
        return
    DATA.mkdir(exist_ok=True)
    path = DATA / f"diversity_{args.rows}.parquet"
    if not path.exists():
        t = time.perf_counter()
        write_pool(path, args.rows)
        print(f"wrote {path} in {time.perf_counter() - t:.0f} s", flush=True)
    figures = {}
    runs: dict = {"floor": [], "local": []}
    load_before = os.getloadavg()  # the machine is shared: how busy it was when the run began
    env = dict(os.environ, PYTHONPATH=str(HERE.parent / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    configs = ["floor", "local"] * max(1, args.repeats) + ([] if args.no_ray else ["ray"])
    for _i, config in enumerate(configs):
        out = str(DATA / f"diversity_{config}.json")
        subprocess.run(
            [sys.executable, __file__, "--child", config, str(path), str(args.budget), out], check=True, env=env
        )
        result = json.loads(Path(out).read_text())
        print(config, result, flush=True)
        if config == "local" and runs["local"]:  # every local run selects the same rows
            first = np.load(str(DATA / "diversity_local_first.ids.npy"))
            assert np.array_equal(first, np.load(out + ".ids.npy")), "two local runs selected different rows"
        elif config == "local":
            os.replace(out + ".ids.npy", str(DATA / "diversity_local_first.ids.npy"))
        if config in runs:
            runs[config].append(result)
        else:
            figures[config] = result
    for config, results in runs.items():
        figures[config] = min(results, key=lambda r: r["seconds"])
    figures["local"]["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs["local"])
    scale = {
        "rows": args.rows,
        "budget": args.budget,
        "seconds": figures["local"]["seconds"],
        "floor_seconds": figures["floor"]["seconds"],
        "peak_rss_mb": figures["local"]["peak_rss_mb"],
        "dedup_seconds": figures["local"]["dedup_seconds"],
        "radius": figures["local"]["radius"],
        "rescans": figures["local"]["rescans"],
        "copies_in_batch": figures["local"]["copies_in_batch"],
        "ratio_to_floor": figures["local"]["seconds"] / figures["floor"]["seconds"],
        "cpu_seconds": figures["local"].get("cpu_seconds"),
        "floor_cpu_seconds": figures["floor"].get("cpu_seconds"),
        "dedup_cpu_seconds": figures["local"].get("dedup_cpu_seconds"),
        "floor_peak_rss_mb": figures["floor"]["peak_rss_mb"],
        "suppressed": figures["local"]["suppressed"],
        "ray_equal": None,
        "ray_seconds": None,
        "load_average_before": [round(v, 2) for v in load_before],
        "cpus": os.cpu_count(),
        "command": "python " + " ".join(sys.argv),
        "repeats": {c: [round(r["seconds"], 2) for r in rs] for c, rs in runs.items()},
        "dedup_seconds_all": [round(r["dedup_seconds"], 2) for r in runs["local"]],
    }
    if figures["floor"].get("cpu_seconds"):
        scale["cpu_ratio_to_floor"] = figures["local"]["cpu_seconds"] / figures["floor"]["cpu_seconds"]
    if "ray" in figures:
        a = np.load(str(DATA / "diversity_local_first.ids.npy"))
        b = np.load(str(DATA / "diversity_ray.json") + ".ids.npy")
        scale["ray_equal"] = bool(a.shape == b.shape and (a == b).all())
        scale["ray_seconds"] = figures["ray"]["seconds"]
        scale["ray_peak_rss_mb"] = figures["ray"]["peak_rss_mb"]  # the driver's; the actor is another process
    out = Path(args.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc["scale"] = scale
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    print(json.dumps(scale, indent=1))


if __name__ == "__main__":
    main()

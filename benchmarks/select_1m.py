"""Select 100k from a 1M-row pool of precomputed binary probabilities.

Each configuration runs in its own subprocess (so peak RSS is its own), several
times; the script prints medians and writes benchmarks/results/select_1m/results.json.

    python benchmarks/select_1m.py [--rows 1000000] [--budget 100000] [--repeats 5]

Configurations, measured side by side in one run:
  floor      one np.argpartition over the least-confidence scores (no ids, no ties, no checks)
  lc         activemine.mine with strategy lc (exact top-k, ties by id, input validation)
  hw         activemine.mine with strategy hw: equal class quotas and a 20% easy share
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "select_1m" / "results.json"


def run_one(config: str, rows: int, budget: int) -> dict:
    import numpy as np

    from activemine import PoolChunk, make_strategy, mine

    rng = np.random.default_rng(0)
    p1 = rng.beta(0.3, 2.0, size=rows)  # skewed like a real risk model's scores
    proba = np.column_stack([1 - p1, p1])
    ids = rng.permutation(rows).astype(np.int64)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if config == "floor":
        lc = 1.0 - proba.max(axis=1)
        chosen = ids[np.argpartition(-lc, budget - 1)[:budget]]
        n = chosen.size
    else:
        # HW as measured for the committed results: equal quotas and a 20% easy share (its heaviest path)
        strategy = make_strategy(
            config, random_state=0, **({"balance": "equal", "easy_share": 0.2} if config == "hw" else {})
        )
        batch = mine(
            strategy,
            PoolChunk(ids, proba=proba, weak_proba=proba if config == "hw" else None),
            budget=budget,
            chunk_size=1 << 20,
        )
        n = len(batch)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert n == budget
    return {"seconds": seconds, "peak_rss_mb": peak / 1024, "rss_before_mb": base_rss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.rows, args.budget)))
        return

    configs = ["floor", "lc", "hw"]
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for _ in range(args.repeats):  # interleaved, so drift on a noisy machine hits every config alike
        for c in configs:
            cmd = [sys.executable, __file__, "--child", c, "--rows", str(args.rows), "--budget", str(args.budget)]
            runs[c].append(json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout))
    summary = {}
    for c in configs:
        secs = [r["seconds"] for r in runs[c]]
        summary[c] = {
            "median_seconds": statistics.median(secs),
            "min_seconds": min(secs),
            "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs[c]),
            "median_rss_before_mb": statistics.median(r["rss_before_mb"] for r in runs[c]),
        }
    for c in configs:
        summary[c]["ratio_to_floor"] = summary[c]["median_seconds"] / summary["floor"]["median_seconds"]
    out = {
        "rows": args.rows,
        "budget": args.budget,
        "repeats": args.repeats,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": __import__("os").cpu_count(),
            "platform": platform.platform(),
        },
        "configs": summary,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"{args.rows:,} rows, budget {args.budget:,}, {args.repeats} repeats (medians)")
    print(f"{'config':<8}{'seconds':>10}{'x floor':>10}{'peak RSS MB':>14}{'RSS before':>12}")
    for c in configs:
        s = summary[c]
        print(
            f"{c:<8}{s['median_seconds']:>10.3f}{s['ratio_to_floor']:>10.2f}"
            f"{s['median_peak_rss_mb']:>14.0f}{s['median_rss_before_mb']:>12.0f}"
        )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

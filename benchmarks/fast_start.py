"""Start-up cost of `activemine --help` and `import activemine`, beside another checkout's.

    python benchmarks/fast_start.py [--runs 7] [--baseline /path/to/other/checkout]

Runs each command ``--runs`` times in a fresh process (``PYTHONPATH`` = the checkout's ``src``) and reports
the median wall seconds and CPU seconds (user + system of the child, far steadier than wall time on a
shared machine); writes benchmarks/results/fast_start/results.json. Also lists which model libraries (scikit-learn,
LightGBM, Ray, matplotlib) each command imports, from ``python -X importtime``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
COMMANDS = {"help": ["-m", "activemine", "--help"], "import": ["-c", "import activemine"]}
HEAVY = ("sklearn", "lightgbm", "ray", "matplotlib")


def measure(checkout: Path, args: list[str], runs: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(checkout / "src"))
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=checkout, env=env, stdout=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    log = subprocess.run(
        [sys.executable, "-X", "importtime", *args], cwd=checkout, env=env, capture_output=True, text=True
    ).stderr
    names = {line.rsplit("|", 1)[-1].strip() for line in log.splitlines() if line.startswith("import time:")}
    return {
        "wall_s_median": statistics.median(walls),
        "wall_s_min": min(walls),
        "cpu_s_median": statistics.median(cpus),
        "cpu_s_min": min(cpus),
        "runs": runs,
        "heavy_imports": sorted({n.split(".")[0] for n in names if n.split(".")[0] in HEAVY}),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--baseline", type=Path, help="Another checkout to measure beside this one (e.g. main).")
    args = ap.parse_args()
    checkouts = {"this": HERE.parent} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    load_at_start = os.getloadavg()
    results = {}
    for label, checkout in checkouts.items():
        for name, command in COMMANDS.items():
            res = measure(checkout, command, args.runs)
            results[f"{label}_{name}"] = res | {"checkout": str(checkout)}
            print(
                f"{label:8s} {' '.join(command):22s} wall {res['wall_s_median']:.2f} s  CPU {res['cpu_s_median']:.2f} s  "
                f"heavy imports {res['heavy_imports'] or 'none'}",
                flush=True,
            )
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "argv": sys.argv[1:],
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
    }
    out = HERE / "results" / "fast_start" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    os.replace(tmp, out)


if __name__ == "__main__":
    main()

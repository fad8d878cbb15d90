"""HW's selection cost beside QBC's, one process, side by side (target: hw at most half of qbc).

Times fit + score of the pool for ``qbc``, ``hw`` (which selects with all given labels), ``hw
--clean-selection`` (adaptive dirty-data step on L first, held-out check on 3 fresh folds; and with a
2-fold check) and ``lc``, and apart from selection, hw's dirty-data step on L (what cleaning the
training set costs once labels are back), on the reduced label-efficiency
sizes (Fashion-MNIST shirt-vs-rest L 2,000 / U 6,000; the rare set L 10,000 / U 30,000), clean and with the
benchmark's 10% ambiguity-weighted noise (where the check's refits run), ``--repeats`` times each, in turn,
so load changes hit every variant alike. Prints a table of median seconds and the model fits, and writes
it to ``benchmarks/results/hw_cost/`` (``results.json``: every timing; ``results.md``: the table; the
current run only).

    python benchmarks/hw_cost.py --n-jobs 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

# OMP_WAIT_POLICY is left as the environment has it (see label_efficiency.py); run with
# OMP_WAIT_POLICY=PASSIVE to see what yielding OpenMP threads cost a 2-thread fit.
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import NOISY, write_rare_dataset

from activemine.data.chunks import LabeledSet, PoolChunk
from activemine.dirty import DirtyDataFilter
from activemine.experiments.seeds import _clean_proba, _Seed
from activemine.experiments.settings import ExperimentConfig
from activemine.experiments.tasks import load_task
from activemine.selection.strategies import make_strategy

OUT = Path(__file__).resolve().parent / "results" / "hw_cost"
SIZES = {"fashion": (2000, 6000), "rare": (10000, 30000)}  # L, U


def variants(n_jobs):
    return {
        "lc": ("lc", {}),
        "qbc": ("qbc", {}),
        "hw": ("hw", {}),
        "hw --clean-selection": ("hw", {"clean_selection": True}),
        "hw --clean-selection, check_folds=2": (
            "hw",
            {"clean_selection": True, "dirty_step": DirtyDataFilter(check_folds=2, n_jobs=n_jobs)},
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", default="fashion,rare", help="fashion, rare or both (comma-separated)")
    args = parser.parse_args()
    sets = args.sets.split(",")
    if not sets or set(sets) - set(SIZES):
        parser.error(f"--sets takes fashion and/or rare, got {args.sets!r}")
    started = time.perf_counter()
    rows, records = [], []
    with tempfile.TemporaryDirectory() as tmp:
        rare = write_rare_dataset(Path(tmp) / "rare.parquet")
        for ds, (L, U) in ((k, v) for k, v in SIZES.items() if k in sets):
            task = (
                load_task("fashion-mnist", "binary:6")
                if ds == "fashion"
                else load_task(str(rare), "binary:pos", split_col="split")
            )
            src = (
                {"dataset": "fashion-mnist", "task": "binary:6"}
                if ds == "fashion"
                else {"dataset": str(rare), "task": "binary:pos", "split_col": "split"}
            )
            for setting, noise in (("clean", {}), ("noisy", NOISY)):
                cfg = ExperimentConfig(
                    **src,
                    labeled_size=L,
                    pool_size=U,
                    budget=1,
                    strategies=("lc",),
                    seeds=(0,),
                    n_jobs=args.n_jobs,
                    **noise,
                )
                clean = _clean_proba(task, model="lightgbm", n_jobs=args.n_jobs) if noise else None
                split = _Seed(task, cfg.check(), 0, clean)
                labeled = LabeledSet(task.X_train[split.L], split.y_obs[split.L], split.L)
                pool = PoolChunk(split.U, X=task.X_train[split.U])
                times, fits = {}, {}
                for r in range(args.repeats):
                    for name, (base, kw) in variants(args.n_jobs).items():
                        s = make_strategy(base, random_state=r, n_jobs=args.n_jobs, **kw)
                        t = time.perf_counter()
                        s.fit(labeled)
                        s.score(pool)
                        times.setdefault(name, []).append(time.perf_counter() - t)
                        fits.setdefault(name, []).append(s.n_fits_)
                    # hw's dirty-data step on the training set, after labeling (timed on L: not part of selection)
                    step = make_strategy("hw", random_state=r, n_jobs=args.n_jobs).make_dirty_filter()
                    t = time.perf_counter()
                    step(labeled.X, labeled.y, random_state=r)
                    times.setdefault("hw's cleaning of L (training, not selection)", []).append(time.perf_counter() - t)
                    fits.setdefault("hw's cleaning of L (training, not selection)", []).append(step.n_fits_)
                qbc = float(np.median(times["qbc"]))
                for name in times:
                    med = float(np.median(times[name]))
                    per_repeat = "/".join(map(str, fits[name]))
                    rows.append(f"| {ds}-{setting} | {name} | {med:.2f} | {med / qbc:.2f} | {per_repeat} |")
                    records.append(
                        {
                            "setting": f"{ds}-{setting}",
                            "labeled": L,
                            "pool": U,
                            "run": name,
                            "seconds": times[name],
                            "median_seconds": med,
                            "median_over_qbc": med / qbc,
                            "model_fits": fits[name],
                        }
                    )
                print("\n".join(rows[-len(times) :]), flush=True)
    header = "| setting | run | median s | / qbc | model fits per repeat |\n|---|---|---:|---:|---|"
    print(header)
    print("\n".join(rows))
    command = f"python benchmarks/hw_cost.py --n-jobs {args.n_jobs} --repeats {args.repeats} --sets {args.sets}"
    seconds = time.perf_counter() - started
    machine = f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}"
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(
        json.dumps({"command": command, "machine": machine, "seconds": seconds, "rows": records}, indent=2) + "\n"
    )
    (OUT / "results.md").write_text(
        f"# HW's selection cost beside QBC's\n\nCommand: `{command}`  \nMachine: {machine}; total {seconds:.0f} s. "
        "Median seconds of fit + score of the pool over the repeats, run in turn; `/ qbc` is the median over "
        "QBC's median.\n\n" + header + "\n" + "\n".join(rows) + "\n"
    )
    print(f"wrote {OUT / 'results.json'} and results.md ({seconds:.0f} s)")


if __name__ == "__main__":
    main()

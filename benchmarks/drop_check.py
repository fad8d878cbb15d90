"""The dirty-data step's held-out check of a drop: chosen from every row, or repeated inside each training fold.

    nice -n 5 python benchmarks/drop_check.py [--seeds 4]

The adaptive rule keeps a proposed drop only when models trained without the dropped rows rank held-out
labels better (paired-bootstrap z above 2.33). Two ways to choose what the check's models leave out:

  leaky   the drop the detection proposed from every row's out-of-fold probabilities
          (``held_out_check``): the kept rows are those that agree with the rest of the data, the check's
          held-out rows included
  nested  the detection repeated inside each training fold of the check, from those rows alone
          (``nested_held_out_check``, what ``DirtyDataFilter`` runs)

on clean labels and with 10% of the labels flipped at random, for a two-class synthetic set (3,000 rows, 30%
minority, ``make_classification``) and scikit-learn's digits (8 against the rest, 1,797 rows), with the
step's default model (the cheap LightGBM) and a tree with small leaves (a model wrong labels hurt).
Figures: z of both checks, whether each would keep the drop, rows dropped and the share of them that were
flipped. Results: benchmarks/results/drop_check/results.json (this run only).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np

from activemine.data.files import atomic_path
from activemine.dirty import DirtyDataFilter, held_out_check, nested_held_out_check
from activemine.dirty.heldout import Z_DROP
from activemine.experiments.noise import inject_label_noise

RESULTS = Path(__file__).resolve().parent / "results" / "drop_check" / "results.json"


def datasets(seed: int):
    from sklearn.datasets import load_digits, make_classification

    X, y = make_classification(
        n_samples=3000,
        n_features=12,
        n_informative=6,
        n_redundant=2,
        weights=[0.7],
        class_sep=1.0,
        flip_y=0.0,
        random_state=seed,
    )
    yield "synthetic", X.astype(np.float32), y
    d = load_digits()
    yield "digits", d.data.astype(np.float32), (d.target == 8).astype(int)


def models():
    from sklearn.tree import DecisionTreeClassifier

    yield "fast", "fast"
    yield "tree", DecisionTreeClassifier(min_samples_leaf=5, random_state=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    runs = []
    started = time.perf_counter()
    for seed in range(args.seeds):
        for data, X, y in datasets(seed):
            for noise in (0.0, 0.1):
                observed, flipped = (
                    inject_label_noise(y, noise, random_state=seed) if noise else (y, np.zeros(y.size, bool))
                )
                for name, model in models():
                    step = DirtyDataFilter(model=model, rule="target")  # the proposal, made from every row
                    keep = step(X, observed, random_state=seed)
                    classes = np.unique(observed)
                    if keep.all():
                        leaky = nested = (float("nan"), float("nan"))
                    else:
                        leaky = held_out_check(model, X, observed, keep, folds=3, seed=seed, classes=classes)
                        proposal = functools.partial(DirtyDataFilter(model=model)._proposal, model=model)
                        nested = nested_held_out_check(
                            model, X, observed, proposal, folds=3, seed=seed, classes=classes
                        )
                    run = {
                        "data": data,
                        "seed": seed,
                        "noise": noise,
                        "model": name,
                        "proposed": int((~keep).sum()),
                        "proposed_flipped_share": float(flipped[~keep].mean()) if (~keep).any() else 0.0,
                        "leaky_z": float(leaky[1]),
                        "nested_z": float(nested[1]),
                        "leaky_keeps_drop": bool(leaky[1] > Z_DROP),
                        "nested_keeps_drop": bool(nested[1] > Z_DROP),
                    }
                    runs.append(run)
                    print(
                        f"{data:9s} seed {seed} noise {noise:.1f} {name:4s}: proposed {run['proposed']:4d} "
                        f"({run['proposed_flipped_share']:.0%} flipped)  z leaky {run['leaky_z']:6.2f}  "
                        f"nested {run['nested_z']:6.2f}",
                        flush=True,
                    )
    summary = {}
    for noise in (0.0, 0.1):
        for name in ("fast", "tree"):
            sel = [r for r in runs if r["noise"] == noise and r["model"] == name and r["proposed"]]
            key = f"noise {noise:.1f}, {name}"
            summary[key] = {
                "runs": len(sel),
                "leaky_keeps": sum(r["leaky_keeps_drop"] for r in sel),
                "nested_keeps": sum(r["nested_keeps_drop"] for r in sel),
                "leaky_median_z": float(np.median([r["leaky_z"] for r in sel])) if sel else None,
                "nested_median_z": float(np.median([r["nested_z"] for r in sel])) if sel else None,
            }
            print(
                f"{key}: drop kept leaky {summary[key]['leaky_keeps']}/{len(sel)}, nested {summary[key]['nested_keeps']}/{len(sel)}"
            )
    out = {
        "command": "nice -n 5 python benchmarks/drop_check.py " + " ".join(sys.argv[1:]),
        "z_drop": Z_DROP,
        "runs": runs,
        "summary": summary,
        "seconds": time.perf_counter() - started,
    }
    with atomic_path(RESULTS) as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

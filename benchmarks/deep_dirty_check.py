"""The dirty-data check with a network: which out-of-fold method finds the wrong labels, at what cost.

Fashion-MNIST shirt against the rest, from the PNG files of ``benchmarks/deep_images.py`` (written
there once), read through ``activemine.data.images``. Per seed: L = 2,000 images drawn from the
first ``--universe`` training files, 10% ambiguity-weighted noise on L
(``activemine.experiments.noise.inject_label_noise(kind="ambiguous")``, the ambiguity from
out-of-fold probabilities of a small LightGBM on the clean labels, as in ``deep_images.py``).
The dirty-data step (:class:`activemine.dirty.DirtyDataFilter`, 3 folds, ``rule="target"``,
no soft labels: the detection alone) runs with each way of getting L's out-of-fold probabilities:

* ``refit-fast``: the default, the small LightGBM on the 784 pixels, 3 folds;
* ``refit-network``: the network itself out of fold with fewer epochs (``--refit-epochs``), 3 folds;
* ``embedding-head``: the network trained once on all of L (``--epochs``), a logistic-regression
  head out of fold on its penultimate layer (128 dims);
* ``embedding-head-1ep``: the same after one epoch (a network that has had less time to fit the
  wrong labels).

For the two ``embedding-head`` methods the network is trained first and its embedding handed to the
step, as HW hands it the strong network's: ``seconds`` counts both, ``step_seconds`` the head alone
(what the check adds when the network is trained anyway).

For each: precision and recall of the suspects against the rows truly flipped, the same for the
proposed drop, the AUC of the label-quality score at ranking the flipped rows first, the model
fits (network fits apart) and the seconds of the step. The network is the small CNN of
``deep_images.py`` (width 16, batch 64, Adam 2e-3, one torch thread).

    nice -n 5 python benchmarks/deep_dirty_check.py --seeds 0,1,2 --out benchmarks/results/deep_dirty_check
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_images import POSITIVE, read_pngs, write_pngs

from activemine.dirty import DirtyDataFilter, out_of_fold_proba
from activemine.experiments.noise import inject_label_noise
from activemine.metrics import roc_auc
from activemine.progress import log_line

METHODS = ("refit-fast", "refit-network", "embedding-head", "embedding-head-1ep")


def network(args, seed: int, epochs: int):
    from activemine.deep import TorchClassifier, small_cnn

    # the recipe its recorded figures were measured with: a constant rate
    return TorchClassifier(
        functools.partial(small_cnn, width=16),
        epochs=epochs,
        batch_size=64,
        lr=2e-3,
        schedule="constant",
        n_jobs=1,
        random_state=seed,
        predict_batch_size=256,
    )


def step_for(method: str, args, seed: int) -> DirtyDataFilter:
    common = dict(rule="target", soften=False, folds=3, n_jobs=1)
    if method == "refit-fast":
        return DirtyDataFilter(model="fast", **common)
    if method == "refit-network":
        return DirtyDataFilter(model=network(args, seed, args.refit_epochs), **common)
    epochs = 1 if method == "embedding-head-1ep" else args.epochs
    return DirtyDataFilter(model=network(args, seed, epochs), oof_method="embedding-head", **common)


def share(a: np.ndarray, b: np.ndarray) -> float:
    """``mean(b[a])``: the share of the rows marked by ``a`` that ``b`` marks (NaN when ``a`` marks none)."""
    return float(b[a].mean()) if a.any() else float("nan")


def run_seed(args, seed: int, X, y_true, clean_proba) -> list[dict]:
    rows = np.sort(np.random.default_rng([seed, 11]).permutation(y_true.size)[: args.labeled])
    y_obs, flipped = inject_label_noise(
        y_true[rows], args.noise, kind="ambiguous", proba=clean_proba[rows], random_state=seed
    )
    y_obs, flipped = np.asarray(y_obs), np.asarray(flipped, dtype=bool)
    out = []
    for method in args.methods:
        step = step_for(method, args, seed)
        network_seconds, given = 0.0, {}
        if step.oof_method == "embedding-head":
            # the network trained on L once, as HW trains its strong network, and its embedding handed to the
            # step (HW does the same): the step's own seconds are then the head's alone
            from activemine.dirty import network_embeddings

            t0 = time.perf_counter()
            given["embeddings"] = network_embeddings(step.model, X[rows], y_obs, random_state=seed, n_jobs=1)
            network_seconds = time.perf_counter() - t0
        step(X[rows], y_obs, random_state=seed, **given)
        report = step.report_
        suspect, dropped = report.suspect, ~report.keep
        out.append(
            {
                "seed": seed,
                "method": method,
                "n_labeled": int(rows.size),
                "flipped": int(flipped.sum()),
                "suspects": int(suspect.sum()),
                "suspect_precision": share(suspect, flipped),
                "suspect_recall": share(flipped, suspect),
                "dropped": int(dropped.sum()),
                "drop_precision": share(dropped, flipped),
                "drop_recall": share(flipped, dropped),
                "quality_auc": float(roc_auc(flipped.astype(int), -report.label_quality)),
                "dirty_share_estimate": float(report.dirty_share_before),
                "oof_fits": int(report.extra["oof_fits"]),
                # networks trained: the one that embeds L, or the out-of-fold networks of refit-network
                "network_fits": int(report.extra["network_fits"])
                + int(bool(given))
                + (int(report.extra["oof_fits"]) if method == "refit-network" else 0),
                "network_seconds": network_seconds,
                "step_seconds": float(report.extra["seconds"]),
                "seconds": network_seconds + float(report.extra["seconds"]),
            }
        )
        r = out[-1]
        log_line(
            f"seed {seed} {method}: suspects {r['suspects']} (precision {r['suspect_precision']:.2f}, recall "
            f"{r['suspect_recall']:.2f}), quality AUC {r['quality_auc']:.3f}, {r['oof_fits']} fits + "
            f"{r['network_fits']} network fit(s), {r['seconds']:.1f} s ({r['step_seconds']:.1f} s without the network)"
        )
    return out


def summarize(runs: list[dict]) -> str:
    lines = [
        "| method | suspects | precision | recall | drop precision | drop recall | quality AUC | fits | network fits "
        "| seconds | seconds without the network fit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in dict.fromkeys(r["method"] for r in runs):
        rs = [r for r in runs if r["method"] == method]

        def mean(key, rs=rs):
            return float(np.nanmean([r[key] for r in rs]))

        def sd(key, rs=rs):
            return float(np.nanstd([r[key] for r in rs]))

        lines.append(
            f"| {method} | {mean('suspects'):.0f} | {mean('suspect_precision'):.3f} ± {sd('suspect_precision'):.3f} | "
            f"{mean('suspect_recall'):.3f} ± {sd('suspect_recall'):.3f} | {mean('drop_precision'):.3f} | "
            f"{mean('drop_recall'):.3f} | {mean('quality_auc'):.3f} ± {sd('quality_auc'):.3f} | "
            f"{mean('oof_fits'):.0f} | {mean('network_fits'):.0f} | {mean('seconds'):.1f} | {mean('step_seconds'):.1f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--universe", type=int, default=20_000, help="training images written as files")
    parser.add_argument("--labeled", type=int, default=2_000)
    parser.add_argument("--noise", type=float, default=0.10)
    parser.add_argument("--epochs", type=int, default=4, help="epochs of the network that embeds L")
    parser.add_argument("--refit-epochs", type=int, default=2, help="epochs of each out-of-fold network")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/deep_dirty_check"))
    args = parser.parse_args(argv)
    args.methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(args.methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; expected some of {list(METHODS)}")
    started = time.perf_counter()
    root = write_pngs(args.universe)
    X, y10 = read_pngs(root / "train")
    X, y10 = X[: args.universe], y10[: args.universe]
    y_true = (y10 == POSITIVE).astype(np.int64)
    clean_proba = out_of_fold_proba("fast", X, y_true, 2, seed=12345, n_jobs=1)  # ambiguity for the noise
    log_line(f"{len(y_true)} images ready in {time.perf_counter() - started:.0f} s")
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        runs += run_seed(args, seed, X, y_true, clean_proba)
    args.out.mkdir(parents=True, exist_ok=True)
    doc = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
    }
    tmp = args.out / ".results.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, args.out / "results.json")
    (args.out / "summary.md").write_text(summarize(runs) + "\n")
    print(summarize(runs))
    print(f"done in {doc['seconds']:.0f} s")


if __name__ == "__main__":
    main()

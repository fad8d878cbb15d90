"""Which early snapshot makes a good weak model for HW: least confidence of the network after epoch e.

The setting of ``benchmarks/deep_images.py`` (its PNG files, split, noise, network and final fit): per
seed the network is trained on L with snapshots after the epochs in ``--weak-epochs``; HW (without the
dirty-data step) selects B by each snapshot's least confidence, and the strong network's least
confidence (``lc``) selects a batch too; a final network on L + B is scored on the test images.
Writes ``results.json`` (``{"runs": [...]}``) under ``--out``.

    nice -n 5 python benchmarks/deep_weak_model.py --seeds 0,1,2 --weak-epochs 1,2,4 \\
        --out benchmarks/results/deep_weak_model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_images import POSITIVE, cnn, evaluate, read_pngs, select, write_pngs

from activemine.data import LabeledSet
from activemine.experiments.noise import inject_label_noise
from activemine.progress import log_line


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default="clean,noisy")
    parser.add_argument("--weak-epochs", default="1,2,4")
    parser.add_argument("--universe", type=int, default=20_000)
    parser.add_argument("--labeled", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=6_000)
    parser.add_argument("--budget", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--schedule", default="onecycle")
    parser.add_argument("--augment", default="none")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--test-size", type=int, default=5_000)
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/deep_weak_model"))
    args = parser.parse_args(argv)
    weak_epochs = [int(e) for e in args.weak_epochs.split(",")]
    started = time.perf_counter()
    root = write_pngs(args.universe)
    X, y10 = read_pngs(root / "train")
    X_test, y10_test = read_pngs(root / "test")
    X_test, y10_test = X_test[: args.test_size], y10_test[: args.test_size]
    y_true, y_test = (y10 == POSITIVE).astype(np.int64), (y10_test == POSITIVE).astype(np.int64)
    runs = []
    for setting in args.settings.split(","):
        if setting == "noisy":
            from activemine.dirty.oof import out_of_fold_proba

            clean_proba = out_of_fold_proba("fast", X, y_true, 2, seed=12345, n_jobs=args.n_jobs)
        for seed in [int(s) for s in args.seeds.split(",")]:
            y_obs = y_true
            if setting == "noisy":
                y_obs, _ = inject_label_noise(y_true, 0.10, kind="ambiguous", proba=clean_proba, random_state=seed)
                y_obs = np.asarray(y_obs)
            order = np.random.default_rng([seed, 7]).permutation(y_obs.size)
            L = np.sort(order[: args.labeled])
            U = np.sort(order[args.labeled : args.labeled + args.pool])
            labeled = LabeledSet(X[L], y_obs[L], L)
            strong = cnn(args, seed, snapshot_epochs=tuple(weak_epochs)).fit(X[L], y_obs[L])
            proba = strong.predict_proba(X[U])
            batches = {"lc": select("lc", labeled, U, args.budget, seed, proba=proba)}
            weak_scores = {}
            for e in weak_epochs:
                snap = strong.snapshot(e)
                weak_scores[e] = evaluate(snap, X_test, y_test)
                batches[f"hw-weak-epoch-{e}"] = select(
                    "hw", labeled, U, args.budget, seed, proba=proba, weak_proba=snap.predict_proba(X[U])
                )
            for name, batch in batches.items():
                rows = np.concatenate([L, batch])
                tpr, auc = evaluate(cnn(args, seed).fit(X[rows], y_obs[rows]), X_test, y_test)
                e = int(name.rsplit("-", 1)[1]) if name.startswith("hw") else args.epochs
                w_tpr, w_auc = weak_scores.get(e, evaluate(strong, X_test, y_test))
                runs.append(
                    dict(
                        setting=setting,
                        seed=seed,
                        strategy=name,
                        selecting_epoch=e,
                        selecting_tpr=round(w_tpr, 3),
                        selecting_auc=round(w_auc, 5),
                        n_labeled=int(rows.size),
                        tpr_at_1pct_fpr=round(tpr, 3),
                        auc=round(auc, 5),
                    )
                )
                log_line(f"{setting} seed {seed} {name}: TPR {tpr:.2f} AUC {auc:.4f} (selecting model TPR {w_tpr:.2f})")
            args.out.mkdir(parents=True, exist_ok=True)
            tmp = args.out / ".results.json.tmp"
            tmp.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1), "runs": runs}, indent=1))
            os.replace(tmp, args.out / "results.json")
    for setting in args.settings.split(","):
        for name in dict.fromkeys(r["strategy"] for r in runs):
            rs = [r for r in runs if r["setting"] == setting and r["strategy"] == name]
            t = np.array([r["tpr_at_1pct_fpr"] for r in rs])
            print(
                f"| {setting} | {name} | {t.mean():.2f} ± {t.std(ddof=1) if t.size > 1 else 0:.2f} "
                f"| {np.mean([r['auc'] for r in rs]):.4f} | {np.mean([r['selecting_tpr'] for r in rs]):.2f} "
                f"| {np.mean([r['selecting_auc'] for r in rs]):.4f} |"
            )


if __name__ == "__main__":
    main()

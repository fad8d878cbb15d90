"""The network's training recipe: learning-rate schedule, augmentation, epochs and width, measured.

Trains :class:`activemine.deep.TorchClassifier` with the default small CNN under
each ``--config`` on a seeded random sample of labels and scores a held-out set:
TPR at 1% FPR and AUC, seconds per fit. Tasks:

* ``fashion-shirt``: Fashion-MNIST (Debian's ``dataset-fashion-mnist``) shirt against
  the rest, as in ``benchmarks/deep_images.py``: labels drawn from the first 20,000
  training images with that benchmark's split (seed ``[seed, 7]``), the first 5,000
  test images scored;
* ``digits-8``: scikit-learn's 8x8 digits, 8 against the rest (activemine's
  ``digits`` split), a check that a recipe chosen on one image set does not hurt
  another.

A config is ``name:key=value,...`` with TorchClassifier parameters plus ``width``
(channels of the CNN's first convolution)::

    nice -n 5 python benchmarks/deep_recipe.py --task fashion-shirt --n-labeled 3000,8000 \\
        --config "constant:schedule=constant,lr=2e-3" --config "onecycle:schedule=onecycle,lr=5e-3" \\
        --out benchmarks/results/deep_recipe

Writes ``results.json`` (``{"runs": [...]}``, appended to per task) and prints a table.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

import numpy as np

from activemine.data.datasets import load_dataset
from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.progress import log_line

DEFAULTS = {"epochs": 8, "batch_size": 64, "n_jobs": 1, "predict_batch_size": 256}


def load(task: str):
    if task == "fashion-shirt":
        d = load_dataset("fashion-mnist")
        X, y = np.asarray(d.X_train[:20_000], dtype=np.float32), np.asarray(d.y_train[:20_000])
        Xt, yt = np.asarray(d.X_test[:5_000], dtype=np.float32), np.asarray(d.y_test[:5_000])
        positive = 6
    elif task == "digits-8":
        d = load_dataset("digits")
        X, y = np.asarray(d.X_train, dtype=np.float32), np.asarray(d.y_train)
        Xt, yt = np.asarray(d.X_test, dtype=np.float32), np.asarray(d.y_test)
        positive = 8
    else:
        raise SystemExit(f"unknown task {task!r}; expected fashion-shirt or digits-8")
    scale = float(X.max())
    return X / scale, (y == positive).astype(np.int64), Xt / scale, (yt == positive).astype(np.int64)


def parse_config(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    params = dict(DEFAULTS)
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return name, params


def fit_and_score(params: dict, seed: int, X, y, Xt, yt) -> dict:
    from activemine.deep import TorchClassifier, small_cnn

    params = dict(params)
    network = functools.partial(small_cnn, width=params.pop("width")) if "width" in params else small_cnn
    started = time.perf_counter()
    model = TorchClassifier(network, random_state=seed, **params).fit(X, y)
    seconds = time.perf_counter() - started
    p = model.predict_proba(Xt)[:, 1]
    return dict(
        tpr_at_1pct_fpr=round(100 * float(tpr_at_fpr(yt, p, 0.01)), 3),
        auc=round(float(roc_auc(yt, p)), 5),
        fit_seconds=round(seconds, 2),
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-shirt")
    parser.add_argument("--n-labeled", default="3000", help="label counts, comma-separated (0: every training row)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--config", action="append", required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/deep_recipe"))
    args = parser.parse_args(argv)
    X, y, Xt, yt = load(args.task)
    configs = [parse_config(c) for c in args.config]
    runs = []
    for n in [int(s) for s in args.n_labeled.split(",")]:
        for seed in [int(s) for s in args.seeds.split(",")]:
            rows = np.sort(np.random.default_rng([seed, 7]).permutation(y.size)[: n or y.size])
            for name, params in configs:
                result = fit_and_score(params, seed, X[rows], y[rows], Xt, yt)
                runs.append(
                    dict(task=args.task, config=name, params=params, n_labeled=int(rows.size), seed=seed, **result)
                )
                log_line(
                    f"{args.task} {rows.size} seed {seed} {name}: TPR {result['tpr_at_1pct_fpr']:.2f} AUC {result['auc']:.4f} ({result['fit_seconds']:.0f} s)"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    old = json.loads(path.read_text())["runs"] if path.exists() else []
    keep = [r for r in old if r["task"] != args.task or r["config"] not in {c for c, _ in configs}]
    tmp = args.out / ".results.json.tmp"
    tmp.write_text(json.dumps({"runs": keep + runs}, indent=1))
    os.replace(tmp, path)
    print("| task | labels | config | TPR at 1% FPR | AUC | fit s |\n|---|---|---|---|---|---|")
    for n in sorted({r["n_labeled"] for r in runs}):
        for name, _ in configs:
            rs = [r for r in runs if r["n_labeled"] == n and r["config"] == name]
            tpr = np.array([r["tpr_at_1pct_fpr"] for r in rs])
            print(
                f"| {args.task} | {n} | {name} | {tpr.mean():.2f} ± {tpr.std(ddof=1) if tpr.size > 1 else 0:.2f} "
                f"| {np.mean([r['auc'] for r in rs]):.4f} | {np.mean([r['fit_seconds'] for r in rs]):.1f} |"
            )


if __name__ == "__main__":
    main()

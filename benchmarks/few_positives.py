"""The default LightGBM on a handful of positives, and on a large separable rare class.

Two cases, each with the default model (``min_child_weight`` scaled to the rarest class, :func:`activemine.models.minority_child_weight`)
and with the same parameters and a fixed ``min_child_weight=1`` (the default until 2026-12):

* **few positives**: 2,000 training rows holding k = 1, 2, 3, 5 or 8 positives (seeds 0 and 1), 30 Gaussian
  features, positives shifted by 3 along a fixed direction; test set 20,000 rows with 60 positives;
* **large separable rare class**: the 0.4% class of ``tests/test_models.py`` (shift 8) at 2,000 and 43,500
  training rows, test 20,000 rows: where an unregularized LightGBM collapsed (TPR 32, AUC 0.66 at 43,500 rows).

Prints a table and writes ``benchmarks/results/few_positives/results.json``: AUC, TPR at 1% FPR (%), the
number of trees and the largest raw score per model.

    python benchmarks/few_positives.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.models import LIGHTGBM_DEFAULTS, make_model

OUT = Path(__file__).resolve().parent / "results" / "few_positives"


def few(n: int, k: int, seed: int, shift: float = 3.0):
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=np.int64)
    y[rng.choice(n, k, replace=False)] = 1
    X = rng.normal(size=(n, 30))
    w = np.random.default_rng(7).normal(size=30)
    X[y == 1] += shift * w / np.linalg.norm(w)
    return X, y


def separable_rare(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.004).astype(np.int64)
    X = rng.normal(size=(n, 30))
    w = np.random.default_rng(7).normal(size=30)
    X[y == 1] += 8.0 * w / np.linalg.norm(w)
    return X, y


def models():
    from lightgbm import LGBMClassifier

    return {
        "default": lambda: make_model("lightgbm", random_state=0, n_jobs=1),
        "fixed min_child_weight 1": lambda: LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=0, n_jobs=1),
    }


def figures(model, X, y, X_test, y_test) -> dict:
    model.fit(X, y)
    p = model.predict_proba(X_test)[:, 1]
    raw = model.predict_proba(X_test, raw_score=True)
    return {
        "auc": round(roc_auc(y_test, p), 4),
        "tpr": round(100 * tpr_at_fpr(y_test, p, 0.01), 2),
        "trees": int(model.booster_.num_trees()),
        "max_raw": round(float(np.abs(raw).max()), 2),
        "min_child_weight": float(getattr(model, "min_child_weight_", model.min_child_weight)),
    }


def main() -> None:
    started = time.perf_counter()
    rows = []
    X_test, y_test = few(20_000, 60, 99)
    for name, build in models().items():
        for k in (1, 2, 3, 5, 8):
            for seed in (0, 1):
                X, y = few(2_000, k, seed)
                rows.append(
                    {
                        "case": "few positives",
                        "model": name,
                        "positives": k,
                        "seed": seed,
                        **figures(build(), X, y, X_test, y_test),
                    }
                )
    X_test, y_test = separable_rare(20_000, 99)
    for name, build in models().items():
        for n in (2_000, 43_500):
            X, y = separable_rare(n, 1)
            rows.append(
                {
                    "case": "separable 0.4%",
                    "model": name,
                    "rows": n,
                    "positives": int(y.sum()),
                    **figures(build(), X, y, X_test, y_test),
                }
            )
    lines = [
        "| case | model | positives | rows/seed | AUC | TPR@1% FPR | trees | max raw score |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['model']} | {r['positives']} | {r.get('rows', r.get('seed'))} | {r['auc']:.3f} | "
            f"{r['tpr']:.1f} | {r['trees']} | {r['max_raw']:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {"command": "python benchmarks/few_positives.py", "seconds": time.perf_counter() - started, "rows": rows}
    (OUT / "results.json").write_text(json.dumps(doc, indent=1))
    (OUT / "results.md").write_text(table + "\n")


if __name__ == "__main__":
    main()

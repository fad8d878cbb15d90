"""Probe: training-side variants on Fashion-MNIST L + lc's batch (test TPR at 1% FPR, mean of 2 models).

Variants: plain (given labels), soft (alpha 0.8, 3-fold out-of-fold targets), each also with
min_child_samples=100 (mcs100) or num_leaves=15 (nl15), soft with alpha 0.95, and bag5 (the mean of 5
differently seeded models' probabilities, plain labels).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from activemine.experiment import _Seed
from activemine.metrics import tpr_at_fpr
from _probe import fit_soft, lc_ranking, lgbm, load_setting, oof_p

EXTRA = {"": {}, "mcs100": {"min_child_samples": 100}, "nl15": {"num_leaves": 15}}

names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
variants = sys.argv[3].split(",")
for name in names:
    cfg, task, cp = load_setting(name)
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        batch = lc_ranking(task, sp, y, seed)[:5000]
        rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
        oof = oof_p(X, yo, seed) if any(v.startswith("soft") for v in variants) else None
        for v in variants:
            kind, _, tag = v.partition("-")
            extra = EXTRA[tag] if tag in EXTRA else {}
            def score(r):
                s = seed + 100003 * r
                if kind == "plain":
                    return lgbm(s, extra).fit(X, yo).predict_proba(task.X_test)[:, 1]
                if kind == "bag5":
                    return np.mean([lgbm(s + 17 * b, extra).fit(X, yo).predict_proba(task.X_test)[:, 1] for b in range(5)], axis=0)
                a = 0.95 if tag == "a95" else 0.8
                return fit_soft(X, (1 - a) * yo + a * oof, s, extra).predict_proba(task.X_test)[:, 1]
            tpr = np.mean([tpr_at_fpr(task.y_test, score(r), 0.01) for r in range(2)])
            print(f"{name} seed {seed} {v:12s}: {100 * tpr:6.2f}", flush=True)

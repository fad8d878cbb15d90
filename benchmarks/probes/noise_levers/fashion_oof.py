"""Probe: better estimates of P(given | x) for the soft targets (Fashion-MNIST L + lc's batch).

The annotator's expected label as soft target gained 2.6 points over the given labels (more_labels.log), soft
targets from one 3-fold out-of-fold estimate 1.55: does a steadier estimate close the gap? Variants (test TPR at
1% FPR, mean of 2 models): a{alpha}-{folds}x{splits}: soft targets (1 - alpha) * given + alpha * the mean of
`splits` out-of-fold estimates of `folds` folds each.
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from activemine.experiment import _Seed
from _probe import fit_soft, lc_ranking, load_setting, oof_p, eval_tpr

seeds = [int(s) for s in sys.argv[1].split(",")]; variants = sys.argv[2].split(",")
cfg, task, cp = load_setting("fashion-noisy")
for seed in seeds:
    sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
    batch = lc_ranking(task, sp, y, seed)[:5000]
    rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
    cache = {}
    for v in variants:
        a, _, fs = v[1:].partition("-"); folds, splits = (int(t) for t in fs.split("x"))
        est = np.mean([cache.setdefault((folds, s), oof_p(X, yo, seed + 31 * s, folds)) for s in range(splits)], axis=0)
        t = (1 - float(a)) * yo + float(a) * est
        print(f"fashion-noisy seed {seed} {v:10s}: {100 * eval_tpr(task, lambda s: fit_soft(X, t, s), seed):6.2f}", flush=True)

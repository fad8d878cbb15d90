"""Probe: better estimates of P(given | x) for the soft targets (Fashion-MNIST L + lc's batch).

The annotator's expected label as soft target gained 2.6 points over the given labels (more_labels.log), soft
targets from one 3-fold out-of-fold estimate 1.55: does a steadier estimate close the gap? Variants (test TPR at
1% FPR, mean of 2 models): a{alpha}-{folds}x{splits}: soft targets (1 - alpha) * given + alpha * the mean of
`splits` out-of-fold estimates of `folds` folds each.
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from label_efficiency import SETTINGS


def oof_p(X, y, folds, seed):
    out = np.zeros(y.size)
    for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)):
        out[te] = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 7 + f).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return out


def fit_soft(X, t, seed):
    n = t.size
    Xd = np.concatenate([X, X]); yd = np.r_[np.ones(n, int), np.zeros(n, int)]; wd = np.r_[t, 1 - t]; k = wd > 1e-6
    return LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(Xd[k], yd[k], sample_weight=wd[k])


seeds = [int(s) for s in sys.argv[1].split(",")]; variants = sys.argv[2].split(",")
_, setting = SETTINGS["fashion-noisy"]
cfg = ExperimentConfig(dataset="fashion-mnist", task="binary:6", labeled_size=15000, budget=5000, pool_size=45000, **setting)
task = load_task(cfg.dataset, cfg.task)
cp = _clean_proba(task, model="lightgbm")
for seed in seeds:
    sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
    p = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(task.X_train[sp.L], y[sp.L]).predict_proba(task.X_train[sp.U])
    batch = sp.U[np.argsort(-(1 - p.max(axis=1)), kind="stable")[:5000]]
    rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
    cache = {}
    for v in variants:
        a, _, fs = v[1:].partition("-"); folds, splits = (int(t) for t in fs.split("x"))
        est = np.mean([cache.setdefault((folds, s), oof_p(X, yo, folds, seed + 31 * s)) for s in range(splits)], axis=0)
        t = (1 - float(a)) * yo + float(a) * est
        tpr = np.mean([tpr_at_fpr(task.y_test, fit_soft(X, t, seed + 100003 * r).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)])
        print(f"fashion-noisy seed {seed} {v:10s}: {100 * tpr:6.2f}", flush=True)

"""Probe: training-side variants on Fashion-MNIST L + lc's batch (test TPR at 1% FPR, mean of 2 models).

Variants: plain (given labels), soft (alpha 0.8, 3-fold out-of-fold targets), each also with
min_child_samples=100 (mcs100) or num_leaves=15 (nl15), soft with alpha 0.95, and bag5 (the mean of 5
differently seeded models' probabilities, plain labels).
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

EXTRA = {"": {}, "mcs100": {"min_child_samples": 100}, "nl15": {"num_leaves": 15}}


def lgbm(extra, seed):
    return LGBMClassifier(**{**LIGHTGBM_DEFAULTS, **extra}, random_state=seed)


def oof_p(X, y, seed):
    out = np.zeros(y.size)
    for f, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y)):
        out[te] = lgbm({}, seed + 7 + f).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return out


def fit_soft(X, y, t, extra, seed):
    Xd = np.concatenate([X, X]); yd = np.r_[np.ones(y.size, int), np.zeros(y.size, int)]; wd = np.r_[t, 1 - t]; k = wd > 1e-6
    return lgbm(extra, seed).fit(Xd[k], yd[k], sample_weight=wd[k])


names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
variants = sys.argv[3].split(",")
for name in names:
    dataset, setting = SETTINGS[name]
    cfg = ExperimentConfig(dataset="fashion-mnist", task="binary:6", labeled_size=15000, budget=5000, pool_size=45000, **setting)
    task = load_task(cfg.dataset, cfg.task)
    cp = _clean_proba(task, model="lightgbm") if setting else None
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        p = lgbm({}, seed).fit(task.X_train[sp.L], y[sp.L]).predict_proba(task.X_train[sp.U])
        batch = sp.U[np.argsort(-(1 - p.max(axis=1)), kind="stable")[:5000]]
        rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
        oof = oof_p(X, yo, seed) if any(v.startswith("soft") for v in variants) else None
        for v in variants:
            kind, _, tag = v.partition("-")
            extra = EXTRA[tag] if tag in EXTRA else {}
            def score(r):
                s = seed + 100003 * r
                if kind == "plain":
                    return lgbm(extra, s).fit(X, yo).predict_proba(task.X_test)[:, 1]
                if kind == "bag5":
                    return np.mean([lgbm(extra, s + 17 * b).fit(X, yo).predict_proba(task.X_test)[:, 1] for b in range(5)], axis=0)
                a = 0.95 if tag == "a95" else 0.8
                return fit_soft(X, yo, (1 - a) * yo + a * oof, extra, s).predict_proba(task.X_test)[:, 1]
            tpr = np.mean([tpr_at_fpr(task.y_test, score(r), 0.01) for r in range(2)])
            print(f"{name} seed {seed} {v:12s}: {100 * tpr:6.2f}", flush=True)

"""Probe: does a different batch (not lc's top) buy cleaner, more useful labels under ambiguity-weighted noise?

For each seed of the benchmark setting: a LightGBM on L's given labels scores U; batches of 5,000 are drawn as
lc (top least confidence), band (ranks S..S+5,000), top3x (5,000 uniformly from the top 15,000), easy20 (4,000
top + 1,000 uniform from the rest), softsel (lc's top by a model trained on L's soft targets). The final model is
trained on L + batch with the given labels (plain) and with soft targets alpha 0.8 (soft), no check; printed:
wrong labels in the batch and test TPR at 1% FPR (mean of 2 models).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from _rare import rare_path
from label_efficiency import SETTINGS

A = 0.8


def oof_p(X, y, seed):
    out = np.zeros(y.size)
    for f, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y)):
        out[te] = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 7 + f).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return out


def fit_soft(X, y, t, seed):
    Xd = np.concatenate([X, X]); yd = np.r_[np.ones(y.size, int), np.zeros(y.size, int)]; wd = np.r_[t, 1 - t]; k = wd > 1e-6
    return LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(Xd[k], yd[k], sample_weight=wd[k])


names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
variants = sys.argv[3].split(",") if len(sys.argv) > 3 else ["lc", "band2500", "band5000", "top3x", "easy20", "softsel"]
for name in names:
    dataset, setting = SETTINGS[name]
    if dataset == "fashion":
        cfg = ExperimentConfig(dataset="fashion-mnist", task="binary:6", labeled_size=15000, budget=5000, pool_size=45000, **setting)
    else:
        cfg = ExperimentConfig(dataset=str(rare_path()), task="binary:pos", labeled_size=15000, budget=5000, pool_size=45000, split_col="split", **setting)
    task = load_task(cfg.dataset, cfg.task, split_col=cfg.split_col) if dataset != "fashion" else load_task(cfg.dataset, cfg.task)
    cp = _clean_proba(task, model="lightgbm") if setting else None
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        XL, yL = task.X_train[sp.L], y[sp.L]
        p = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(XL, yL).predict_proba(task.X_train[sp.U])[:, 1]
        order = np.argsort(-(1 - np.maximum(p, 1 - p)), kind="stable")
        rng = np.random.default_rng(seed + 5)
        for v in variants:
            if v == "lc":
                pick = order[:5000]
            elif v.startswith("band"):
                s = int(v[4:]); pick = order[s:s + 5000]
            elif v == "top3x":
                pick = rng.choice(order[:15000], 5000, replace=False)
            elif v == "easy20":
                pick = np.r_[order[:4000], rng.choice(order[4000:], 1000, replace=False)]
            elif v == "softsel":
                tL = (1 - A) * yL + A * oof_p(XL, yL, seed)
                ps = fit_soft(XL, yL, tL, seed).predict_proba(task.X_train[sp.U])[:, 1]
                pick = np.argsort(-(1 - np.maximum(ps, 1 - ps)), kind="stable")[:5000]
            batch = sp.U[pick]
            rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
            wrong = int((y[batch] != task.y_train[batch]).sum())
            plain = np.mean([tpr_at_fpr(task.y_test, LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 100003 * r).fit(X, yo).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)])
            t_all = (1 - A) * yo + A * oof_p(X, yo, seed)
            soft = np.mean([tpr_at_fpr(task.y_test, fit_soft(X, yo, t_all, seed + 100003 * r).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)])
            print(f"{name} seed {seed} {v:9s}: batch wrong {wrong:5d}  plain {100*plain:6.2f}  soft {100*soft:6.2f}", flush=True)

"""Scratch: train the final model on soft targets (given label blended with out-of-fold p), L + lc's batch."""
import os, sys, json
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from pathlib import Path
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from _rare import rare_path
from label_efficiency import SETTINGS
rare = rare_path()
names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
ALPHAS = [0.0, 0.3, 0.5, 0.8]
res = {}
for name in names:
    dataset, setting = SETTINGS[name]
    src = {"dataset": "fashion-mnist", "task": "binary:6"} if dataset == "fashion" else {"dataset": str(rare), "task": "binary:pos", "split_col": "split"}
    cfg = ExperimentConfig(**src, labeled_size=15000, budget=5000, pool_size=45000, **setting)
    task = load_task(cfg.dataset, cfg.task, split_col=cfg.split_col)
    cp = _clean_proba(task, model="lightgbm") if setting else None
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        p = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(task.X_train[sp.L], y[sp.L]).predict_proba(task.X_train[sp.U])
        batch = sp.U[np.argsort(-(1 - p.max(axis=1)), kind="stable")[:5000]]
        rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
        oof = np.zeros(rows.size)
        for f, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, yo)):
            oof[te] = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 7 + f).fit(X[tr], yo[tr]).predict_proba(X[te])[:, 1]
        line = {"oof_auc_given": round(roc_auc_score(yo, oof), 4), "mean_abs_resid": round(float(np.mean(np.abs(yo - oof))), 4)}
        for a in ALPHAS:
            t = (1 - a) * yo + a * oof  # soft target p(pos)
            Xd = np.concatenate([X, X]); yd = np.r_[np.ones(rows.size, int), np.zeros(rows.size, int)]; wd = np.r_[t, 1 - t]
            keep = wd > 1e-6
            tp = []
            for r in range(2):
                s = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 100003 * r).fit(Xd[keep], yd[keep], sample_weight=wd[keep]).predict_proba(task.X_test)[:, 1]
                tp.append(tpr_at_fpr(task.y_test, s, 0.01))
            line[f"a{a}"] = round(100 * float(np.mean(tp)), 2)
        res[f"{name}/{seed}"] = line
        print(name, seed, line, flush=True)

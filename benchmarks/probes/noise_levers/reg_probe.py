"""Scratch: does stronger LightGBM regularization of the final model help under noise (L + lc's batch)?"""
import os, sys, json, time
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from pathlib import Path
from lightgbm import LGBMClassifier
from sklearn.metrics import roc_auc_score
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS, predict_proba_aligned
from activemine.metrics import tpr_at_fpr
from _rare import rare_path
from label_efficiency import write_rare_dataset, SETTINGS

CANDS = {
    "default": {},
    "mcs100": {"min_child_samples": 100},
    "leaves7": {"num_leaves": 7},
    "lr05_n200": {"learning_rate": 0.05},
    "lambda30": {"reg_lambda": 30.0},
    "n100": {"n_estimators": 100},
    "mcs300": {"min_child_samples": 300},
}
settings = sys.argv[1].split(",")
seeds = [int(s) for s in sys.argv[2].split(",")]
cands = sys.argv[3].split(",") if len(sys.argv) > 3 else list(CANDS)
rare = rare_path()
out = {}
for name in settings:
    dataset, setting = SETTINGS[name]
    src = {"dataset": "fashion-mnist", "task": "binary:6"} if dataset == "fashion" else {"dataset": str(rare), "task": "binary:pos", "split_col": "split"}
    cfg = ExperimentConfig(**src, labeled_size=15000, budget=5000, pool_size=45000, **setting)
    task = load_task(cfg.dataset, cfg.task, split_col=cfg.split_col)
    cp = _clean_proba(task, model="lightgbm") if setting else None
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp)
        y = sp.y_obs
        m0 = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(task.X_train[sp.L], y[sp.L])
        p = m0.predict_proba(task.X_train[sp.U])
        lc = 1 - p.max(axis=1)
        batch = sp.U[np.argsort(-lc, kind="stable")[:5000]]
        rows = np.concatenate([sp.L, batch])
        X, yy = task.X_train[rows], y[rows]
        wrong = int((yy != task.y_train[rows]).sum())
        line = {}
        for c in cands:
            t = []
            for r in range(2):
                est = LGBMClassifier(**{**LIGHTGBM_DEFAULTS, **CANDS[c]}, random_state=seed + 100003 * r).fit(X, yy)
                s = est.predict_proba(task.X_test)[:, 1]
                t.append(tpr_at_fpr(task.y_test, s, 0.01))
            line[c] = round(100 * float(np.mean(t)), 2)
        out[f"{name}/{seed}"] = line
        print(name, seed, "wrong", wrong, line, flush=True)

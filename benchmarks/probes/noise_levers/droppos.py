"""Scratch: drop the given minority-class rows of least out-of-fold p(given) (L + lc's batch), by share."""
import os, sys, json
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from pathlib import Path
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from _rare import rare_path
from label_efficiency import SETTINGS
rare = rare_path()
names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
SHARES = [0.0, 0.1, 0.2, 0.35, 0.5]
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
        rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]; yt = task.y_train[rows]
        oof = np.zeros(rows.size)
        for f, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, yo)):
            oof[te] = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 7 + f).fit(X[tr], yo[tr]).predict_proba(X[te])[:, 1]
        pos = np.flatnonzero(yo == 1); order = pos[np.argsort(oof[pos], kind="stable")]
        line = {"given_pos": int(pos.size), "wrong_pos": int((yt[pos] != 1).sum())}
        for s in SHARES:
            drop = order[: int(round(s * pos.size))]
            keep = np.ones(rows.size, bool); keep[drop] = False
            tp = [tpr_at_fpr(task.y_test, LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 100003 * r).fit(X[keep], yo[keep]).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)]
            line[f"d{s}"] = f"{100*np.mean(tp):.2f} ({int((yt[drop]!=1).sum())}/{drop.size} wrong)"
        print(name, seed, line, flush=True)

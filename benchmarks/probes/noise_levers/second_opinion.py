"""Probe: spend part of the budget on second opinions for rows of L instead of new samples (rare set).

Per seed: lc's batch of 5,000 (lc), or lc's top 5,000 - m plus a second label, from an independent annotator of
the same simulated kind (the benchmark's noise redrawn with another seed), for m rows of L:
  rank{m}: the m rows first in activemine.relabel.rank_for_relabel (3-fold out-of-fold LightGBM as prior);
  pos:     every given positive of L (m = their count).
Rows whose two labels disagree are left out of the final training. Test TPR at 1% FPR, mean of 2 models.
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed, _noisy_labels
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from activemine.relabel import rank_for_relabel
from _rare import rare_path
from label_efficiency import SETTINGS


def oof(X, y, seed):
    out = np.zeros((y.size, 2))
    for f, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y)):
        out[te] = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 7 + f).fit(X[tr], y[tr]).predict_proba(X[te])
    return out


names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]; variants = sys.argv[3].split(",")
for name in names:
    _, setting = SETTINGS[name]
    cfg = ExperimentConfig(dataset=str(rare_path()), task="binary:pos", split_col="split", labeled_size=15000, budget=5000,
                           pool_size=45000, **setting)
    task = load_task(cfg.dataset, cfg.task, split_col=cfg.split_col)
    cp = _clean_proba(task, model="lightgbm")
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        y2 = _noisy_labels(task, cfg, 20_000 + seed, cp) if setting else task.y_train
        XL, yL = task.X_train[sp.L], y[sp.L]
        p = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(XL, yL).predict_proba(task.X_train[sp.U])
        order = sp.U[np.argsort(-(1 - p.max(axis=1)), kind="stable")]
        P = oof(XL, yL, seed + 3)
        for v in variants:
            if v == "lc":
                second = np.array([], int)
            elif v == "pos":
                second = np.flatnonzero(yL == 1)
            else:
                m = int(v[4:])
                labels = np.c_[yL, np.full(yL.size, -1)]  # the given label, and a second annotator yet to label
                second = rank_for_relabel(labels, P, budget=m, k=2).order
            disagree = second[y2[sp.L[second]] != yL[second]]
            keepL = np.ones(sp.L.size, bool); keepL[disagree] = False
            batch = order[:5000 - second.size]
            rows = np.concatenate([sp.L[keepL], batch]); X = task.X_train[rows]; yo = y[rows]
            wrong_left = int((yo != task.y_train[rows]).sum())
            fixed = int((yL[disagree] != task.y_train[sp.L[disagree]]).sum())
            tpr = np.mean([tpr_at_fpr(task.y_test, LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 100003 * r).fit(X, yo).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)])
            print(f"{name} seed {seed} {v:8s}: second opinions {second.size:4d}, disagree {disagree.size:4d} (wrong {fixed:4d}), "
                  f"wrong labels left {wrong_left:5d}, TPR {100 * tpr:6.2f}", flush=True)

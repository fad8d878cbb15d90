import os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from pathlib import Path
from lightgbm import LGBMClassifier
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from _rare import rare_path
from label_efficiency import SETTINGS
rare = rare_path()
name = sys.argv[1]
dataset, setting = SETTINGS[name]
cfg = ExperimentConfig(dataset=str(rare), task="binary:pos", split_col="split", labeled_size=15000, budget=5000, pool_size=45000, **setting)
task = load_task(cfg.dataset, cfg.task, split_col=cfg.split_col)
cp = _clean_proba(task, model="lightgbm")
def ev(X, y, seed):
    t = []
    for r in range(2):
        s = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 100003 * r).fit(X, y).predict_proba(task.X_test)[:, 1]
        t.append(tpr_at_fpr(task.y_test, s, 0.01))
    return round(100 * float(np.mean(t)), 2)
for seed in [0, 1, 2]:
    sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
    p = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed).fit(task.X_train[sp.L], y[sp.L]).predict_proba(task.X_train[sp.U])
    batch = sp.U[np.argsort(-(1 - p.max(axis=1)), kind="stable")[:5000]]
    rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]; yt = task.y_train[rows]
    ok = yo == yt
    print(name, seed, "given pos", int((yo==1).sum()), "true pos", int((yt==1).sum()), "wrong pos", int(((yo==1)&~ok).sum()), "missed pos", int(((yt==1)&~ok).sum()),
          "as-is", ev(X, yo, seed), "oracle-drop", ev(X[ok], yo[ok], seed), "true", ev(X, yt, seed),
          "drop-given-pos-wrong", ev(X[~((yo==1)&~ok)], yo[~((yo==1)&~ok)], seed), "drop-missed", ev(X[~((yt==1)&~ok)], yo[~((yt==1)&~ok)], seed), flush=True)

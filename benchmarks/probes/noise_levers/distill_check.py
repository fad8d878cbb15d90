"""Scratch: would a held-out check on the GIVEN labels pick soft-label training (alpha 0.8) where it helps?"""
import os, sys
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
A = float(sys.argv[3]) if len(sys.argv) > 3 else 0.8
from _probe import fit_soft, oof_p  # noqa: E402
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
        h_plain = np.zeros(rows.size); h_soft = np.zeros(rows.size)
        for f, (tr, te) in enumerate(StratifiedKFold(3, shuffle=True, random_state=seed + 991).split(X, yo)):
            h_plain[te] = LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 50 + f).fit(X[tr], yo[tr]).predict_proba(X[te])[:, 1]
            t = (1 - A) * yo[tr] + A * oof_p(X[tr], yo[tr], seed + 13 * f)
            h_soft[te] = fit_soft(X[tr], t, seed + 50 + f).predict_proba(X[te])[:, 1]
        # paired bootstrap of AUC difference against the given labels
        rng = np.random.default_rng(seed); d = []
        for _ in range(100):
            i = rng.integers(0, rows.size, rows.size)
            if yo[i].min() == yo[i].max(): continue
            d.append(roc_auc_score(yo[i], h_soft[i]) - roc_auc_score(yo[i], h_plain[i]))
        gain = roc_auc_score(yo, h_soft) - roc_auc_score(yo, h_plain); z = gain / np.std(d)
        tg = 100 * (tpr_at_fpr(yo, h_soft, 0.01) - tpr_at_fpr(yo, h_plain, 0.01))
        # truth: held-out true labels, and the test set
        ttrue = 100 * (tpr_at_fpr(yt, h_soft, 0.01) - tpr_at_fpr(yt, h_plain, 0.01))
        print(f"{name} {seed}: given-label AUC gain {gain:+.4f} z {z:+.2f}, given TPR gain {tg:+.2f}; true-label held-out TPR gain {ttrue:+.2f}", flush=True)

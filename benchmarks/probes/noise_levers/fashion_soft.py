"""Scratch: Fashion - held-out check on given labels (soft alpha vs plain) and the test TPR of both."""
import os, sys
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.metrics import roc_auc_score
from activemine.experiment import ExperimentConfig, load_task, _clean_proba, _Seed
from activemine.models import LIGHTGBM_DEFAULTS
from activemine.metrics import tpr_at_fpr
from _rare import rare_path
from label_efficiency import SETTINGS
from _probe import fit_soft, oof_p  # noqa: E402
names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]; A = float(sys.argv[3])
for name in names:
    dataset, setting = SETTINGS[name]
    cfg = ExperimentConfig(dataset="fashion-mnist", task="binary:6", labeled_size=15000, budget=5000, pool_size=45000, **setting)
    task = load_task(cfg.dataset, cfg.task)
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
        rng = np.random.default_rng(seed); d = []
        for _ in range(100):
            i = rng.integers(0, rows.size, rows.size)
            d.append(roc_auc_score(yo[i], h_soft[i]) - roc_auc_score(yo[i], h_plain[i]))
        gain = roc_auc_score(yo, h_soft) - roc_auc_score(yo, h_plain); z = gain / np.std(d)
        t_all = (1 - A) * yo + A * oof_p(X, yo, seed)
        plain = np.mean([tpr_at_fpr(task.y_test, LGBMClassifier(**LIGHTGBM_DEFAULTS, random_state=seed + 100003 * r).fit(X, yo).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)])
        soft = np.mean([tpr_at_fpr(task.y_test, fit_soft(X, t_all, seed + 100003 * r).predict_proba(task.X_test)[:, 1], 0.01) for r in range(2)])
        print(f"{name} {seed}: check z {z:+.2f} (AUC gain {gain:+.4f}); test TPR plain {100*plain:.2f} soft{A} {100*soft:.2f}", flush=True)

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
from activemine.experiment import _Seed
from _probe import fit_soft, lc_ranking, lgbm, load_setting, oof_p, eval_tpr

A = 0.8


names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
variants = sys.argv[3].split(",") if len(sys.argv) > 3 else ["lc", "band2500", "band5000", "top3x", "easy20", "softsel"]
for name in names:
    cfg, task, cp = load_setting(name)
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        XL, yL = task.X_train[sp.L], y[sp.L]
        ranked = lc_ranking(task, sp, y, seed)
        rng = np.random.default_rng(seed + 5)
        for v in variants:
            if v == "lc":
                batch = ranked[:5000]
            elif v.startswith("band"):
                start = int(v[4:]); batch = ranked[start:start + 5000]
            elif v == "top3x":
                batch = rng.choice(ranked[:15000], 5000, replace=False)
            elif v == "easy20":
                batch = np.r_[ranked[:4000], rng.choice(ranked[4000:], 1000, replace=False)]
            elif v == "softsel":
                tL = (1 - A) * yL + A * oof_p(XL, yL, seed)
                ps = fit_soft(XL, tL, seed).predict_proba(task.X_train[sp.U])[:, 1]
                batch = sp.U[np.argsort(-(1 - np.maximum(ps, 1 - ps)), kind="stable")[:5000]]
            rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yo = y[rows]
            wrong = int((y[batch] != task.y_train[batch]).sum())
            plain = eval_tpr(task, lambda s: lgbm(s).fit(X, yo), seed)
            t_all = (1 - A) * yo + A * oof_p(X, yo, seed)
            soft = eval_tpr(task, lambda s: fit_soft(X, t_all, s), seed)
            print(f"{name} seed {seed} {v:9s}: batch wrong {wrong:5d}  plain {100*plain:6.2f}  soft {100*soft:6.2f}", flush=True)

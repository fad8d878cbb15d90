"""Probe: what more labels from the same simulated annotator could buy (L + lc's batch, fixed selection).

The benchmark's noise is a weighted draw (ambiguity-weighted flips). Redrawing it 200 times with other seeds
gives each row's flip probability f (how often an independent annotator of the same kind gets it wrong). Final
LightGBM on L + lc's batch, test TPR at 1% FPR (mean of 2 models), trained on:
  given   - the seed's labels (lc);
  maj3    - the majority of 3 independent labels per row (the seed's and 2 redraws): 3x the labels;
  expect  - soft targets equal to the expected label of this annotator (1 - f on the true class): the limit of
            infinitely many second opinions;
  true    - the true labels (the oracle).
It also prints the share of the batch's rows with f >= 0.5 (rows this annotator gets wrong more often than right).
"""
import os, sys
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # benchmarks/
import numpy as np
from activemine.experiment import _Seed, _noisy_labels, _clean_proba
from _probe import fit_soft, lc_ranking, lgbm, load_setting, eval_tpr

R = 200


names = sys.argv[1].split(","); seeds = [int(s) for s in sys.argv[2].split(",")]
for name in names:
    cfg, task, cp = load_setting(name)
    cp = _clean_proba(task, model="lightgbm") if cp is None else cp
    yt_all = task.y_train
    f = np.mean([_noisy_labels(task, cfg, 10_000 + r, cp) != yt_all for r in range(R)], axis=0)
    for seed in seeds:
        sp = _Seed(task, cfg, seed, cp); y = sp.y_obs
        batch = lc_ranking(task, sp, y, seed)[:5000]
        rows = np.concatenate([sp.L, batch]); X = task.X_train[rows]; yt = yt_all[rows]
        y2, y3 = (_noisy_labels(task, cfg, 20_000 + 2 * seed + j, cp)[rows] for j in range(2))
        maj = ((y[rows] + y2 + y3) >= 2).astype(int)
        expect = np.where(yt == 1, 1 - f[rows], f[rows])
        fits = {
            "given": lambda s: lgbm(s).fit(X, y[rows]),
            "maj3": lambda s: lgbm(s).fit(X, maj),
            "expect": lambda s: fit_soft(X, expect, s),
            "true": lambda s: lgbm(s).fit(X, yt),
        }
        out = {k: eval_tpr(task, fit, seed) for k, fit in fits.items()}
        print(f"{name} seed {seed}: batch f>=0.5 {np.mean(f[batch] >= 0.5):.3f}, wrong given {int((y[rows] != yt).sum())} maj3 {int((maj != yt).sum())} | "
              + "  ".join(f"{k} {100 * v:6.2f}" for k, v in out.items()), flush=True)

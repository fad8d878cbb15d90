"""Shared pieces of the noise-lever probes: one benchmark setting at full size, lc's ranking, soft-target fits."""
import numpy as np
from lightgbm import LGBMClassifier
from sklearn.model_selection import StratifiedKFold

from activemine.experiment import ExperimentConfig, _clean_proba, load_task
from activemine.metrics import tpr_at_fpr
from activemine.models import LIGHTGBM_DEFAULTS
from label_efficiency import SETTINGS
from _rare import rare_path


def load_setting(name: str):
    """``(cfg, task, clean_proba)`` of a benchmark setting at full size (L 15,000, U 45,000, B 5,000)."""
    dataset, setting = SETTINGS[name]
    src = ({"dataset": "fashion-mnist", "task": "binary:6"} if dataset == "fashion"
           else {"dataset": str(rare_path()), "task": "binary:pos", "split_col": "split"})
    cfg = ExperimentConfig(**src, labeled_size=15000, budget=5000, pool_size=45000, **setting)
    task = load_task(cfg.dataset, cfg.task, split_col=cfg.split_col)
    return cfg, task, (_clean_proba(task, model="lightgbm") if setting else None)


def lgbm(seed: int, extra: dict | None = None) -> LGBMClassifier:
    return LGBMClassifier(**{**LIGHTGBM_DEFAULTS, **(extra or {})}, random_state=seed)


def lc_ranking(task, sp, y, seed: int) -> np.ndarray:
    """U's rows, least confident first, by a LightGBM on L's labels ``y[sp.L]`` (lc's batch is the first 5,000)."""
    p = lgbm(seed).fit(task.X_train[sp.L], y[sp.L]).predict_proba(task.X_train[sp.U])
    return sp.U[np.argsort(-(1 - p.max(axis=1)), kind="stable")]


def oof_p(X, y, seed: int, folds: int = 3) -> np.ndarray:
    """Out-of-fold p(positive) ``(n,)`` of the default LightGBM."""
    out = np.zeros(y.size)
    for f, (tr, te) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)):
        out[te] = lgbm(seed + 7 + f).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return out


def fit_soft(X, t, seed: int, extra: dict | None = None) -> LGBMClassifier:
    """A LightGBM on soft targets ``t`` = p(positive) ``(n,)``: each row once per class, weighted by its target."""
    n = t.size
    Xd = np.concatenate([X, X]); yd = np.r_[np.ones(n, int), np.zeros(n, int)]; wd = np.r_[t, 1 - t]; k = wd > 1e-6
    return lgbm(seed, extra).fit(Xd[k], yd[k], sample_weight=wd[k])


def eval_tpr(task, fit, seed: int) -> float:
    """Test TPR at 1% FPR, the mean of 2 models ``fit(model_seed)`` as the benchmark seeds them."""
    return float(np.mean([tpr_at_fpr(task.y_test, fit(seed + 100003 * r).predict_proba(task.X_test)[:, 1], 0.01)
                          for r in range(2)]))

"""Held-out comparison of two trainings: which one ranks the given labels of held-out rows better.

Both the drop check (:mod:`activemine.dirty.policy`) and the soft-label check
(:mod:`activemine.dirty.soft`) fit two kinds of model on the same fresh fold
split and compare their held-out probabilities here.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHECK_SALT", "N_BOOTSTRAP", "Z_DROP", "check_drop", "check_fold_seed", "compare_splits"]

#: Paired-bootstrap z the held-out gain of a drop (or of soft labels) must exceed for the adaptive rule to keep it (one-sided 1%).
#: 1.64 (5%) fired on clean labels in 2 of 3 seeds of the reduced benchmark (Fashion-MNIST, L 2,000), whose z
#: reached 1.95; planted 10% noise gave z 4.7 to 5.1 (docs/dirty-data.md).
Z_DROP = 2.33
#: Salt of the held-out check's fold seed, so its folds are not the detection's.
CHECK_SALT = 23
#: Bootstrap resamples of the held-out comparison.
N_BOOTSTRAP = 100


def _auc_columns(y_idx: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC ``(k,)`` of every class column that has both positives and negatives (NaN otherwise)."""
    from scipy.stats import rankdata

    n, k = scores.shape
    out = np.full(k, np.nan)
    for c in range(k if k > 2 else 1):
        col = 1 if k == 2 else c
        pos = y_idx == col
        n1 = int(pos.sum())
        if 0 < n1 < n:
            r = rankdata(scores[:, col])
            out[c] = (r[pos].sum() - n1 * (n1 + 1) / 2.0) / (n1 * (n - n1))
    return out


def check_drop(
    y_idx: np.ndarray,
    proba_all: np.ndarray,
    proba_dropped: np.ndarray,
    *,
    seed: int = 0,
    n_bootstrap: int = N_BOOTSTRAP,
) -> tuple[float, float]:
    """Held-out gain of a drop: ``(gain, z)``.

    ``proba_all`` and ``proba_dropped`` ``(n, k)`` are out-of-fold
    probabilities of models trained on every row and without the dropped rows
    (same folds); ``y_idx`` ``(n,)`` the given labels as column indices.
    ``gain`` = AUC(dropped) - AUC(all) against the given labels (macro
    one-vs-rest), ``z`` = gain over its paired-bootstrap standard error
    (``n_bootstrap`` seeded resamples of the rows). Higher = the drop helps.
    """
    return compare_splits(y_idx, [(proba_all, proba_dropped)], seed=seed, n_bootstrap=n_bootstrap)


def compare_splits(y_idx: np.ndarray, pairs, *, seed: int = 0, n_bootstrap: int = N_BOOTSTRAP) -> tuple[float, float]:
    """:func:`check_drop` over several fold splits: ``(gain, z)``.

    ``pairs``: one ``(proba_a, proba_b)`` of held-out probabilities per fold
    split, each ``(n, k)`` over the same rows. ``gain`` is the mean over the
    splits of AUC(b) - AUC(a); its standard error comes from one paired
    bootstrap of the rows, the same resample scoring every split, so the
    splits' shared rows are not counted as new evidence.
    """

    def macro(rows):
        gains = []
        for proba_a, proba_b in pairs:
            a = _auc_columns(y_idx[rows], proba_b[rows]) - _auc_columns(y_idx[rows], proba_a[rows])
            gains.append(float(np.nanmean(a)) if np.isfinite(a).any() else 0.0)
        return float(np.mean(gains))

    n = y_idx.size
    gain = macro(np.arange(n))
    rng = np.random.default_rng([seed, 17])
    boot = np.array([macro(rng.integers(0, n, n)) for _ in range(n_bootstrap)])
    sd = float(boot.std(ddof=1)) if n_bootstrap > 1 else 0.0
    z = gain / sd if sd > 0 else (np.inf if gain > 0 else 0.0)
    return gain, float(z)


def check_fold_seed(seed: int, repeat: int = 0) -> int:
    """The fold seed of the held-out check for a detection made with fold seed ``seed`` (a different split).

    ``repeat`` > 0 gives the seeds of further splits of the same check.
    """
    key = [int(seed), CHECK_SALT] + ([int(repeat)] if repeat else [])
    return int(np.random.default_rng(key).integers(2**31 - 1))

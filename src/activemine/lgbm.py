"""The default LightGBM classifier, whose leaf-size floor follows the rarest class.

Imported only when a LightGBM model is built (``import activemine`` stays light).

LightGBM's ``min_child_weight`` is a floor on the sum of hessians in a leaf,
``p (1 - p)`` per row for the log loss. At the start of boosting every row has
``p`` = the class's share ``q``, so a leaf needs about ``min_child_weight / (q (1 - q))``
rows: with a floor of 1 and 2 positives among 2,000 rows (``q`` = 0.001) that is
about 1,000 rows, no split can isolate the positives, and the model stays
constant (AUC 0.50). The floor here is ``min(1, n_min q (1 - q) / 4)``, ``n_min``
the rarest class's row count: a leaf holding a quarter of that class reaches it.
Large data keep a floor of 1 and ``reg_lambda`` keeps leaves bounded, so the
collapse on a large separable rare class does not come back
(``docs/rare-classes.md`` has the figures of both cases).
"""

from __future__ import annotations

import numpy as np
from lightgbm import LGBMClassifier

__all__ = ["MinorityScaledLGBM", "minority_child_weight"]


def minority_child_weight(y, sample_weight=None, *, ceiling: float = 1.0) -> float:
    """``min(ceiling, n_min q (1 - q) / 4)``: the leaf hessian floor for labels ``y`` ``(n,)``
    (weighted counts when ``sample_weight`` ``(n,)`` is given); ``n_min`` the rarest class's count, ``q`` its share."""
    _, inverse = np.unique(np.asarray(y), return_inverse=True)
    w = np.ones(inverse.size) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    counts = np.bincount(inverse, weights=w)
    if counts.size < 2 or counts.sum() <= 0:
        return float(ceiling)
    n_min = float(counts.min())
    q = n_min / float(counts.sum())
    return float(min(ceiling, n_min * q * (1.0 - q) / 4.0))


class MinorityScaledLGBM(LGBMClassifier):
    """:class:`lightgbm.LGBMClassifier` whose ``min_child_weight`` is a ceiling: each fit uses
    :func:`minority_child_weight` of its labels (``min_child_weight_`` after the fit)."""

    def fit(self, X, y, sample_weight=None, **kwargs):
        ceiling = self.min_child_weight
        self.min_child_weight_ = minority_child_weight(y, sample_weight, ceiling=ceiling)
        self.min_child_weight = self.min_child_weight_
        try:
            return super().fit(X, y, sample_weight=sample_weight, **kwargs)
        finally:
            self.min_child_weight = ceiling

"""Deprecated: the old home of the dirty-data functions; use :mod:`activemine.dirty` and :mod:`activemine.simulate`.

Kept importable so code written against it keeps working for one release:
``find_label_issues`` is :func:`activemine.dirty.find_suspects` and
``estimate_noise_rate`` is :func:`activemine.dirty.estimate_dirty_share`.
"""

from __future__ import annotations

from activemine.dirty import (  # noqa: F401
    DIRTY_POLICIES,
    DirtyDataFilter,
    DirtyDataReport,
    check_returned_labels,
    clean_labels,
    fast_oof_model,
    label_quality_scores,
    out_of_fold_proba,
    per_class_thresholds,
)
from activemine.dirty import estimate_dirty_share as estimate_noise_rate  # noqa: F401
from activemine.dirty import find_suspects as find_label_issues  # noqa: F401
from activemine.simulate import NOISE_KINDS, inject_label_noise  # noqa: F401

"""Dirty data: find wrong labels in a labeled set and decide what to do with them.

One vocabulary across the library, the CLI (``activemine clean``), the README
and campaign status: labels are **dirty** when some are wrong; the **dirty
share** is the share of wrong labels; a **suspect** is a sample whose label the
detection doubts; the actions are ``drop``, ``review`` and ``keep``.
(Wrong labels made on purpose for experiments are "noise", in
:mod:`activemine.experiments.noise`.) Direction, fixed once: **a lower label-quality
score means a sample is more likely mislabeled**.

Three layers, one module each:

* :mod:`~activemine.dirty.oof`: out-of-fold probabilities ``(n, k)``;
* :mod:`~activemine.dirty.detect`: label quality, suspects, the dirty share,
  returned-label checks for campaigns;
* :mod:`~activemine.dirty.policy`: the prune/review policy and HW's dirty-data step.
"""

from activemine.dirty.detect import (
    check_returned_labels,
    estimate_dirty_share,
    find_suspects,
    label_quality_scores,
    per_class_thresholds,
)
from activemine.dirty.oof import (
    HEAD_MODEL,
    OOF_METHODS,
    check_oof_method,
    fast_oof_model,
    fold_of,
    network_embeddings,
    out_of_fold_proba,
)
from activemine.dirty.policy import (
    DIRTY_POLICIES,
    DIRTY_RULES,
    DirtyDataFilter,
    DirtyDataReport,
    check_drop,
    clean_labels,
    held_out_check,
    nested_held_out_check,
)

__all__ = [
    "DIRTY_POLICIES",
    "DIRTY_RULES",
    "DirtyDataFilter",
    "DirtyDataReport",
    "HEAD_MODEL",
    "OOF_METHODS",
    "check_drop",
    "check_oof_method",
    "check_returned_labels",
    "clean_labels",
    "estimate_dirty_share",
    "fast_oof_model",
    "find_suspects",
    "fold_of",
    "held_out_check",
    "label_quality_scores",
    "nested_held_out_check",
    "network_embeddings",
    "out_of_fold_proba",
    "per_class_thresholds",
]

"""The dirty-data check of returned labels: does the model that mined the round doubt them?"""

from __future__ import annotations

import numpy as np

from activemine.campaign.store import CampaignStore

__all__ = ["suspect_sids"]


def suspect_sids(store: CampaignStore, labels: list[tuple[str, str]], *, threshold: float = 0.5, conn=None) -> list[str]:
    """Ids among ``labels`` ``[(sid, label)]`` whose label the model puts more than ``threshold`` behind its top class.

    Uses the class probabilities stored with each id's batch row; ids that
    were never in a batch are not checked. Returns ``[]`` when the dirty-data
    module (:func:`activemine.noise.check_returned_labels`) is not installed.
    """
    try:
        from activemine.noise import check_returned_labels
    except ImportError:  # campaigns work without the dirty-data module
        return []
    proba = store.batch_proba((sid for sid, _ in labels), conn=conn)
    checked = [(sid, label) for sid, label in labels if sid in proba]
    if not checked:
        return []
    index = {c: i for i, c in enumerate(store.class_names)}
    given = np.array([index[label] for _, label in checked])  # (n,) class indices
    P = np.asarray([proba[sid] for sid, _ in checked], dtype=np.float64)  # (n, k)
    P = P / P.sum(axis=1, keepdims=True)  # stored rounded to 6 digits
    mask = np.asarray(check_returned_labels(given, P, classes=np.arange(len(index)), threshold=threshold), dtype=bool)
    return [sid for (sid, _), bad in zip(checked, mask) if bad]

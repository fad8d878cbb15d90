"""The dirty-data check of returned labels: does the model that mined the round doubt them?

The *disagreement* of a returned label is ``max_c p(c) - p(given)`` under the
class probabilities stored with the id's batch row, in ``[0, 1]``: zero when
the given label is the model's top class, near one when the model is sure of
another class (higher = more likely mislabeled). A label is flagged
``suspect`` when its disagreement is strictly greater than the threshold.

The default threshold was chosen on planted-noise campaigns
(``benchmarks/campaign_suspect.py``, figures in docs/campaign.md): with
10% of a round's labels flipped, 0.5 flagged 5.5% of the correct labels on
digits and 0.8 flagged 1.0%, with 84% of what it flags truly wrong.
"""

from __future__ import annotations

import numpy as np

from activemine.campaign.batchdata import batch_proba
from activemine.campaign.store import CampaignStore
from activemine.dirty.detect import SUSPECT_THRESHOLD, label_disagreement
from activemine.errors import InputError

__all__ = ["DEFAULT_SUSPECT_THRESHOLD", "disagreement", "suspect_mask", "suspect_sids"]

#: Flag a returned label when the model puts it more than this far behind its top class (one default,
#: :data:`activemine.dirty.detect.SUSPECT_THRESHOLD`, for campaigns and the library).
DEFAULT_SUSPECT_THRESHOLD = SUSPECT_THRESHOLD


def disagreement(given: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """``max_c p(c) - p(given)`` per row ``(n,)``; ``given`` ``(n,)`` class indices, ``proba`` ``(n, k)``.

    Higher = more likely mislabeled. Rows of ``proba`` are renormalized (they are stored as float32).
    """
    p = np.asarray(proba, dtype=np.float64)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return label_disagreement(np.asarray(given, dtype=np.int64), p)


def suspect_mask(given: np.ndarray, proba: np.ndarray, *, threshold: float = DEFAULT_SUSPECT_THRESHOLD) -> np.ndarray:
    """True where the disagreement ``(n,)`` is strictly greater than ``threshold`` (in ``[0, 1]``)."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"the suspect threshold must be in [0, 1], got {threshold}")
    return disagreement(given, proba) > threshold


def suspect_sids(
    store: CampaignStore, labels: list[tuple[str, str]], *, threshold: float = DEFAULT_SUSPECT_THRESHOLD, conn=None
) -> list[str]:
    """Ids among ``labels`` ``[(sid, label)]`` whose label the model doubts (see the module docstring).

    Uses the class probabilities stored with each id's newest batch row; ids
    that were never in a batch are not checked.
    """
    proba = batch_proba(store, (sid for sid, _ in labels), conn=conn)
    checked = [(sid, label) for sid, label in labels if sid in proba]
    if not checked:
        return []
    index = {c: i for i, c in enumerate(store.class_names)}
    given = np.array([index[label] for _, label in checked])  # (n,) class indices
    P = np.stack([proba[sid] for sid, _ in checked])  # (n, k)
    mask = suspect_mask(given, P, threshold=threshold)
    return [sid for (sid, _), bad in zip(checked, mask) if bad]

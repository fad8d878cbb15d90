"""Relabeling where it pays: rank labeled samples for a second opinion, and advise relabel or mine.

Direction, fixed once for this module: **a higher priority means a sample is
more worth a second opinion**. ``p_wrong`` is the estimated chance that the
label used for training (the consensus) is wrong; ``impact`` how much fixing it
would matter.

* ``p_wrong = 1 - posterior[consensus]`` of the model-weighted consensus
  (:func:`activemine.annotators.model_weighted_consensus`): it is high for a
  single label from an annotator who agrees little with the others (a low
  annotator weight), for a label the out-of-fold model disagrees with (the
  dirty-data signal of :mod:`activemine.noise`), and low for several agreeing
  labels. An optional ``label_quality`` ``(n,)`` (lower = more likely
  mislabeled, e.g. :func:`activemine.noise.label_quality_scores`) is blended in
  as ``max(p_wrong, 1 - label_quality) `` when given.
* ``impact = sqrt(max(w[consensus], w[model's class]))`` with ``w_c`` the
  inverse class frequency scaled to a maximum of 1: a wrong label touching a
  rare class moves its boundary more (for a rare positive class at a low FPR
  it is what the metric is made of); for balanced classes it is 1.
* ``priority = p_wrong * impact``; ties by the smaller row index.

**Advice** (:func:`relabel_advice`): a second opinion fixes a wrong label with
the chance ``q`` that an annotator is right, so the top ``budget`` rows are
expected to yield ``F = q * sum(p_wrong)`` fixed labels. A wrong label is taken
to cost as much as a correct new label gains (fixing one removes a harmful
label and adds a useful one: two units), so relabeling is advised when
``2 F >= budget``, mining new samples otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activemine.annotators import MISSING, ConsensusResult, _check_matrix, _check_proba, model_weighted_consensus
from activemine.errors import BudgetError, InputError

__all__ = ["RelabelRanking", "rank_for_relabel", "relabel_advice"]


@dataclass(frozen=True)
class RelabelRanking:
    """Rows ``order`` ``(b,)`` most worth a second opinion first, and per-row figures ``(n,)``."""

    order: np.ndarray
    priority: np.ndarray
    p_wrong: np.ndarray
    impact: np.ndarray
    consensus: ConsensusResult


def rank_for_relabel(labels, proba, *, budget: int, k: int | None = None, label_quality=None,
                     result: ConsensusResult | None = None) -> RelabelRanking:  # fmt: skip
    """Rank labeled rows of a label matrix ``(n, a)`` for a second opinion, given out-of-fold ``proba`` ``(n, k)``.

    Only rows with at least one label and at least one annotator who has not
    labeled them yet are eligible; ``budget`` above their number raises
    :class:`BudgetError`. ``result`` reuses a model-weighted consensus.
    """
    L, k = _check_matrix(labels, k)
    n = L.shape[0]
    P = _check_proba(proba, n, k)
    has = L >= 0
    eligible = has.any(axis=1) & (~has).any(axis=1)
    if int(budget) != budget or budget < 1:
        raise BudgetError(f"relabel budget must be a positive integer, got {budget}")
    if budget > int(eligible.sum()):
        raise BudgetError(f"relabel budget {budget} is above the {int(eligible.sum())} labeled samples that can get another opinion")
    result = result if result is not None else model_weighted_consensus(L, P, k=k)
    c = np.where(result.labels >= 0, result.labels, 0)
    p_wrong = 1.0 - result.posterior[np.arange(n), c]  # (n,)
    if label_quality is not None:
        lq = np.asarray(label_quality, dtype=np.float64)
        if lq.shape != (n,) or not np.isfinite(lq).all():
            raise InputError(f"label_quality must be finite with shape ({n},), got {lq.shape}")
        p_wrong = np.maximum(p_wrong, 1.0 - lq)
    freq = np.bincount(c[result.labels >= 0], minlength=k).astype(np.float64)
    w = 1.0 / np.maximum(freq, 1.0)
    w /= w.max()
    impact = np.sqrt(np.maximum(w[c], w[P.argmax(axis=1)]))  # (n,)
    priority = np.where(eligible, p_wrong * impact, -np.inf)
    order = np.lexsort((np.arange(n), -priority))[: int(budget)]
    return RelabelRanking(order, priority, p_wrong, impact, result)


def relabel_advice(ranking: RelabelRanking, *, budget: int | None = None, accuracy: float | None = None) -> dict:
    """``{"advised": "relabel" | "mine", "expected_fixes", "budget", "annotator_accuracy"}`` (rule in the module docstring).

    ``accuracy`` is the chance a second opinion is right (default: the mean
    agreement of the labels with the consensus, an estimate of annotator accuracy).
    """
    order = ranking.order if budget is None else ranking.order[:budget]
    b = int(order.size)
    if accuracy is None:
        accuracy = float(np.clip(1.0 - np.mean(ranking.p_wrong[ranking.consensus.labels != MISSING]), 0.0, 1.0))
    fixes = float(accuracy * ranking.p_wrong[order].sum())
    return {"advised": "relabel" if 2.0 * fixes >= b else "mine", "expected_fixes": fixes, "budget": b,
            "annotator_accuracy": float(accuracy)}  # fmt: skip

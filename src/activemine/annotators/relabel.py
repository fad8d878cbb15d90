"""Relabeling where it pays: rank labeled samples for a second opinion, and advise relabel or mine.

Direction, fixed once for this module: **a higher priority means a sample is
more worth a second opinion**. ``p_wrong`` is the estimated chance that the
label used for training is wrong; ``impact`` how much fixing it would matter.

* The chance of each true class is a Bayesian posterior ``(n, k)``
  (:func:`label_posterior`): the out-of-fold model's probabilities are the
  prior of each sample, and each annotator's label enters through their
  confusion matrix, ``posterior ∝ proba[i] * prod_j confusion[j, :, given_j]``;
  the confusions are estimated by a few EM steps (Dawid-Skene with the model as
  the per-sample prior), started from the model-weighted consensus. So
  ``p_wrong = 1 - posterior[training label]`` is high for a single label from
  an annotator who errs often (their confusion), for a label the model doubts
  (the dirty-data signal of :mod:`activemine.dirty`), and low for several
  agreeing labels. An optional ``label_quality`` ``(n,)`` (lower = more likely
  mislabeled, e.g. :func:`activemine.dirty.label_quality_scores`) is blended in
  as ``max(p_wrong, 1 - label_quality)``.
* ``impact = sqrt(max(w[training label], w[model's class]))`` with ``w_c`` the
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

from activemine.annotators.agreement import ConsensusResult, _check_matrix, _check_proba, model_weighted_consensus
from activemine.errors import BudgetError, InputError

__all__ = ["RelabelRanking", "label_posterior", "rank_for_relabel", "relabel_advice"]


@dataclass(frozen=True)
class RelabelRanking:
    """Rows ``order`` ``(b,)`` most worth a second opinion first, and per-row figures ``(n,)``."""

    order: np.ndarray
    priority: np.ndarray
    p_wrong: np.ndarray
    impact: np.ndarray
    posterior: np.ndarray
    consensus: ConsensusResult
    annotator_accuracy: float


def label_posterior(labels, proba, *, k: int | None = None, start=None, steps: int = 10) -> np.ndarray:
    """Each sample's chance of each true class ``(n, k)``: the model as prior, the annotators through their confusions.

    ``start`` ``(n, k)`` seeds the confusion estimate (default: the
    model-weighted consensus); each step re-estimates every annotator's
    confusion ``(k, k)`` from the current posteriors (plus one pseudo-label
    on the diagonal and 1/k spread over the row, so a small annotator is not
    judged on a handful of labels) and recomputes the posteriors.
    """
    L, k = _check_matrix(labels, k)
    n, a = L.shape
    P = np.clip(_check_proba(proba, n, k), 1e-6, None)
    rows, cols = np.nonzero(L >= 0)
    given = L[rows, cols]
    T = (
        model_weighted_consensus(L, P / P.sum(axis=1, keepdims=True), k=k).posterior
        if start is None
        else np.asarray(start)
    )
    for _ in range(steps):
        conf = np.broadcast_to(np.eye(k) + 1.0 / k, (a, k, k)).copy()  # [annotator, true, given] pseudo-counts
        np.add.at(conf, (cols, slice(None), given), T[rows])
        conf /= conf.sum(axis=2, keepdims=True)
        log_post = np.log(P)
        np.add.at(log_post, rows, np.log(conf[cols, :, given]))
        log_post -= log_post.max(axis=1, keepdims=True)
        T = np.exp(log_post)
        T /= T.sum(axis=1, keepdims=True)
    return T


def rank_for_relabel(
    labels,
    proba,
    *,
    budget: int,
    k: int | None = None,
    label_quality=None,
    train_labels=None,
    result: ConsensusResult | None = None,
) -> RelabelRanking:
    """Rank labeled rows of a label matrix ``(n, a)`` for a second opinion, given out-of-fold ``proba`` ``(n, k)``.

    Only rows with at least one label and at least one annotator who has not
    labeled them yet are eligible; ``budget`` above their number raises
    :class:`BudgetError`. ``train_labels`` ``(n,)`` are the labels used for
    training (default: the posterior's argmax); ``result`` reuses a
    model-weighted consensus to start from.
    """
    L, k = _check_matrix(labels, k)
    n = L.shape[0]
    P = _check_proba(proba, n, k)
    has = L >= 0
    eligible = has.any(axis=1) & (~has).any(axis=1)
    if int(budget) != budget or budget < 1:
        raise BudgetError(f"relabel budget must be a positive integer, got {budget}")
    if budget > int(eligible.sum()):
        raise BudgetError(
            f"relabel budget {budget} is above the {int(eligible.sum())} labeled samples that can get another opinion"
        )
    result = result if result is not None else model_weighted_consensus(L, P, k=k)
    posterior = label_posterior(L, P, k=k, start=result.posterior)
    train = posterior.argmax(axis=1) if train_labels is None else np.asarray(train_labels, dtype=np.int64)
    if train.shape != (n,):
        raise InputError(f"train_labels must have shape ({n},), got {train.shape}")
    c = np.where(train >= 0, train, 0)
    p_wrong = 1.0 - posterior[np.arange(n), c]  # (n,)
    if label_quality is not None:
        lq = np.asarray(label_quality, dtype=np.float64)
        if lq.shape != (n,) or not np.isfinite(lq).all():
            raise InputError(f"label_quality must be finite with shape ({n},), got {lq.shape}")
        p_wrong = np.maximum(p_wrong, 1.0 - lq)
    freq = np.bincount(c[has.any(axis=1)], minlength=k).astype(np.float64)
    w = 1.0 / np.maximum(freq, 1.0)
    w /= w.max()
    impact = np.sqrt(np.maximum(w[c], w[P.argmax(axis=1)]))  # (n,)
    priority = np.where(eligible, p_wrong * impact, -np.inf)
    order = np.lexsort((np.arange(n), -priority))[: int(budget)]
    r, j = np.nonzero(has)
    accuracy = float(posterior[r, L[r, j]].mean()) if r.size else 1.0  # expected share of labels that are right
    return RelabelRanking(order, priority, p_wrong, impact, posterior, result, accuracy)


def relabel_advice(ranking: RelabelRanking, *, budget: int | None = None, accuracy: float | None = None) -> dict:
    """``{"advised": "relabel" | "mine", "expected_fixes", "budget", "annotator_accuracy"}`` (rule in the module docstring).

    ``accuracy`` is the chance a second opinion is right (default: the
    expected share of the given labels that are right under the posterior).
    """
    order = ranking.order if budget is None else ranking.order[:budget]
    b = int(order.size)
    if accuracy is None:
        accuracy = ranking.annotator_accuracy
    fixes = float(accuracy * ranking.p_wrong[order].sum())
    return {
        "advised": "relabel" if 2.0 * fixes >= b else "mine",
        "expected_fixes": fixes,
        "budget": b,
        "annotator_accuracy": float(accuracy),
    }

"""Annotator agreement, consensus labels and annotator quality (pure numpy).

Labels of several annotators are a **label matrix** ``(n, a)`` of class indices
``0..k-1``, one row per sample and one column per annotator, ``-1`` where the
annotator gave no label (:func:`label_matrix` builds one from ``(sample,
annotator, label)`` records). Probabilities are ``(n, k)`` in class-index order
and should be out of fold (a model that never saw the sample's labels).

Directions, fixed once for this module: agreement (kappa, alpha, accuracy
against the consensus or the model) is **higher = better**; an annotator's
``quality`` is higher = better, and ``rank`` 1 is the *worst* annotator.

* agreement: :func:`cohen_kappa` (two raters), :func:`pairwise_kappa` (every pair
  of annotators on the samples they share), :func:`krippendorff_alpha` (nominal,
  all annotators together, any number of labels per sample);
* consensus (:data:`CONSENSUS_METHODS`, :func:`consensus`): :func:`majority_vote`,
  :func:`dawid_skene` (EM, started from the majority vote, deterministic) and
  :func:`model_weighted_consensus` (CROWDLAB-like: the annotators' labels and the
  model's probabilities averaged with weights estimated from their agreement);
* quality: :func:`annotator_report` (labels, agreement with the others, the
  consensus and the model, the Dawid-Skene confusion, a flag for annotators well
  below the rest; rule in :func:`flag_annotators`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from activemine.errors import InputError, ProbabilityError, UnknownLabelError
from activemine.metrics import cohen_kappa

__all__ = [
    "CONSENSUS_METHODS",
    "DEFAULT_CONSENSUS",
    "ConsensusResult",
    "annotator_report",
    "cohen_kappa",
    "consensus",
    "dawid_skene",
    "flag_annotators",
    "krippendorff_alpha",
    "label_matrix",
    "majority_vote",
    "model_weighted_consensus",
    "pairwise_kappa",
    "vote_counts",
]

CONSENSUS_METHODS = ("majority", "dawid-skene", "model-weighted")
#: The default consensus: Dawid-Skene needs no model, weighs each annotator by
#: their estimated confusion, and equals the majority vote when all are alike.
DEFAULT_CONSENSUS = "dawid-skene"
MISSING = -1
_EPS = 1e-10  # crowd-kit's floor for confusion entries, so the two EMs take the same steps
_CLIP = 1e-6  # cleanlab's floor for CROWDLAB weights


# -- input --------------------------------------------------------------------------
def label_matrix(
    records: Iterable[tuple], *, classes: Sequence, samples: Sequence | None = None, annotators: Sequence | None = None
) -> tuple[np.ndarray, list, list]:
    """``(sample, annotator, label)`` records -> ``(matrix (n, a), samples, annotators)``.

    ``matrix[i, j]`` is the index in ``classes`` of annotator j's label of
    sample i, ``-1`` for none. Samples and annotators are in order of first
    appearance unless given. A second label by the same annotator for the same
    sample replaces the first (the later record wins).
    """
    records = list(records)
    index = {c: i for i, c in enumerate(classes)}
    samples = list(dict.fromkeys(r[0] for r in records)) if samples is None else list(samples)
    annotators = list(dict.fromkeys(r[1] for r in records)) if annotators is None else list(annotators)
    s_index = {s: i for i, s in enumerate(samples)}
    a_index = {a: j for j, a in enumerate(annotators)}
    out = np.full((len(samples), len(annotators)), MISSING, dtype=np.int64)
    for sample, who, label in records:
        if label not in index:
            raise UnknownLabelError(
                f"label {label!r} of sample {sample!r} by {who!r} is not among the classes {list(classes)[:20]}"
            )
        if sample not in s_index or who not in a_index:
            raise InputError(f"record ({sample!r}, {who!r}) names a sample or annotator that is not listed")
        out[s_index[sample], a_index[who]] = index[label]
    return out, samples, annotators


def _check_matrix(labels, k: int | None = None) -> tuple[np.ndarray, int]:
    """Validate a label matrix ``(n, a)``; returns it as int64 and the number of classes."""
    L = np.asarray(labels)
    if L.ndim != 2:
        raise InputError(f"labels must be a matrix (n samples, a annotators) with -1 for no label, got shape {L.shape}")
    if L.size and L.dtype.kind not in "iu":
        raise InputError(f"labels must be integer class indices with -1 for no label, got dtype {L.dtype}")
    L = L.astype(np.int64, copy=False)
    if (L < MISSING).any():
        raise UnknownLabelError(f"labels must be class indices >= 0 or -1 for no label, got {int(L.min())}")
    top = int(L.max(initial=MISSING))
    if k is None:
        k = max(top + 1, 2)
    elif top >= k:
        raise UnknownLabelError(f"label index {top} is not below the number of classes {k}")
    return L, int(k)


def _check_proba(proba, n: int, k: int) -> np.ndarray:
    P = np.asarray(proba, dtype=np.float64)
    if P.shape != (n, k):
        raise ProbabilityError(f"proba must have shape ({n}, {k}) (samples, classes), got {P.shape}")
    if not np.isfinite(P).all() or (P < 0).any() or not np.allclose(P.sum(axis=1), 1.0, atol=1e-4):
        raise ProbabilityError("proba must be finite, non-negative, with rows summing to one")
    return P


def vote_counts(labels, k: int | None = None) -> np.ndarray:
    """Votes per sample and class ``(n, k)`` of a label matrix ``(n, a)``."""
    L, k = _check_matrix(labels, k)
    counts = np.zeros((L.shape[0], k), dtype=np.int64)
    rows, cols = np.nonzero(L >= 0)
    np.add.at(counts, (rows, L[rows, cols]), 1)
    return counts


# -- agreement ------------------------------------------------------------------------
def pairwise_kappa(labels, k: int | None = None, *, min_shared: int = 1) -> list[dict]:
    """Cohen's kappa of every pair of annotators on the samples both labeled.

    Returns ``[{"a": j1, "b": j2, "shared": m, "kappa": float or NaN}]`` for
    ``j1 < j2`` with at least ``min_shared`` shared samples.
    """
    L, k = _check_matrix(labels, k)
    has = L >= 0
    out = []
    for j1 in range(L.shape[1]):
        for j2 in range(j1 + 1, L.shape[1]):
            both = has[:, j1] & has[:, j2]
            m = int(both.sum())
            if m >= min_shared:
                out.append({"a": j1, "b": j2, "shared": m, "kappa": cohen_kappa(L[both, j1], L[both, j2], k)})
    return out


def krippendorff_alpha(labels, k: int | None = None) -> float:
    """Krippendorff's alpha for nominal data over all annotators; NaN when undefined.

    Samples with fewer than two labels carry no agreement information and are
    ignored. ``alpha = 1 - D_o / D_e`` from the coincidence matrix
    ``o[c, c'] = sum_u (pairs (c, c') in unit u) / (m_u - 1)`` (Krippendorff 2011,
    "Computing Krippendorff's alpha-reliability"). 1 = perfect, 0 = chance.
    """
    counts = vote_counts(labels, k).astype(np.float64)  # (n, k)
    m = counts.sum(axis=1)
    counts, m = counts[m >= 2], m[m >= 2]
    if counts.shape[0] == 0:
        return float("nan")
    # ordered pairs within a unit: n_c n_c' off the diagonal, n_c (n_c - 1) on it; each over m_u - 1
    o = (counts.T / (m - 1)) @ counts  # (k, k)
    o[np.diag_indices_from(o)] -= (counts / (m - 1)[:, None]).sum(axis=0)
    n_c = o.sum(axis=1)  # (k,)
    total = n_c.sum()
    disagree_observed = total - np.trace(o)
    disagree_expected = (total**2 - (n_c**2).sum()) / (total - 1.0)
    if disagree_expected <= 0:
        return float("nan")
    return float(1.0 - disagree_observed / disagree_expected)


# -- consensus ------------------------------------------------------------------------
@dataclass(frozen=True)
class ConsensusResult:
    """A consensus: ``labels`` ``(n,)`` (``-1`` for a sample nobody labeled) and ``posterior`` ``(n, k)``.

    ``posterior[i, c]`` is the method's probability that sample i's true class
    is c (vote shares for the majority vote). ``confusion`` ``(a, k, k)``
    (Dawid-Skene: ``confusion[j, true, given]``), ``priors`` ``(k,)``,
    ``annotator_weights`` ``(a,)`` and ``model_weight`` are set by the methods
    that estimate them.
    """

    method: str
    labels: np.ndarray
    posterior: np.ndarray
    confusion: np.ndarray | None = None
    priors: np.ndarray | None = None
    annotator_weights: np.ndarray | None = None
    model_weight: float | None = None
    iterations: int = 0


def majority_vote(labels, k: int | None = None, *, proba=None) -> ConsensusResult:
    """The class with the most votes per sample ``(n,)``; ``-1`` where nobody voted.

    Tie rule (deterministic): among the tied classes take the one the model
    gives the highest probability (when ``proba`` ``(n, k)`` is given), then the
    class with *fewer* labels over the whole matrix (so ties do not feed the
    majority class, as in cleanlab), then the smaller class index.
    """
    L, k = _check_matrix(labels, k)
    counts = vote_counts(L, k)  # (n, k)
    n = L.shape[0]
    tied = counts == counts.max(axis=1, keepdims=True)  # (n, k)
    if proba is not None:  # first tie-break: keep only the tied classes the model likes best
        P = np.where(tied, _check_proba(proba, n, k), -np.inf)
        tied &= P.max(axis=1, keepdims=True) == P
    frequency = counts.sum(axis=0)  # (k,)
    # then the rarer class, then the smaller index: one distinct integer key per class, higher wins
    rarer = np.lexsort((-np.arange(k), -frequency))  # classes from most frequent to rarest, larger index first
    key = np.empty(k, dtype=np.int64)
    key[rarer] = np.arange(k)
    out = np.argmax(np.where(tied, key[None, :], -1), axis=1)
    m = counts.sum(axis=1)
    out = np.where(m > 0, out, MISSING)
    with np.errstate(invalid="ignore", divide="ignore"):
        posterior = np.where(m[:, None] > 0, counts / np.maximum(m, 1)[:, None], 1.0 / k)
    return ConsensusResult("majority", out.astype(np.int64), posterior)


def dawid_skene(labels, k: int | None = None, *, max_iter: int = 100, tol: float = 1e-5) -> ConsensusResult:
    """Dawid-Skene consensus by EM: a confusion matrix per annotator and class priors.

    Started from the majority-vote shares (deterministic, no seed needed); the
    M-step counts each annotator's labels against the current posteriors,
    floors every entry at 1e-10 and normalizes each true-class row; the E-step
    is ``log p(c) + sum_j log confusion[j, c, given_j]``. Stops when the evidence
    lower bound per label changes by less than ``tol`` or after ``max_iter`` steps (the
    steps of crowd-kit's ``DawidSkene``; the posterior is that of the last
    E-step). ``confusion[j, c, g]`` is annotator j's
    probability of answering g for a sample of true class c. Samples nobody
    labeled get the priors and label ``-1``.
    """
    L, k = _check_matrix(labels, k)
    n, a = L.shape
    has = L >= 0
    rows, cols = np.nonzero(has)
    given = L[rows, cols]
    labeled = has.any(axis=1)
    T = majority_vote(L, k).posterior.copy()  # (n, k)
    T[~labeled] = 0.0

    def m_step(T):
        priors = np.clip(T[labeled].mean(axis=0), _EPS, None)  # (k,)
        conf = np.zeros((a, k, k))  # [annotator, true, given]
        np.add.at(conf, (cols, slice(None), given), T[rows])
        conf = np.clip(conf, _EPS, None)
        return priors, conf / conf.sum(axis=2, keepdims=True)

    def e_step(priors, conf):
        log_lik = np.tile(np.log(priors), (n, 1))  # (n, k)
        np.add.at(log_lik, rows, np.log(conf[cols, :, given]))
        log_lik -= log_lik.max(axis=1, keepdims=True)
        post = np.exp(log_lik)
        return post / post.sum(axis=1, keepdims=True), log_lik

    def elbo(T, priors, conf):  # per label, as crowd-kit computes it, so ``tol`` means the same
        joint = (T[rows] * (np.log(conf[cols, :, given]) + np.log(priors))).sum()
        Tc = np.clip(T[labeled], _EPS, None)
        return float(joint - (Tc * np.log(Tc)).sum()) / max(rows.size, 1)

    priors, conf = m_step(T)
    last, it = -np.inf, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is reported after the loop
        T, _ = e_step(priors, conf)
        priors, conf = m_step(T)
        value = elbo(T, priors, conf)
        if value - last < tol:
            break
        last = value
    post = T.copy()
    post[~labeled] = priors / priors.sum()
    out = np.where(labeled, post.argmax(axis=1), MISSING)
    return ConsensusResult("dawid-skene", out.astype(np.int64), post, confusion=conf, priors=priors, iterations=it)


def _agreement_with_others(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per annotator ``(a,)``: the share of their pairings with other annotators' labels that agree, and their count.

    A sample with m labels gives each of its annotators m - 1 pairings. NaN
    where an annotator shares no sample (cleanlab's annotator agreement).
    """
    n, a = L.shape
    has = L >= 0
    m = has.sum(axis=1)  # (n,)
    agree = np.zeros(a)
    pairs = np.zeros(a)
    multi = m >= 2
    for j in range(a):
        rows = has[:, j] & multi
        if not rows.any():
            continue
        same = ((L[rows] == L[rows, j][:, None]) & has[rows]).sum(axis=1) - 1  # others agreeing, (r,)
        agree[j] = same.sum()
        pairs[j] = (m[rows] - 1).sum()
    with np.errstate(invalid="ignore"):
        return np.where(pairs > 0, agree / np.maximum(pairs, 1), np.nan), pairs


def model_weighted_consensus(labels, proba, *, k: int | None = None) -> ConsensusResult:
    """CROWDLAB-like consensus: the annotators' labels and the model's probabilities, weighted by estimated skill.

    Follows cleanlab's ``get_label_quality_multiannotator`` (CROWDLAB, Goh et
    al. 2022, consensus ``best_quality``) step by step: a majority vote (ties
    by :func:`majority_vote`'s rule) defines a first consensus; on samples with
    two or more labels, the error of always answering the most common class is
    the baseline ``e0``; annotator j's weight is ``1 - (1 - agreement with
    others) / e0`` and the model's ``(1 - model error / e0) * sqrt(mean labels
    per sample)`` (floored at 1e-6); each label contributes a vector with the
    mean consensus agreement on its class and the rest spread evenly, and the
    posterior ``(n, k)`` is the weighted mean of these and ``proba``. The label
    is its argmax (ties: the majority vote). A sample with one label can be
    overruled by a confident model; samples nobody labeled get ``-1``.
    """
    L, k = _check_matrix(labels, k)
    n, a = L.shape
    P = _check_proba(proba, n, k)
    has = L >= 0
    m = has.sum(axis=1)
    mv = majority_vote(L, k, proba=P)
    multi = m >= 2
    labeled = m > 0
    if multi.any():
        agree_per_sample = (L[multi] == mv.labels[multi][:, None]).sum(axis=1) / m[multi]
        consensus_likelihood = float(agree_per_sample.mean())
        sub = mv.labels[multi]
        common = np.bincount(sub, minlength=k).argmax()
        baseline = max(float(np.mean(sub != common)), _CLIP)
        model_error = float(np.mean(P[multi].argmax(axis=1) != sub))
        others, _ = _agreement_with_others(L)
        others = np.where(np.isnan(others), np.nanmean(others), others)
    else:  # no overlap: nothing to estimate skills from; labels and model count alike
        consensus_likelihood, baseline, model_error = 1.0, 1.0, 0.0
        others = np.ones(a)
    weights = np.clip(1.0 - (1.0 - others) / baseline, _CLIP, None)  # (a,)
    model_weight = max(1.0 - model_error / baseline, _CLIP) * float(
        np.sqrt(m[labeled].mean() if labeled.any() else 1.0)
    )
    off = (1.0 - consensus_likelihood) / (k - 1)
    post = P * model_weight  # (n, k)
    total = np.full(n, model_weight)
    for j in range(a):
        rows = np.nonzero(has[:, j])[0]
        vec = np.full((rows.size, k), weights[j] * off)
        vec[np.arange(rows.size), L[rows, j]] = weights[j] * consensus_likelihood
        post[rows] += vec
        total[rows] += weights[j]
    post /= total[:, None]
    best = post == post.max(axis=1, keepdims=True)
    out = np.where(best.sum(axis=1) == 1, post.argmax(axis=1), mv.labels)
    out = np.where(labeled, out, MISSING)
    return ConsensusResult(
        "model-weighted", out.astype(np.int64), post, annotator_weights=weights, model_weight=float(model_weight)
    )


def consensus(labels, k: int | None = None, *, method: str = DEFAULT_CONSENSUS, proba=None) -> ConsensusResult:
    """The consensus of ``method`` (one of :data:`CONSENSUS_METHODS`); ``model-weighted`` needs ``proba`` ``(n, k)``."""
    if method not in CONSENSUS_METHODS:
        raise InputError(f"unknown consensus method {method!r}; expected one of {CONSENSUS_METHODS}")
    if method == "majority":
        return majority_vote(labels, k, proba=proba)
    if method == "dawid-skene":
        return dawid_skene(labels, k)
    if proba is None:
        raise InputError("consensus method 'model-weighted' needs the model's out-of-fold probabilities (proba)")
    return model_weighted_consensus(labels, proba, k=k)


# -- annotator quality ------------------------------------------------------------------
def flag_annotators(quality, shared, *, margin: float = 0.05, z: float = 2.0, min_shared: int = 10) -> np.ndarray:
    """Annotators well below the rest ``(a,)`` bool.

    Annotator j is flagged when it shares at least ``min_shared`` labels with
    others and its agreement with them, ``quality[j]``, is below the median of
    the *other* annotators' by more than ``margin`` (5 points) and by more than
    ``z`` binomial standard errors ``sqrt(q (1 - q) / shared[j])`` of that
    median ``q``. So one annotator is not flagged for a small sample, and no one
    is flagged when everybody is equally good or equally bad.
    """
    q = np.asarray(quality, dtype=np.float64)
    s = np.asarray(shared, dtype=np.float64)
    out = np.zeros(q.size, dtype=bool)
    for j in range(q.size):
        rest = np.delete(q, j)
        rest = rest[~np.isnan(rest)]
        if np.isnan(q[j]) or s[j] < min_shared or rest.size == 0:
            continue
        med = float(np.median(rest))
        se = np.sqrt(max(med * (1.0 - med), 1e-4) / s[j])
        out[j] = med - q[j] > max(margin, z * se)
    return out


def annotator_report(
    labels, k: int | None = None, *, result: ConsensusResult | None = None, proba=None, names: Sequence | None = None
) -> dict:
    """Agreement and quality of every annotator of a label matrix ``(n, a)``.

    ``result`` is the consensus to compare against (default: the default
    consensus); ``proba`` ``(n, k)`` the model's out-of-fold probabilities
    (rows of NaN where there are none). Returns::

        {"annotators": [{"name", "labels", "shared", "agreement_with_others",
                         "agreement_with_consensus", "agreement_with_model",
                         "quality", "rank", "flagged", "confusion"}],
         "pairs": [{"a", "b", "shared", "kappa"}], "alpha": float}

    ``quality`` is the agreement with the consensus over all of the
    annotator's labels; ``rank`` orders by it (1 = worst; ties by name).
    ``flagged`` follows :func:`flag_annotators` on the agreement with the
    others. ``confusion`` is the Dawid-Skene estimate ``(k, k)`` (rows: true
    class, columns: given) as nested lists. Undefined figures are None.
    """
    L, k = _check_matrix(labels, k)
    n, a = L.shape
    names = list(range(a)) if names is None else list(names)
    if len(names) != a:
        raise InputError(f"{len(names)} names given for {a} annotators")
    result = result if result is not None else consensus(L, k)
    ds = result if result.confusion is not None else dawid_skene(L, k)
    has = L >= 0
    others, shared = _agreement_with_others(L)
    model_pred = None
    if proba is not None:
        P = np.asarray(proba, dtype=np.float64)
        if P.shape != (n, k):
            raise ProbabilityError(f"proba must have shape ({n}, {k}), got {P.shape}")
        known = np.isfinite(P).all(axis=1)
        model_pred = np.where(known, np.nan_to_num(P).argmax(axis=1), MISSING)
    rows = []
    quality = np.full(a, np.nan)
    for j in range(a):
        mine = has[:, j]
        with_consensus = float(np.mean(L[mine, j] == result.labels[mine])) if mine.any() else None
        with_model = None
        if model_pred is not None:
            scored = mine & (model_pred >= 0)
            with_model = float(np.mean(L[scored, j] == model_pred[scored])) if scored.any() else None
        quality[j] = np.nan if with_consensus is None else with_consensus
        rows.append(
            {
                "name": names[j],
                "labels": int(mine.sum()),
                "shared": int(shared[j]),
                "agreement_with_others": None if np.isnan(others[j]) else float(others[j]),
                "agreement_with_consensus": with_consensus,
                "agreement_with_model": with_model,
                "quality": with_consensus,
                "confusion": np.round(ds.confusion[j], 4).tolist(),
            }
        )
    flags = flag_annotators(others, shared)
    order = sorted(range(a), key=lambda j: (np.inf if np.isnan(quality[j]) else quality[j], str(names[j])))
    for r, j in enumerate(order, start=1):
        rows[j]["rank"] = r
        rows[j]["flagged"] = bool(flags[j])
    pairs = [
        {
            "a": names[p["a"]],
            "b": names[p["b"]],
            "shared": p["shared"],
            "kappa": None if np.isnan(p["kappa"]) else float(p["kappa"]),
        }
        for p in pairwise_kappa(L, k)
    ]
    alpha = krippendorff_alpha(L, k)
    return {"annotators": rows, "pairs": pairs, "alpha": None if np.isnan(alpha) else alpha}

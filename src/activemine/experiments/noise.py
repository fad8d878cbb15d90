"""Simulated annotator errors for experiments and benchmarks: flip labels on purpose.

This is the only place labels are made wrong on purpose ("noise"); finding
wrong labels in real data is :mod:`activemine.dirty`. Two ways to set how many
labels flip:

* a **rate** over all rows (:func:`inject_label_noise`), the classic setting;
* a **noise matrix**, a rate per true class (:func:`inject_class_noise`,
  ``"1:0.2,0:0.01"``): on a rare class annotators miss positives far more
  often than they invent them, and a rate over all rows would flip more
  negatives into the rare class than it has positives.

``kind`` says which samples flip and to what: ``uniform`` (a seeded uniform
draw, to a uniformly drawn other class), ``ambiguous`` (a draw weighted by
ambiguity, to the most confusable other class) or ``ambiguous-top`` (exactly
the most ambiguous ones, a worst case no detector can see).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from activemine.dirty._labels import label_indices, labels_and_proba
from activemine.errors import InputError, SingleClassError

__all__ = ["NOISE_KINDS", "inject_class_noise", "inject_label_noise", "parse_noise_matrix"]

NOISE_KINDS = ("uniform", "ambiguous", "ambiguous-top")


def parse_noise_matrix(text: str, class_names: Sequence[str]) -> dict[int, float]:
    """``"1:0.2,0:0.01"`` -> ``{1: 0.2, 0: 0.01}``: flip rate per true class index.

    A class is named by its index or its name; classes not named keep their labels.
    """
    names = [str(c) for c in class_names]
    out: dict[int, float] = {}
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, sep, value = part.rpartition(":")
        if not sep or not key.strip():
            raise InputError(f"noise matrix entries look like CLASS:RATE (e.g. 1:0.2,0:0.01), got {part!r}")
        key = key.strip()
        if key in names:
            c = names.index(key)
        elif key.isdigit() and int(key) < len(names):
            c = int(key)
        else:
            raise InputError(
                f"noise matrix names class {key!r}, which is not a class index 0..{len(names) - 1} or one of {names}"
            )
        try:
            rate = float(value)
        except ValueError:
            raise InputError(f"noise matrix rate for class {key!r} must be a number, got {value!r}") from None
        if not 0.0 <= rate < 1.0:
            raise InputError(f"noise matrix rate for class {key!r} must be in [0, 1), got {rate}")
        if c in out:
            raise InputError(f"noise matrix names class {key!r} twice")
        out[c] = rate
    if not out:
        raise InputError(f"noise matrix is empty: {text!r}; expected entries such as 1:0.2,0:0.01")
    return out


def _ambiguity(idx: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(target, ambiguity)``, both ``(n,)``: each row's most confusable other class and its probability."""
    n = idx.size
    other = p.copy()
    other[np.arange(n), idx] = -np.inf  # (n, k): every class but the given one
    target = other.argmax(axis=1)
    return target, other[np.arange(n), target]


def _pick(
    candidates: np.ndarray, n_flip: int, kind: str, ambiguity: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """Sorted rows among ``candidates`` to flip."""
    if kind == "uniform":
        return np.sort(rng.choice(candidates, size=n_flip, replace=False))
    u = rng.random(candidates.size)  # (m,) in [0, 1)
    a = ambiguity[candidates]
    if kind == "ambiguous":
        # weighted draw without replacement: the n_flip largest keys log(1 - u) / w (Efraimidis-Spirakis)
        with np.errstate(divide="ignore"):
            key = np.log1p(-u) / np.maximum(a, 1e-12)
        order = np.lexsort((u, -key))
    else:
        order = np.lexsort((u, -a))
    return np.sort(candidates[order[:n_flip]])


def _flip(y, rates: np.ndarray | float, *, kind: str, proba, classes, random_state: int):
    y = np.asarray(y)
    if kind not in NOISE_KINDS:
        raise InputError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    k = classes.size
    if k < 2:
        raise SingleClassError(f"cannot flip labels with fewer than two classes, got {classes.tolist()}")
    idx = label_indices(y, classes, k=k, name="y")
    ambiguity = target = None
    if kind != "uniform":
        if proba is None:
            raise InputError(f"kind={kind!r} needs proba (n, k) from a model trained on clean labels")
        idx, p = labels_and_proba(y, proba, classes)
        target, ambiguity = _ambiguity(idx, p)
    rng = np.random.default_rng(random_state)
    if np.ndim(rates) == 0:
        groups = [(np.arange(idx.size), float(rates))]
    else:
        groups = [(np.flatnonzero(idx == c), float(rates[c])) for c in range(k)]
    rows = np.sort(
        np.concatenate([_pick(members, int(round(r * members.size)), kind, ambiguity, rng) for members, r in groups])
    )
    if kind == "uniform":
        new = (idx[rows] + rng.integers(1, k, size=rows.size)) % k  # never the given class
    else:
        new = target[rows]
    noisy = y.copy()
    noisy[rows] = classes[new]
    flipped = np.zeros(idx.size, dtype=bool)
    flipped[rows] = True
    return noisy, flipped


def inject_label_noise(
    y, rate: float, *, kind: str = "uniform", proba=None, classes: Sequence | None = None, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``round(rate * n)`` labels; returns ``(noisy_y, flipped_mask)``, both ``(n,)``.

    * ``kind="uniform"``: the flipped samples are a seeded uniform draw and
      each goes to a uniformly drawn other class.
    * ``kind="ambiguous"`` (ambiguity-correlated): each flipped sample goes
      to its most confusable other class (judged by ``proba``), and a
      sample's chance of being among the flipped is proportional to its
      ambiguity, the probability of that class (a seeded weighted draw
      without replacement, Efraimidis-Spirakis keys ``log(1 - u) / ambiguity``).
      Annotators mostly err on the confusable samples, but not by a hard
      rule, so a detector has something to find.
    * ``kind="ambiguous-top"`` (the worst case): the flipped samples are
      exactly the ``round(rate * n)`` most ambiguous ones. The flips are then
      a function of the clean model, so noisy labels agree with any model of
      them near the boundary and no detector finds them (benchmarks/label_noise.py).

    ``proba`` ``(n, k)`` should come from a model trained on clean labels,
    out of fold (in-sample probabilities are over-confident, so the ranking
    degenerates); ties are broken by the seed.

    ``classes`` are the labels of ``proba``'s columns (default: the sorted
    distinct values of ``y``); every class can be a flip target.
    """
    if not 0.0 <= rate < 1.0:
        raise InputError(f"noise rate must be in [0, 1), got {rate}")
    return _flip(y, rate, kind=kind, proba=proba, classes=classes, random_state=random_state)


def inject_class_noise(
    y,
    rates: dict[int, float],
    *,
    kind: str = "ambiguous",
    proba=None,
    classes: Sequence | None = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Flip ``round(rates[c] * n_c)`` labels of each true class c; returns ``(noisy_y, flipped_mask)``.

    ``rates`` maps class indices (into ``classes``, the sorted distinct values
    of ``y`` by default) to flip rates in ``[0, 1)``; classes not in it keep
    their labels. Within a class, ``kind`` chooses the flipped samples and
    their new class as in :func:`inject_label_noise` (default ``ambiguous``:
    the confusable samples of the class are the likely ones to flip).
    """
    classes_ = np.unique(y) if classes is None else np.asarray(classes)
    per_class = np.zeros(classes_.size)
    for c, r in rates.items():
        if not (isinstance(c, (int, np.integer)) and 0 <= c < classes_.size):
            raise InputError(f"noise matrix class index {c!r} is not in 0..{classes_.size - 1}")
        if not 0.0 <= r < 1.0:
            raise InputError(f"noise matrix rate for class {c} must be in [0, 1), got {r}")
        per_class[c] = r
    return _flip(y, per_class, kind=kind, proba=proba, classes=classes_, random_state=random_state)

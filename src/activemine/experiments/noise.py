"""Simulated annotator errors for experiments and benchmarks: flip labels on purpose.

This is the only place labels are made wrong on purpose ("noise"); finding
wrong labels in real data is :mod:`activemine.dirty`. Three ways to set how many
labels flip:

* a **share of wrong labels within each observed class**
  (:func:`inject_observed_noise`, the default of ``activemine experiment
  --noise``): a class's labels stay about ``1 - rate`` right however rare the
  class is. In a binary task ``rate`` of the rarer class flip and as many of
  the other (the class-conditional model of annotator noise, Natarajan et al.
  2013, with the flip counts matched so that neither observed class holds more
  than ``rate`` wrong labels);
* a **rate** over all rows (:func:`inject_label_noise`), the classic setting.
  On a rare class it is degenerate: 10% of all rows spent on the most
  ambiguous ones is ten times a 1% class, and almost every row labeled
  positive is then wrong;
* a **noise matrix**, a rate per true class (:func:`inject_class_noise`,
  ``"1:0.2,0:0.01"``).

Whatever the model, :func:`observed_wrong_shares` measures the share of wrong
labels in each observed class, and :func:`check_wrong_shares` refuses a result
in which most of a class's labels are wrong unless that is asked for by name
(``allow_majority_wrong``).

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

__all__ = [
    "NOISE_KINDS",
    "NOISE_MODELS",
    "check_wrong_shares",
    "inject_class_noise",
    "inject_label_noise",
    "inject_observed_noise",
    "observed_wrong_shares",
    "parse_noise_matrix",
]

NOISE_KINDS = ("uniform", "ambiguous", "ambiguous-top")
#: How a noise rate is read: ``class`` (the share of wrong labels within each observed class, the default)
#: or ``rows`` (a share of all rows, whatever class they fall in: degenerate on a rare class).
NOISE_MODELS = ("class", "rows")


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


def _order(n: int, kind: str, ambiguity: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """All rows ``(n,)`` in the order they are offered a flip: seeded uniform, ambiguity-weighted, or most ambiguous first."""
    u = rng.random(n)
    if kind == "uniform":
        return np.argsort(u, kind="stable")
    if kind == "ambiguous":
        with np.errstate(divide="ignore"):
            key = np.log1p(-u) / np.maximum(ambiguity, 1e-12)
        return np.lexsort((u, -key))
    return np.lexsort((u, -ambiguity))


def _flip_inputs(y, *, kind: str, proba, classes):
    """``(y, classes, idx, target, ambiguity)`` for a flip: the labels checked and as class indices ``(n,)``,
    and for the ambiguity-weighted kinds each row's most confusable other class and its probability."""
    y = np.asarray(y)
    if kind not in NOISE_KINDS:
        raise InputError(f"unknown noise kind {kind!r}; expected one of {NOISE_KINDS}")
    classes = np.unique(y) if classes is None else np.asarray(classes)
    if classes.size < 2:
        raise SingleClassError(f"cannot flip labels with fewer than two classes, got {classes.tolist()}")
    idx = label_indices(y, classes, k=classes.size, name="y")
    target = ambiguity = None
    if kind != "uniform":
        if proba is None:
            raise InputError(f"kind={kind!r} needs proba (n, k) from a model trained on clean labels")
        idx, p = labels_and_proba(y, proba, classes)
        target, ambiguity = _ambiguity(idx, p)
    return y, classes, idx, target, ambiguity


def inject_observed_noise(
    y, rate: float, *, kind: str = "uniform", proba=None, classes: Sequence | None = None, random_state: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Flip labels so that at most ``rate`` of the labels of each observed class are wrong; returns
    ``(noisy_y, flipped_mask)``, both ``(n,)``.

    Rows are offered a flip in the order ``kind`` gives (a seeded uniform
    order; ambiguity-weighted, Efraimidis-Spirakis keys as in
    :func:`inject_label_noise`; or the most ambiguous first), each towards its
    new class (uniformly drawn among the other classes with room, or the most
    confusable one). A row flips while its true class has given fewer than
    ``floor(rate * n_c)`` rows away and its new class has taken fewer than
    ``floor(rate * n_t)``: every observed class then holds at most ``rate``
    wrong labels (``in / (n - out + in) <= rate`` when both are at most
    ``rate * n``). In a binary task that is ``floor(rate * n_rare)`` of the
    rarer class flipped and as many of the other.
    """
    if not 0.0 <= rate < 1.0:
        raise InputError(f"noise rate must be in [0, 1), got {rate}")
    y, classes, idx, target, ambiguity = _flip_inputs(y, kind=kind, proba=proba, classes=classes)
    k = classes.size
    rng = np.random.default_rng(random_state)
    cap = np.floor(rate * np.bincount(idx, minlength=k) + 1e-9).astype(np.int64)  # (k,)
    out, into = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    new = idx.copy()
    for row in _order(idx.size, kind, ambiguity, rng):
        c = idx[row]
        if out[c] >= cap[c]:
            if (out >= cap).all():
                break
            continue
        if kind == "uniform":
            room = np.flatnonzero((into < cap) & (np.arange(k) != c))
            if not room.size:
                continue
            t = room[rng.integers(room.size)]
        else:
            t = target[row]
            if into[t] >= cap[t]:
                continue
        new[row] = t
        out[c] += 1
        into[t] += 1
    flipped = new != idx
    noisy = y.copy()
    noisy[flipped] = classes[new[flipped]]
    return noisy, flipped


def observed_wrong_shares(y_true, y_obs, classes: Sequence) -> dict:
    """Per observed class: ``{class: {"rows", "wrong", "wrong_share"}}``, rows labeled that class and how
    many of them are wrong; plus per true class ``"flipped"`` (its rows given another label)."""
    y_true, y_obs = np.asarray(y_true), np.asarray(y_obs)
    out = {}
    for c in classes:
        labeled = y_obs == c
        wrong = int((labeled & (y_true != c)).sum())
        out[c] = {
            "rows": int(labeled.sum()),
            "wrong": wrong,
            "wrong_share": wrong / labeled.sum() if labeled.any() else 0.0,
            "flipped": int(((y_true == c) & (y_obs != c)).sum()),
        }
    return out


def check_wrong_shares(y_true, y_obs, classes: Sequence, names: Sequence[str], *, allow_majority_wrong: bool) -> None:
    """Raise :class:`InputError` when most labels of an observed class are wrong, unless that is allowed."""
    if allow_majority_wrong:
        return
    shares = observed_wrong_shares(y_true, y_obs, classes)
    bad = [(n, s) for n, s in zip(names, shares.values()) if s["rows"] and s["wrong_share"] > 0.5]
    if bad:
        text = ", ".join(f"{n!r}: {s['wrong']} of {s['rows']} wrong ({s['wrong_share']:.0%})" for n, s in bad)
        raise InputError(
            f"this noise setting makes most labels of a class wrong ({text}); a measurement of the simulator more "
            "than of any strategy. Use the per-class noise model, a smaller rate, or allow it by name "
            "(allow_majority_wrong, --allow-majority-wrong)"
        )


def _flip(y, rates: np.ndarray | float, *, kind: str, proba, classes, random_state: int):
    y, classes, idx, target, ambiguity = _flip_inputs(y, kind=kind, proba=proba, classes=classes)
    k = classes.size
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

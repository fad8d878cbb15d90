"""Simulated annotators: confusion matrices, overlap, and labels drawn from them (for experiments and benchmarks).

A team is described by an :class:`AnnotatorSpec`, written on the command line as
``key=value`` pairs (``activemine experiment --annotators SPEC``)::

    n=5,noise=0.05,bad=1,bad-rate=0.3,overlap=0.1,per-item=2[,pair=3:5][,consensus=dawid-skene]

* ``n`` annotators; each gives the true class with probability ``1 - noise``
  and otherwise a uniformly drawn other class;
* the last ``bad`` of them also confuse the *hardest pair* of classes: a sample
  of either class of the pair gets the other one with probability
  ``bad-rate`` (on top of their ``noise``);
* every sample is labeled by one seeded annotator; a seeded share ``overlap`` of
  the samples is labeled by ``per-item`` distinct annotators;
* ``pair`` fixes the hardest pair; by default it is the two classes whose
  feature means are closest (:func:`hardest_pair`, no model needed);
* ``consensus`` turns several labels into one for training (default
  :data:`activemine.annotators.agreement.DEFAULT_CONSENSUS`).

Every draw takes a seed; the same spec and seed give the same labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from activemine.annotators.agreement import CONSENSUS_METHODS, DEFAULT_CONSENSUS, MISSING, consensus
from activemine.errors import InputError

__all__ = [
    "AnnotatorSpec",
    "add_second_opinions",
    "annotator_names",
    "check_experiment_spec",
    "confusion_matrices",
    "experiment_labels",
    "hardest_pair",
    "parse_annotator_spec",
    "simulate_labels",
    "simulated_training_labels",
]


@dataclass(frozen=True)
class AnnotatorSpec:
    """A simulated team (see the module docstring); :meth:`check` validates it."""

    n: int = 5
    noise: float = 0.05
    bad: int = 1
    bad_rate: float = 0.3
    overlap: float = 0.1
    per_item: int = 2
    pair: tuple[int, int] | None = None
    consensus: str = DEFAULT_CONSENSUS

    def check(self, k: int | None = None) -> AnnotatorSpec:
        if self.n < 1:
            raise InputError(f"annotators: n must be at least 1, got {self.n}")
        if not 0 <= self.bad <= self.n:
            raise InputError(f"annotators: bad must be between 0 and n={self.n}, got {self.bad}")
        for name, v in (("noise", self.noise), ("bad-rate", self.bad_rate)):
            if not 0.0 <= v < 1.0:
                raise InputError(f"annotators: {name} must be in [0, 1), got {v}")
        if not 0.0 <= self.overlap < 1.0:
            raise InputError(f"annotators: overlap must be in [0, 1), got {self.overlap}")
        if self.overlap > 0 and not 2 <= self.per_item <= self.n:
            raise InputError(
                f"annotators: per-item must be between 2 and n={self.n} when overlap > 0, got {self.per_item}"
            )
        if self.consensus not in CONSENSUS_METHODS or self.consensus == "model-weighted":
            raise InputError(f"annotators: consensus must be 'majority' or 'dawid-skene' here, got {self.consensus!r}")
        if self.pair is not None:
            a, b = self.pair
            if a == b or min(a, b) < 0 or (k is not None and max(a, b) >= k):
                raise InputError(f"annotators: pair must be two different class indices below {k}, got {a}:{b}")
        return self


def parse_annotator_spec(text: str) -> AnnotatorSpec:
    """``"n=5,noise=0.05,bad=1,bad-rate=0.3,overlap=0.1,per-item=2"`` -> :class:`AnnotatorSpec` (checked)."""
    fields: dict = {}
    casts = {
        "n": int,
        "bad": int,
        "per_item": int,
        "noise": float,
        "bad_rate": float,
        "overlap": float,
        "consensus": str,
        "pair": lambda v: tuple(int(x) for x in v.split(":")),
    }
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in casts:
            raise InputError(
                f"annotators: expected key=value with keys {sorted(k.replace('_', '-') for k in casts)}, got {part!r}"
            )
        try:
            fields[key] = casts[key](value.strip())
        except ValueError:
            raise InputError(f"annotators: bad value for {key.replace('_', '-')}: {value!r}") from None
        if key == "pair" and len(fields[key]) != 2:
            raise InputError(f"annotators: pair takes two classes such as 3:5, got {value!r}")
    return AnnotatorSpec(**fields).check()


def annotator_names(spec: AnnotatorSpec) -> list[str]:
    """``a1, a2, ...`` for the good annotators, then ``bad1, ...``."""
    good = spec.n - spec.bad
    return [f"a{i + 1}" for i in range(good)] + [f"bad{i + 1}" for i in range(spec.bad)]


def hardest_pair(X, y, k: int, *, involving: int | None = None) -> tuple[int, int]:
    """The two classes whose feature means are closest (Euclidean); ties by the smaller indices.

    ``involving`` restricts the pair to one holding that class (e.g. the
    positive class of a one-against-the-rest task, whose confusions are the
    only ones that task sees).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    means = np.stack([X[y == c].mean(axis=0) if (y == c).any() else np.full(X.shape[1], np.inf) for c in range(k)])
    d = ((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    d[np.tril_indices(k)] = np.inf
    if involving is not None:
        keep = np.zeros((k, k), dtype=bool)
        keep[involving, :] = keep[:, involving] = True
        d[~keep] = np.inf
    a, b = np.unravel_index(int(np.argmin(d)), d.shape)
    return int(a), int(b)


def confusion_matrices(spec: AnnotatorSpec, k: int, pair: tuple[int, int] | None = None) -> np.ndarray:
    """Each annotator's ``(k, k)`` matrix ``[true, given]``, stacked ``(n, k, k)``; rows sum to one."""
    base = np.full((k, k), spec.noise / (k - 1))
    np.fill_diagonal(base, 1.0 - spec.noise)
    out = np.repeat(base[None], spec.n, axis=0)
    pair = pair if pair is not None else spec.pair
    if spec.bad and pair is None:
        raise InputError("annotators: a bad annotator needs the hardest pair of classes (pair=A:B or features)")
    for j in range(spec.n - spec.bad, spec.n):
        for t, g in (pair, pair[::-1]):
            row = out[j, t] * (1.0 - spec.bad_rate)
            row[g] += spec.bad_rate
            out[j, t] = row
    return out


def _draw(confusion: np.ndarray, true: np.ndarray, who: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per (true class, annotator) pair, drawn from ``confusion[who, true]``."""
    cdf = np.cumsum(confusion[who, true], axis=1)  # (m, k)
    u = rng.random(true.size)[:, None]
    return np.minimum((u >= cdf).sum(axis=1), confusion.shape[1] - 1)


def simulate_labels(
    y_true, spec: AnnotatorSpec, *, k: int, pair: tuple[int, int] | None = None, random_state: int = 0
) -> np.ndarray:
    """A label matrix ``(n, spec.n)`` (``-1`` = no label) for true class indices ``y_true`` ``(n,)``."""
    spec.check(k)
    y = np.asarray(y_true, dtype=np.int64)
    n = y.size
    rng = np.random.default_rng([random_state, 1601])
    confusion = confusion_matrices(spec, k, pair)
    per = np.ones(n, dtype=np.int64)
    shared = rng.choice(n, size=int(round(spec.overlap * n)), replace=False) if spec.overlap > 0 else np.empty(0, int)
    per[shared] = spec.per_item
    # distinct annotators per sample: the first per[i] of a random permutation of the team
    order = np.argsort(rng.random((n, spec.n)), axis=1)  # (n, a)
    out = np.full((n, spec.n), MISSING, dtype=np.int64)
    for slot in range(int(per.max(initial=1))):
        rows = np.nonzero(per > slot)[0]
        who = order[rows, slot]
        out[rows, who] = _draw(confusion, y[rows], who, rng)
    return out


def add_second_opinions(
    labels, y_true, rows, spec: AnnotatorSpec, *, k: int, pair: tuple[int, int] | None = None, random_state: int = 0
) -> np.ndarray:
    """A copy of ``labels`` ``(n, a)`` with one more label for each of ``rows``, from an annotator who has none there.

    Rows every annotator already labeled are left as they are.
    """
    L = np.array(labels, dtype=np.int64, copy=True)
    rows = np.asarray(rows, dtype=np.int64)
    rng = np.random.default_rng([random_state, 1602])
    confusion = confusion_matrices(spec, k, pair)
    free = L[rows] == MISSING  # (r, a)
    key = np.where(free, rng.random(free.shape), -1.0)
    who = key.argmax(axis=1)
    ok = free[np.arange(rows.size), who]
    rows, who = rows[ok], who[ok]
    L[rows, who] = _draw(confusion, np.asarray(y_true, dtype=np.int64)[rows], who, rng)
    return L


def simulated_training_labels(
    y_true, spec: AnnotatorSpec, *, k: int, X=None, random_state: int = 0
) -> tuple[np.ndarray, dict]:
    """Labels ``(n,)`` a team would return for training (the consensus where several exist), and a summary.

    The hook of ``activemine experiment --annotators``: every training sample
    is labeled by the simulated team; the summary (spec, hardest pair, wrong
    share of the consensus) goes into ``results.json``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    pair = spec.pair
    if pair is None and spec.bad:
        if X is None:
            raise InputError("annotators: give pair=A:B or features to find the hardest pair")
        pair = hardest_pair(X, y, k)
    L = simulate_labels(y, spec, k=k, pair=pair, random_state=random_state)
    result = consensus(L, k, method=spec.consensus)
    summary = dict(
        asdict(spec),
        pair=list(pair) if pair is not None else None,
        wrong_share=float(np.mean(result.labels != y)),
        labels=int((L >= 0).sum()),
    )
    return result.labels, summary


def check_experiment_spec(text: str, *, noise: float = 0.0) -> AnnotatorSpec:
    """Parse and check ``experiment --annotators SPEC`` before anything is loaded or fitted."""
    if noise > 0:
        raise InputError(f"give either --noise ({noise}) or --annotators, not both: the annotators are the noise")
    return parse_annotator_spec(text)


def experiment_labels(task, spec: AnnotatorSpec, seed: int) -> tuple[np.ndarray, dict]:
    """The labels ``(n,)`` a simulated team returns for ``task.y_train`` (an experiment's hook), and its summary.

    ``spec``: the team, parsed when the experiment's settings were checked
    (:func:`check_experiment_spec`). The team's draws take ``seed``; in a binary
    task the hardest pair is the two classes.
    """
    k = len(task.class_names)
    return simulated_training_labels(task.y_train, spec.check(k), k=k, X=task.X_train, random_state=seed)

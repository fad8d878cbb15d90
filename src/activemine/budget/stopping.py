"""Stopping criteria: can a multi-round run or a labeling campaign stop labeling now?

Each criterion reads what the rounds so far left behind, one :class:`RoundRecord`
per round, oldest first:

* ``stop_predictions`` ``(m,)``: the predicted class index of the model trained
  after the round on a fixed, seeded *stop set* of ``m`` pool rows (the same
  rows every round; see :func:`choose_stop_set`);
* ``batch_uncertainty``: the mean uncertainty of the batch the round selected,
  under the model that selected it (:func:`normalized_uncertainty`: **higher =
  more uncertain**, 0 = certain, 1 = uniform probabilities);
* ``metric``: a validation metric after the round (**higher = better**), when
  one exists;
* ``labels``: labeled samples the model after the round trained on;
* ``refit_predictions`` ``(m,)``: the stop-set predictions of a second model
  trained on the same labels as the round's model with another seed (a
  *refit*), when the caller can afford that fit.

The criteria:

=================  ============================================================
``kappa``          stabilizing predictions (Bloodgood & Vijay-Shanker 2009):
                   Cohen's kappa (:func:`activemine.metrics.cohen_kappa`) between consecutive rounds' stop-set
                   predictions, averaged over the last ``window`` pairs, is at
                   least ``threshold`` (0.99). The same decisions as
                   small-text's ``KappaAverage`` for the same settings.
``kappa-refit``    stabilizing predictions against the model's own seed noise
                   (:class:`RefitKappaStop`): the kappa between the previous
                   round's model and this round's refit has come within
                   ``tolerance`` of the *ceiling*, the kappa between the
                   round's model and its refit (the agreement two fits of the
                   same labels reach), averaged over the last ``window`` rounds.
``uncertainty``    the mean uncertainty of the round's batch is below ``level``.
``plateau``        the validation metric made no new best by ``min_delta``
                   within the last ``window`` rounds (early-stopping patience);
                   a curve still rising never fires it.
``max``            a maximum number of rounds or of labels is reached.
=================  ============================================================

:meth:`decide` returns a :class:`StopDecision`: whether to stop, and the figure
it decided on (the mean kappa, the mean gap to the refit ceiling, the mean
uncertainty, the last gain, the rounds or labels). :func:`first_stop` replays a finished run and tells at which round
each criterion would have stopped it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from activemine.errors import InputError
from activemine.metrics import cohen_kappa

__all__ = [
    "CRITERIA",
    "KappaStop",
    "MaxStop",
    "PlateauStop",
    "RefitKappaStop",
    "RoundRecord",
    "StopDecision",
    "UncertaintyStop",
    "choose_stop_set",
    "cohen_kappa",
    "consecutive_kappas",
    "default_criteria",
    "first_stop",
    "normalized_uncertainty",
    "refit_kappas",
]

#: Criterion names, in the order reports list them.
CRITERIA = ("kappa", "kappa-refit", "uncertainty", "plateau", "max")


@dataclass(frozen=True)
class StopDecision:
    """One criterion's answer after a round.

    ``value`` is the figure the decision rests on (``None`` when there is not
    enough history yet, then ``stop`` is False and ``detail`` says what is
    missing); ``threshold`` is what it was compared with.
    """

    criterion: str
    stop: bool
    value: float | None
    threshold: float
    detail: str

    def as_dict(self) -> dict:
        return {
            "criterion": self.criterion,
            "stop": self.stop,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RoundRecord:
    """What one round leaves behind (fields a caller does not have stay ``None``).

    ``round`` counts from 1; a record of round 0 (the model before any round,
    trained on the initial labels) may lead the history: it gives the first
    kappa a predecessor and the plateau a starting point, but no criterion
    stops at it.
    """

    round: int
    labels: int
    stop_predictions: np.ndarray | None = None
    batch_uncertainty: float | None = None
    metric: float | None = None
    refit_predictions: np.ndarray | None = None


# -- figures -----------------------------------------------------------------------


def _check_stop_predictions(*vectors) -> None:
    if any(np.asarray(v).size == 0 for v in vectors):
        raise InputError("predictions are empty; the stop set holds no rows")


def consecutive_kappas(predictions: Sequence, *, n_classes: int | None = None) -> list[float]:
    """Kappa between each pair of consecutive prediction vectors: ``len(predictions) - 1`` values."""
    _check_stop_predictions(*predictions)
    return [cohen_kappa(p, q, n_classes=n_classes) for p, q in zip(predictions[:-1], predictions[1:])]


def refit_kappas(previous, current, refit, *, n_classes: int | None = None) -> tuple[float, float]:
    """``(change, ceiling)`` of one round from three stop-set prediction vectors ``(m,)``.

    ``ceiling`` = kappa(``current``, ``refit``): two fits of the round's
    labels that differ only in their seed, the most agreement a model this
    seed-sensitive can show. ``change`` = kappa(``previous``, ``refit``): the
    previous round's model against the refit, which differ in the labels
    *and* the seed. Both share the refit, so ``ceiling - change`` is what the
    round's new labels changed beyond seed noise; it is about 0 once new labels
    no longer change the predictions. (Comparing ``previous`` with ``current``
    instead would compare two fits of one seed, which agree more than two
    seeds do when the model samples rows or columns, against a ceiling measured
    across seeds: the gap could close while the labels still matter.)
    """
    _check_stop_predictions(previous, current, refit)
    change = cohen_kappa(previous, refit, n_classes=n_classes)
    ceiling = cohen_kappa(current, refit, n_classes=n_classes)
    return change, ceiling


def normalized_uncertainty(proba) -> np.ndarray:
    """Least confidence scaled to [0, 1]: ``(1 - max_c p_c) * k / (k - 1)``, ``(n, k)`` -> ``(n,)``.

    **Higher = more uncertain**; 0 for a certain prediction, 1 for uniform
    probabilities, whatever the number of classes ``k``.
    """
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(f"probabilities must have shape (n, k) with k >= 2, got {p.shape}")
    k = p.shape[1]
    return (1.0 - p.max(axis=1)) * k / (k - 1)


def choose_stop_set(n_pool: int, size: int, *, random_state: int = 0) -> np.ndarray:
    """Sorted row indices ``(size,)`` of a seeded sample of a pool of ``n_pool`` rows, the stop set."""
    if int(size) != size or size < 1:
        raise InputError(f"the stop set size must be a positive integer, got {size}")
    if size > n_pool:
        raise InputError(f"the stop set size {size} is larger than the pool ({n_pool} rows); choose at most {n_pool}")
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(n_pool, size=int(size), replace=False))


# -- criteria ----------------------------------------------------------------------


def _check_window(window) -> None:
    if int(window) != window or window < 1:
        raise InputError(f"window must be a positive integer, got {window}")


@dataclass(frozen=True)
class KappaStop:
    """Stabilizing predictions: mean kappa of the last ``window`` consecutive pairs >= ``threshold``.

    Fires at the earliest after ``window + 1`` rounds with stop-set predictions.
    """

    window: int = 3
    threshold: float = 0.99
    n_classes: int | None = None
    name: str = "kappa"

    def __post_init__(self):
        _check_window(self.window)
        if not -1.0 <= self.threshold <= 1.0:
            raise InputError(f"kappa threshold must be in [-1, 1], got {self.threshold}")

    def decide(self, rounds: Sequence[RoundRecord]) -> StopDecision:
        preds = [r.stop_predictions for r in rounds if r.stop_predictions is not None]
        if len(preds) < self.window + 1:
            return StopDecision(
                self.name,
                False,
                None,
                self.threshold,
                f"needs {self.window + 1} rounds with stop-set predictions, has {len(preds)}",
            )
        kappas = consecutive_kappas(preds[-(self.window + 1) :], n_classes=self.n_classes)
        mean = float(np.mean(kappas))
        stop = mean >= self.threshold
        return StopDecision(
            self.name,
            stop,
            mean,
            self.threshold,
            f"mean kappa of the last {self.window} round pairs {mean:.4f} {'>=' if stop else '<'} {self.threshold:g}",
        )


@dataclass(frozen=True)
class RefitKappaStop:
    """Stabilizing predictions against the refit ceiling: mean ``ceiling - change`` of the last ``window`` rounds <= ``tolerance``.

    Per round, from :func:`refit_kappas`: ``change`` = kappa(previous round's
    model, this round's refit), ``ceiling`` = kappa(this round's model, its
    refit). A model whose refits agree only at kappa 0.8 never shows 0.99
    between consecutive rounds, however many labels it gets; this criterion
    asks instead whether a round still changes the predictions by more than a
    refit alone does. The figure is the mean gap (**lower = more stable**;
    about 0 once labels stop mattering). Needs ``window`` rounds after round 0
    whose records carry ``refit_predictions`` and a predecessor with
    ``stop_predictions``. A deterministic model (refit = model) has ceiling 1,
    and the criterion becomes plain kappa with threshold ``1 - tolerance``.
    """

    window: int = 3
    tolerance: float = 0.01
    n_classes: int | None = None
    name: str = "kappa-refit"

    def __post_init__(self):
        _check_window(self.window)
        if not 0.0 <= self.tolerance < 1.0:
            raise InputError(f"kappa-refit tolerance must be in [0, 1), got {self.tolerance}")

    def gaps(self, rounds: Sequence[RoundRecord]) -> list[tuple[int, float, float]]:
        """``(round, change, ceiling)`` of every record with a refit that follows a record with predictions."""
        out = []
        with_preds = [r for r in rounds if r.stop_predictions is not None]
        for prev, cur in zip(with_preds[:-1], with_preds[1:]):
            if cur.refit_predictions is not None:
                change, ceiling = refit_kappas(
                    prev.stop_predictions, cur.stop_predictions, cur.refit_predictions, n_classes=self.n_classes
                )
                out.append((cur.round, change, ceiling))
        return out

    def decide(self, rounds: Sequence[RoundRecord]) -> StopDecision:
        with_preds = [r for r in rounds if r.stop_predictions is not None]
        # the last `window` rounds must each have a refit: a gap from an older round says nothing of now
        last = with_preds[-(self.window + 1) :]
        if len(last) < self.window + 1 or any(r.refit_predictions is None for r in last[1:]):
            have = sum(r.refit_predictions is not None for r in with_preds[1:])
            return StopDecision(
                self.name,
                False,
                None,
                self.tolerance,
                f"needs {self.window} consecutive rounds with refit predictions after a round with "
                f"stop-set predictions, has {have}",
            )
        triples = self.gaps(last)
        change = float(np.mean([t[1] for t in triples]))
        ceiling = float(np.mean([t[2] for t in triples]))
        gap = ceiling - change
        stop = gap <= self.tolerance
        return StopDecision(
            self.name,
            stop,
            gap,
            self.tolerance,
            f"last {self.window} rounds: kappa to the previous round {change:.4f}, refit ceiling "
            f"{ceiling:.4f}, gap {gap:.4f} {'<=' if stop else '>'} {self.tolerance:g}",
        )


@dataclass(frozen=True)
class UncertaintyStop:
    """The mean normalized uncertainty of the last round's batch is below ``level``."""

    level: float = 0.05
    name: str = "uncertainty"

    def __post_init__(self):
        if not 0.0 < self.level <= 1.0:
            raise InputError(f"uncertainty level must be in (0, 1], got {self.level}")

    def decide(self, rounds: Sequence[RoundRecord]) -> StopDecision:
        if not rounds or rounds[-1].batch_uncertainty is None:
            return StopDecision(self.name, False, None, self.level, "no batch uncertainty for the last round")
        u = float(rounds[-1].batch_uncertainty)
        stop = u < self.level
        return StopDecision(
            self.name,
            stop,
            u,
            self.level,
            f"mean uncertainty of the last batch {u:.4f} {'<' if stop else '>='} {self.level:g}",
        )


@dataclass(frozen=True)
class PlateauStop:
    """No new best validation metric by at least ``min_delta`` within the last ``window`` rounds.

    The figure is the gain of the best of the last ``window`` metrics over
    the best before them; a curve that keeps setting new bests never stops.
    """

    window: int = 3
    min_delta: float = 0.005
    name: str = "plateau"

    def __post_init__(self):
        _check_window(self.window)
        if self.min_delta < 0:
            raise InputError(f"min_delta must be >= 0, got {self.min_delta}")

    def decide(self, rounds: Sequence[RoundRecord]) -> StopDecision:
        metric = [r.metric for r in rounds if r.metric is not None]
        if len(metric) < self.window + 1:
            return StopDecision(
                self.name,
                False,
                None,
                self.min_delta,
                f"needs {self.window + 1} rounds with a validation metric, has {len(metric)}",
            )
        gain = float(max(metric[-self.window :]) - max(metric[: -self.window]))
        stop = gain < self.min_delta
        return StopDecision(
            self.name,
            stop,
            gain,
            self.min_delta,
            f"best of the last {self.window} rounds {'+' if gain >= 0 else ''}{gain:.4f} over the "
            f"best before, {'<' if stop else '>='} {self.min_delta:g}",
        )


@dataclass(frozen=True)
class MaxStop:
    """At most ``max_rounds`` rounds and at most ``max_labels`` labels (either may be None)."""

    max_rounds: int | None = None
    max_labels: int | None = None
    name: str = "max"

    def __post_init__(self):
        for what, v in (("max_rounds", self.max_rounds), ("max_labels", self.max_labels)):
            if v is not None and (int(v) != v or v < 1):
                raise InputError(f"{what} must be a positive integer or None, got {v}")

    def decide(self, rounds: Sequence[RoundRecord]) -> StopDecision:
        done = rounds[-1].round if rounds else 0
        if self.max_rounds is not None and done >= self.max_rounds:
            return StopDecision(
                self.name, True, float(done), float(self.max_rounds), f"{done} rounds >= the maximum {self.max_rounds}"
            )
        labels = rounds[-1].labels if rounds else 0
        if self.max_labels is not None and labels >= self.max_labels:
            return StopDecision(
                self.name,
                True,
                float(labels),
                float(self.max_labels),
                f"{labels} labels >= the maximum {self.max_labels}",
            )
        limit = self.max_rounds if self.max_rounds is not None else self.max_labels
        value = float(done if self.max_rounds is not None else labels)
        return StopDecision(
            self.name,
            False,
            value,
            float("inf") if limit is None else float(limit),
            "below the maximum" if limit is not None else "no maximum set",
        )


def default_criteria(
    *, max_rounds: int | None = None, max_labels: int | None = None, n_classes: int | None = None
) -> list:
    """One criterion of each kind with its default settings, in :data:`CRITERIA` order."""
    return [
        KappaStop(n_classes=n_classes),
        RefitKappaStop(n_classes=n_classes),
        UncertaintyStop(),
        PlateauStop(),
        MaxStop(max_rounds=max_rounds, max_labels=max_labels),
    ]


def first_stop(criterion, rounds: Sequence[RoundRecord]) -> tuple[int | None, StopDecision]:
    """Replay ``rounds``: the first round after which ``criterion`` says stop (its ``round``), and that decision.

    Records of round 0 are history only. ``(None, decision after the last
    round)`` when it never fires.
    """
    decision = None
    for i in range(1, len(rounds) + 1):
        if rounds[i - 1].round < 1:
            continue
        decision = criterion.decide(rounds[:i])
        if decision.stop:
            return rounds[i - 1].round, decision
    if decision is None:
        decision = criterion.decide([])
    return None, decision

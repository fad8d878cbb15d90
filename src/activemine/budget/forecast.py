"""Label-budget forecast: fit a learning curve to (labels, metric) points and extrapolate it.

The curve is the bounded inverse power law ``metric(n) = a - b * (n / n0) ** (-c)``
(``n0`` the smallest labels count observed), with ``0 < a <= 1`` the asymptote,
``b >= 0`` and ``0.05 <= c <= 3``; the metric is **higher = better** and lies in
``[0, 1]`` (TPR at 1% FPR, AUC, accuracy). Two questions:

* :func:`forecast_labels`: how many labels until the metric reaches ``target``?
* :func:`forecast_metric`: what metric at ``n`` labels?

Each answer comes with a residual-bootstrap interval (seeded). A forecast
*declines*, giving a reason and no number, when it is not trustworthy: fewer
than :data:`MIN_POINTS` distinct points, a fit that does not converge, a target
at or above the fitted asymptote, for :func:`forecast_labels` an answer past
:data:`MAX_EXTRAPOLATION` times the labels observed or more than half of the
bootstrap curves never reaching the target, and for
:func:`forecast_metric` an interval wider than the metrics observed.

:func:`forecast_labels` commits with an honest interval rather than declining
when the curve is uncertain: the interval may be wider than the labels
observed, and its upper end is ``inf`` when more than ``(1 - level) / 2`` of
the bootstrap curves never reach the target ("at least ``low`` labels"). A
target that a measured point has already reached needs no curve: the answer is
the first labels count that reached it (``reached``), its interval the gap since
the measurement before. scipy is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from activemine.errors import InputError

__all__ = [
    "MAX_EXTRAPOLATION",
    "MIN_POINTS",
    "Forecast",
    "LearningCurve",
    "fit_learning_curve",
    "forecast_labels",
    "forecast_metric",
]

#: Fewest distinct labels counts a curve of three parameters is fitted to.
MIN_POINTS = 4
#: Farthest a labels forecast reaches, as a multiple of the most labels observed: past it the fit's shape decides.
MAX_EXTRAPOLATION = 4.0
_C_BOUNDS = (0.05, 3.0)


@dataclass(frozen=True)
class LearningCurve:
    """A fitted ``a - b * (n / n0) ** (-c)``; ``converged`` is False when the optimizer gave up."""

    a: float
    b: float
    c: float
    n0: float
    rmse: float
    converged: bool

    def metric_at(self, n) -> np.ndarray | float:
        """The curve's metric at ``n`` labels (scalar or array)."""
        return self.a - self.b * (np.asarray(n, dtype=np.float64) / self.n0) ** (-self.c)

    def labels_for(self, target: float) -> float:
        """Labels at which the curve reaches ``target``; ``inf`` when ``target >= a`` (never reached)."""
        if target >= self.a or self.b <= 0:
            return float("inf") if target >= self.a else self.n0
        return float(self.n0 * (self.b / (self.a - target)) ** (1.0 / self.c))


@dataclass(frozen=True)
class Forecast:
    """An answer, or a declined one.

    ``value`` (labels or metric) and ``interval`` ``(low, high)`` are None when
    the forecast declined, and then ``reason`` says why. ``curve`` is the fit
    to all points when one was made.
    """

    question: str
    target: float
    value: float | None
    interval: tuple[float, float] | None
    reason: str | None
    curve: LearningCurve | None
    level: float
    reached: bool = False  # the target was measured, not extrapolated

    @property
    def declined(self) -> bool:
        return self.value is None

    def as_dict(self) -> dict:
        c = self.curve
        return {
            "question": self.question,
            "target": self.target,
            "value": self.value,
            # an open upper end (curves that never reach the target) is None: JSON has no infinity
            "interval": [v if np.isfinite(v) else None for v in self.interval] if self.interval else None,
            "level": self.level,
            "reason": self.reason,
            "reached": self.reached,
            "curve": None if c is None else {"a": c.a, "b": c.b, "c": c.c, "n0": c.n0, "rmse": c.rmse},
        }


def _points(labels, metric) -> tuple[np.ndarray, np.ndarray]:
    n = np.asarray(labels, dtype=np.float64).ravel()
    y = np.asarray(metric, dtype=np.float64).ravel()
    if n.shape != y.shape:
        raise InputError(f"labels and metric must have one length, got {n.size} and {y.size}")
    if not (np.isfinite(n).all() and np.isfinite(y).all()):
        raise InputError("labels and metric must be finite; found NaN or infinite values")
    if n.size and n.min() <= 0:
        raise InputError(f"labels counts must be positive, got {n.min():g}")
    if y.size and (y.min() < 0 or y.max() > 1):
        raise InputError(f"metric values must lie in [0, 1], got [{y.min():g}, {y.max():g}]")
    order = np.argsort(n, kind="stable")
    return n[order], y[order]


def _fit(n: np.ndarray, y: np.ndarray, n0: float, start: LearningCurve | None = None) -> LearningCurve:
    from scipy.optimize import least_squares

    x = n / n0
    lo, hi = [min(float(y.max()), 1.0 - 1e-9), 0.0, _C_BOUNDS[0]], [1.0, 10.0, _C_BOUNDS[1]]

    def residuals(p):
        return p[0] - p[1] * x ** (-p[2]) - y

    best = None
    a0 = min(1.0, max(lo[0], y.max() + 0.01))
    # a few starting exponents: the loss is not convex in c, one start can stall on a flat ridge;
    # a bootstrap refit starts from the fit it perturbs
    starts = (
        [[a0, max(1e-3, a0 - y[0]), c0] for c0 in (0.3, 0.7, 1.5)]
        if start is None
        else [[min(max(start.a, lo[0]), 1.0), start.b, start.c]]
    )
    for p0 in starts:
        r = least_squares(residuals, p0, bounds=(lo, hi), method="trf", max_nfev=2000)
        if best is None or r.cost < best.cost:
            best = r
    a, b, c = (float(v) for v in best.x)
    rmse = float(np.sqrt(np.mean(best.fun**2)))
    return LearningCurve(a, b, c, float(n0), rmse, bool(best.success))


def fit_learning_curve(labels, metric) -> LearningCurve:
    """Least-squares fit of ``a - b * (n / n0) ** (-c)`` to the points ``(labels (p,), metric (p,))``.

    The asymptote is bounded below by the best metric observed (a learning
    curve does not end below where it has been) and above by 1.
    """
    n, y = _points(labels, metric)
    if np.unique(n).size < MIN_POINTS:
        raise InputError(
            f"a learning curve needs at least {MIN_POINTS} distinct labels counts, got {np.unique(n).size}"
        )
    return _fit(n, y, float(n.min()))


def _bootstrap(
    n, y, curve: LearningCurve, answer: Callable[[LearningCurve], float], *, n_boot: int, random_state: int
) -> np.ndarray:
    """Answers of ``n_boot`` refits to the fitted curve plus resampled, centered residuals.

    The residuals are rescaled by ``sqrt(p / (p - 3))`` (p points, three
    parameters): fitted residuals are smaller than the noise they stand for,
    and with a handful of points the plain bootstrap interval is too narrow.
    """
    rng = np.random.default_rng(random_state)
    fitted = curve.metric_at(n)
    resid = y - fitted
    resid = (resid - resid.mean()) * np.sqrt(n.size / max(n.size - 3, 1))
    out = np.empty(n_boot)
    for i in range(n_boot):
        y_star = np.clip(fitted + rng.choice(resid, size=resid.size, replace=True), 0.0, 1.0)
        out[i] = answer(_fit(n, y_star, curve.n0, start=curve))
    return out


def _check_common(level: float, n_boot: int) -> None:
    if not 0.0 < level < 1.0:
        raise InputError(f"interval level must be in (0, 1), got {level}")
    if int(n_boot) != n_boot or n_boot < 20:
        raise InputError(f"n_boot must be an integer >= 20, got {n_boot}")


def _declined(question, target, reason, curve, level) -> Forecast:
    return Forecast(question, float(target), None, None, reason, curve, level)


def _prepare(question, labels, metric, target, level):
    n, y = _points(labels, metric)
    if np.unique(n).size < MIN_POINTS:
        return (
            None,
            None,
            None,
            _declined(
                question,
                target,
                f"too few points: {np.unique(n).size} distinct labels counts, a curve needs at least {MIN_POINTS}",
                None,
                level,
            ),
        )
    curve = _fit(n, y, float(n.min()))
    if not curve.converged:
        return n, y, curve, _declined(question, target, "the curve fit did not converge", curve, level)
    return n, y, curve, None


def forecast_labels(
    labels, metric, target: float, *, level: float = 0.9, n_boot: int = 200, random_state: int = 0
) -> Forecast:
    """Labels needed for the metric to reach ``target`` in ``(0, 1]``, from points ``(labels (p,), metric (p,))``.

    ``value`` is the fitted curve's answer, ``interval`` the central ``level``
    share of the bootstrap answers (upper end ``inf`` when too many bootstrap
    curves never reach the target). A target some point has reached is answered
    by the points (``reached``). Declines (see the module docstring) rather than
    give a number it cannot back.
    """
    if not 0.0 < target <= 1.0:
        raise InputError(f"target metric must be in (0, 1], got {target}")
    _check_common(level, n_boot)
    n_all, y_all = _points(labels, metric)
    hit = np.flatnonzero(y_all >= target)
    if hit.size:  # measured, not forecast: crossed between the point before and this one
        i = int(hit[0])
        low = float(n_all[i - 1]) if i else float(n_all[i])
        return Forecast("labels_for", float(target), float(n_all[i]), (low, float(n_all[i])), None, None, level, True)
    n, y, curve, declined = _prepare("labels_for", labels, metric, target, level)
    if declined is not None:
        return declined
    if target >= curve.a:
        return _declined(
            "labels_for",
            target,
            f"target {target:g} is at or above the fitted asymptote {curve.a:.4f}: the curve never reaches it",
            curve,
            level,
        )
    value = curve.labels_for(target)
    if value > MAX_EXTRAPOLATION * n.max():
        return _declined(
            "labels_for",
            target,
            f"the curve reaches {target:g} only at {value:,.0f} labels, more than {MAX_EXTRAPOLATION:g} times the "
            f"{n.max():,.0f} observed: too far to extrapolate",
            curve,
            level,
        )
    boot = _bootstrap(n, y, curve, lambda c: c.labels_for(target), n_boot=n_boot, random_state=random_state)
    tail = (1.0 - level) / 2
    # an order statistic, not an interpolation: curves that never reach the target answer +inf
    low, high = np.quantile(boot, [tail, 1.0 - tail], method="inverted_cdf")
    share = float(np.mean(~np.isfinite(boot)))
    if share > 0.5:
        return _declined(
            "labels_for",
            target,
            f"{100 * share:.0f}% of bootstrap curves never reach {target:g}: the curve may never get there",
            curve,
            level,
        )
    return Forecast("labels_for", float(target), float(value), (float(low), float(high)), None, curve, level)


def forecast_metric(
    labels, metric, at_labels: float, *, level: float = 0.9, n_boot: int = 200, random_state: int = 0
) -> Forecast:
    """The metric expected at ``at_labels`` labels, from points ``(labels (p,), metric (p,))``, with its interval."""
    if not at_labels > 0 or not np.isfinite(at_labels):
        raise InputError(f"labels to forecast at must be a positive number, got {at_labels}")
    _check_common(level, n_boot)
    n, y, curve, declined = _prepare("metric_at", labels, metric, at_labels, level)
    if declined is not None:
        return declined
    value = float(curve.metric_at(at_labels))
    boot = _bootstrap(n, y, curve, lambda c: float(c.metric_at(at_labels)), n_boot=n_boot, random_state=random_state)
    tail = (1.0 - level) / 2
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    span = float(y.max() - y.min())
    if high - low > span:
        return _declined(
            "metric_at",
            at_labels,
            f"interval [{low:.4f}, {high:.4f}] is wider than the metrics observed ({y.min():.4f} to {y.max():.4f})",
            curve,
            level,
        )
    return Forecast("metric_at", float(at_labels), value, (float(low), float(high)), None, curve, level)

"""Stopping and forecasting in multi-round experiments: where each criterion would have stopped a run.

A :class:`RunRecorder` follows one multi-round run (one strategy, one seed):
after the initial model and after every round it records the labels, the test
metric, the model's predictions on a seeded stop set, the predictions of a
refit (a second model trained on the same rows with another seed) for the
``kappa-refit`` criterion, and the mean uncertainty of the batch the round
selected (under the model that selected it).

The stop set is drawn from training rows that are neither labeled nor in the
pool (``stop_set_source`` ``"held-out"``) when there are enough of them: a stop
set inside the pool loses to labeling exactly the uncertain rows least
confidence picks, and what stays behind is the easy part whose predictions
stabilize first. Without enough held-out rows (a pool of all training rows
but L) it is drawn from the pool (``"pool"``). :meth:`RunRecorder.report` then replays the rounds through every
criterion of :mod:`activemine.budget.stopping` and makes the label forecast of
:mod:`activemine.budget.forecast` from the first half of the rounds, to compare with
what the second half measured.

The experiment has no validation set, so the plateau criterion and the
forecast read the test metric: an optimistic stand-in for a validation metric
of the same size. :func:`stopping_markdown` and :func:`mark_stop_points` turn the
reports of all runs into a table and into marks on ``curves.png``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activemine.budget.forecast import forecast_labels
from activemine.budget.stopping import (
    CRITERIA,
    KappaStop,
    MaxStop,
    PlateauStop,
    RefitKappaStop,
    RoundRecord,
    UncertaintyStop,
    choose_stop_set,
    first_stop,
    normalized_uncertainty,
)
from activemine.errors import InputError

__all__ = [
    "DEFAULT_STOP_SET_SIZE",
    "STOP_SET_SOURCES",
    "RunRecorder",
    "StopSettings",
    "mark_stop_points",
    "stopping_markdown",
]

DEFAULT_STOP_SET_SIZE = 2_000
#: Where the stop set comes from: held-out training rows when enough exist (``auto``), only them, or the pool.
STOP_SET_SOURCES = ("auto", "held-out", "pool")
#: The forecast target is the final metric minus this (0.5 points of TPR).
FORECAST_MARGIN = 0.005


@dataclass(frozen=True)
class StopSettings:
    """Settings of the criteria in an experiment; built from the config's ``stopping`` dict."""

    stop_set_size: int = DEFAULT_STOP_SET_SIZE
    stop_set_source: str = "auto"
    kappa_window: int = 3
    kappa_threshold: float = 0.99
    refit_window: int = 3
    refit_tolerance: float = 0.01
    uncertainty_level: float = 0.05
    plateau_window: int = 3
    plateau_delta: float = 0.005

    @classmethod
    def from_dict(cls, settings: dict | None) -> StopSettings:
        """Settings from a dict of field names; unknown names and bad values are an :class:`InputError`."""
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(cls.__dataclass_fields__))
        if unknown:
            raise InputError(
                f"unknown stopping settings {unknown}; expected names from {sorted(cls.__dataclass_fields__)}"
            )
        out = cls(**settings)
        if int(out.stop_set_size) != out.stop_set_size or out.stop_set_size < 1:
            raise InputError(f"stop set size must be a positive integer, got {out.stop_set_size}")
        if out.stop_set_source not in STOP_SET_SOURCES:
            raise InputError(f"stop set source must be one of {STOP_SET_SOURCES}, got {out.stop_set_source!r}")
        out.criteria(1)  # each criterion checks its own settings
        return out

    def criteria(self, rounds: int, n_classes: int | None = None) -> list:
        return [
            KappaStop(self.kappa_window, self.kappa_threshold, n_classes),
            RefitKappaStop(self.refit_window, self.refit_tolerance, n_classes),
            UncertaintyStop(self.uncertainty_level),
            PlateauStop(self.plateau_window, self.plateau_delta),
            MaxStop(max_rounds=rounds),
        ]


class RunRecorder:
    """Records one multi-round run for the stopping report.

    ``X_stop`` ``(m, d)`` are the stop set's features (see :meth:`stop_rows`),
    ``classes`` the class indices the models' probabilities are aligned to,
    ``source`` where the stop set came from (``"held-out"`` or ``"pool"``).
    """

    def __init__(self, X_stop: np.ndarray, classes, settings: StopSettings, *, rounds: int, source: str = "pool"):
        self.X_stop = X_stop
        self.classes = np.asarray(classes)
        self.settings = settings
        self.rounds = rounds
        self.source = source
        self.records: list[RoundRecord] = []

    @staticmethod
    def stop_rows(
        pool_rows: np.ndarray, settings: StopSettings, *, seed: int, held_out_rows: np.ndarray | None = None
    ) -> tuple[np.ndarray, str]:
        """The stop set's row indices and their source (``"held-out"`` or ``"pool"``).

        ``held_out_rows``: training rows neither labeled nor in the pool. With
        source ``auto`` they are used when they hold ``stop_set_size`` rows;
        otherwise the stop set is a seeded sample of ``min(stop_set_size,
        pool)`` pool rows. Source ``held-out`` without enough such rows is an
        :class:`InputError`.
        """
        held = np.asarray([] if held_out_rows is None else held_out_rows, dtype=np.int64)
        if settings.stop_set_source == "held-out" and held.size < settings.stop_set_size:
            raise InputError(
                f"a held-out stop set of {settings.stop_set_size} rows needs that many training rows "
                f"outside the labeled set and the pool, there are {held.size}; lower the pool size or "
                "use stop set source 'auto' or 'pool'"
            )
        if settings.stop_set_source != "pool" and held.size >= settings.stop_set_size:
            return held[choose_stop_set(held.size, settings.stop_set_size, random_state=seed)], "held-out"
        size = min(settings.stop_set_size, pool_rows.size)
        return pool_rows[choose_stop_set(pool_rows.size, size, random_state=seed)], "pool"

    def add(
        self, round_no: int, model, *, labels: int, metric: float, batch_proba: np.ndarray | None = None, refit=None
    ) -> None:
        """Record the state after round ``round_no`` (0: the initial model).

        ``batch_proba`` ``(b, k)``: the round's batch under the selecting
        model; ``refit``: a second model trained on the same rows as ``model``
        with another seed (for ``kappa-refit``).
        """
        uncertainty = None
        if batch_proba is not None and len(batch_proba):
            uncertainty = float(normalized_uncertainty(batch_proba).mean())
        refit_predicted = None if refit is None else self._predict(refit)
        self.records.append(
            RoundRecord(round_no, int(labels), self._predict(model), uncertainty, float(metric), refit_predicted)
        )

    def _predict(self, model) -> np.ndarray:
        from activemine.models import predict_proba_aligned

        return predict_proba_aligned(model, self.X_stop, self.classes).argmax(axis=1).astype(np.int16)

    def report(self, *, seed: int = 0) -> dict:
        """Per criterion: stop round, labels and metric there and at the end; the first-half forecast against the truth."""
        recs = self.records
        final = recs[-1]
        criteria = []
        for criterion in self.settings.criteria(self.rounds, len(self.classes)):
            stop_round, decision = first_stop(criterion, recs)
            at = next(r for r in recs if r.round == stop_round) if stop_round is not None else final
            criteria.append(
                {
                    "criterion": criterion.name,
                    "stop_round": stop_round,
                    "labels_at_stop": at.labels,
                    "labels_final": final.labels,
                    "metric_at_stop": at.metric,
                    "metric_final": final.metric,
                    "metric_lost": final.metric - at.metric,
                    "value": decision.value,
                    "detail": decision.detail,
                }
            )
        kappas = [None] + [float(v) for v in _kappas(recs)]
        refit = {
            rnd: (change, ceiling) for rnd, change, ceiling in RefitKappaStop(n_classes=len(self.classes)).gaps(recs)
        }
        return {
            "stop_set_size": int(self.X_stop.shape[0]),
            "stop_set_source": self.source,
            "rounds": [
                {
                    "round": r.round,
                    "labels": r.labels,
                    "metric": r.metric,
                    "kappa": k,
                    "kappa_refit_change": refit.get(r.round, (None, None))[0],
                    "kappa_refit_ceiling": refit.get(r.round, (None, None))[1],
                    "batch_uncertainty": r.batch_uncertainty,
                }
                for r, k in zip(recs, kappas)
            ],
            "criteria": criteria,
            "forecast": self._forecast(seed),
        }

    def _forecast(self, seed: int) -> dict:
        """Forecast from rounds 0..R/2 the labels for (final metric - 0.5 points), against the first round that measured it."""
        recs = self.records
        half = [r for r in recs if r.round <= self.rounds // 2]
        labels = np.array([r.labels for r in recs])
        metric = np.array([r.metric for r in recs])
        target = float(metric[-1] - FORECAST_MARGIN)
        reached = np.flatnonzero(metric >= target)
        true_labels = int(labels[reached[0]])
        out = {
            "target": target,
            "true_labels": true_labels,
            "from_rounds": [r.round for r in half],
            "predicted_labels": None,
            "interval": None,
            "reason": None,
        }
        if not 0.0 < target <= 1.0:
            out["reason"] = f"target {target:g} outside (0, 1]"
            return out
        f = forecast_labels([r.labels for r in half], [r.metric for r in half], target, random_state=seed)
        out["reason"] = f.reason
        if not f.declined:
            out["predicted_labels"] = f.value
            out["interval"] = f.as_dict()["interval"]  # None for an open upper end
            out["reached"] = f.reached
        if f.curve is not None:
            c = f.curve
            out["curve"] = {"a": c.a, "b": c.b, "c": c.c, "n0": c.n0}
            out["second_half"] = [
                {"labels": int(n), "measured": float(m), "predicted": float(c.metric_at(n))}
                for n, m, r in zip(labels, metric, recs)
                if r.round > self.rounds // 2
            ]
        return out


def _kappas(records: list[RoundRecord]) -> list[float]:
    from activemine.budget.stopping import consecutive_kappas

    return consecutive_kappas([r.stop_predictions for r in records])


def _runs_by_strategy(results: dict) -> dict[str, list[dict]]:
    names = dict.fromkeys(r["strategy"] for r in results["runs"] if "stopping" in r)
    return {n: [r for r in results["runs"] if r["strategy"] == n and "stopping" in r] for n in names}


def _criterion_rows(runs: list[dict], name: str) -> list[dict]:
    """Each run's record of criterion ``name`` (runs recorded before the criterion existed have none)."""
    return [c for r in runs for c in r["stopping"]["criteria"] if c["criterion"] == name]


def stopping_markdown(results: dict) -> str:
    """Per strategy and criterion, means over seeds: stop round, labels at the stop, metric lost; and the forecast."""
    groups = _runs_by_strategy(results)
    if not groups:
        return ""
    sources = sorted(
        {
            f"{r['stopping']['stop_set_size']:,} {r['stopping'].get('stop_set_source', 'pool')} rows"
            for rs in groups.values()
            for r in rs
        }
    )
    lines = [
        "",
        "## Stopping (means over seeds; a criterion that never fired counts as the last round)",
        "",
        f"Stop set: {', '.join(sources)}.",
        "",
        "| run | criterion | fired | stop round | labels at stop | labels final | metric lost (points) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in groups.items():
        for crit in CRITERIA:
            rows = _criterion_rows(runs, crit)
            if not rows:
                continue
            fired = sum(c["stop_round"] is not None for c in rows)
            rounds = [c["stop_round"] if c["stop_round"] is not None else results["config"]["rounds"] for c in rows]
            lines.append(
                f"| {name} | {crit} | {fired}/{len(rows)} | {np.mean(rounds):.1f} | "
                f"{np.mean([c['labels_at_stop'] for c in rows]):,.0f} | "
                f"{np.mean([c['labels_final'] for c in rows]):,.0f} | "
                f"{100 * np.mean([c['metric_lost'] for c in rows]):.2f} |"
            )
    lines += [
        "",
        "Forecast from the first half of the rounds of the labels for (final metric - 0.5 points):",
        "",
        "| run | seed | true labels | predicted | interval | declined because |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, runs in groups.items():
        for r in runs:
            f = r["stopping"]["forecast"]
            pred = "" if f["predicted_labels"] is None else f"{f['predicted_labels']:,.0f}"
            interval = ""
            if f["interval"] is not None:
                lo, hi = f["interval"]
                interval = f"[{lo:,.0f}, {'open' if hi is None else f'{hi:,.0f}'}]"
                if f.get("reached"):
                    interval += " measured"
            lines.append(f"| {name} | {r['seed']} | {f['true_labels']:,} | {pred} | {interval} | {f['reason'] or ''} |")
    return "\n".join(lines) + "\n"


_MARKERS = {"kappa": "v", "kappa-refit": "^", "uncertainty": "s", "plateau": "D", "max": "X"}


def mark_stop_points(ax, results: dict, colors: dict | None = None) -> None:
    """Mark on a learning-curve axis (labels, metric in %) each criterion's mean stop point per strategy.

    The mark sits at the mean labels at the stop and the mean metric there,
    over seeds; criteria that never fired count at the last round.
    """
    colors = colors or {}
    labelled = set()
    for name, runs in _runs_by_strategy(results).items():
        for crit in CRITERIA:
            rows = _criterion_rows(runs, crit)
            if not rows:
                continue
            x = np.mean([c["labels_at_stop"] for c in rows])
            y = 100 * np.mean([c["metric_at_stop"] for c in rows])
            ax.plot(
                [x],
                [y],
                _MARKERS[crit],
                color=colors.get(name, "black"),
                ms=8,
                mfc="none",
                mew=1.5,
                label=None if crit in labelled else f"stop: {crit}",
            )
            labelled.add(crit)

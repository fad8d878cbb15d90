"""``campaign forecast`` and the stopping part of ``campaign status`` (see :mod:`activemine.campaign.stopset`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from activemine.cli._app import QuietOpt, console, exits_on_bad_input
from activemine.cli._campaign_app import DirArg, campaign_app
from activemine.errors import InputError

__all__ = ["print_stopping"]


def _num(v, fmt: str = "{:.4f}") -> str:
    return "" if v is None else fmt.format(v)


def _forecast_line(f: dict) -> str:
    if f.get("value") is None:
        return f"declined: {f['reason']}"
    lo, hi = f["interval"]
    if f["question"] == "labels_for":
        if hi is None:  # some bootstrap curves never reach the target
            return f"{f['value']:,.0f} labels (90% interval: at least {lo:,.0f}, no upper bound)"
        return f"{f['value']:,.0f} labels (90% interval {lo:,.0f} to {hi:,.0f})"
    return f"{f['value']:.4f} (90% interval {lo:.4f} to {hi:.4f})"


def print_stopping(s: dict) -> None:
    """Tables of ``campaign_status(...)["stopping"]``: kappa per round, decisions, forecast."""
    rounds = Table(title=f"stop set ({s['stop_set_size'] or 0} pool samples): agreement between consecutive rounds")
    for col in ("round", "labels", "kappa to previous", "batch uncertainty"):
        rounds.add_column(col, justify="right")
    for r in s["rounds"]:
        rounds.add_row(str(r["round"]), f"{r['labels']:,}", _num(r["kappa_to_previous"]), _num(r["batch_uncertainty"]))
    console.print(rounds)
    decisions = Table(title="stopping criteria")
    for col in ("criterion", "stop", "figure", "threshold", "why"):
        decisions.add_column(col, justify="left" if col in ("criterion", "why") else "right")
    for d in s["decisions"]:
        decisions.add_row(
            d["criterion"],
            "yes" if d["stop"] else "no",
            _num(d["value"], "{:.4g}"),
            _num(d["threshold"], "{:g}"),
            escape(d["detail"]),
        )
    console.print(decisions)
    cost = s.get("refit_cost") or {}
    if cost.get("fits_per_round"):
        last = "" if cost["last_seconds"] is None else f", {cost['last_seconds']:.1f} s in the last round"
        console.print(
            f"kappa-refit cost: {cost['fits_per_round']} more model fit per round{last} "
            f"({cost['total_seconds']:.1f} s over {cost['rounds']} rounds)",
            highlight=False,
        )
    f = s["forecast"]
    if f.get("reason"):
        console.print(f"forecast: {escape(f['reason'])}", soft_wrap=True)
        return
    if "reached" in f:
        r = f["reached"]
        when = "with the initial labels" if r["round"] == 0 else f"in round {r['round']}"
        console.print(
            f"forecast: metric {f['target']:g} already reached {when} ({r['metric']:.4f} with {r['labels']:,} labels)",
            highlight=False,
        )
    elif "labels_for_target" in f:
        console.print(
            f"forecast: metric {f['target']:g} at {escape(_forecast_line(f['labels_for_target']))}", soft_wrap=True
        )
        if "labels_still_needed" in f:
            lo, hi = f["labels_still_needed_interval"]
            upper = "no upper bound" if hi is None else f"{hi:,.0f}"
            console.print(f"labels still needed: {f['labels_still_needed']:,.0f} ({lo:,.0f} to {upper})")
    if "metric_next_round" in f:
        console.print(
            f"forecast: metric after one more round: {escape(_forecast_line(f['metric_next_round']))}", soft_wrap=True
        )


@campaign_app.command("forecast")
@exits_on_bad_input
def forecast(
    folder: DirArg,
    target_metric: Annotated[
        float, typer.Option(help="The metric to reach, in (0, 1]: TPR at --fpr on the validation file.")
    ],
    validation: Annotated[
        Path | None,
        typer.Option(help="Labeled validation file (.parquet/.csv) with the campaign's feature and label columns."),
    ] = None,
    fpr: Annotated[float, typer.Option(help="The FPR at which TPR is measured.")] = 0.01,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Labels still needed to reach a target metric, from the learning curve measured on a validation file."""
    from activemine.campaign import CampaignStore
    from activemine.campaign.stopset import measure_learning_curve, set_target, stopping_status
    from activemine.progress import progress_reporter

    if not 0.0 < target_metric <= 1.0:
        raise InputError(f"--target-metric must be in (0, 1], got {target_metric}")
    store = CampaignStore(folder)
    if validation is not None:
        if not validation.is_file():
            raise InputError(f"validation file {str(validation)!r} not found")
        (n_rounds,) = store.read("SELECT COUNT(*) FROM rounds")[0]
        with progress_reporter("learning curve", total=n_rounds + 1, unit="models", quiet=quiet or as_json) as bar:
            measure_learning_curve(store, validation, fpr=fpr, progress=bar.advance)
    set_target(store, target_metric)
    s = stopping_status(store, target=target_metric)
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    points = Table(title="learning curve on the validation file")
    for col in ("round", "labels", f"TPR at {100 * fpr:g}% FPR"):
        points.add_column(col, justify="right")
    for p in s["forecast"]["points"]:
        points.add_row(str(p["round"]), f"{p['labels']:,}", f"{p['metric']:.4f}")
    console.print(points)
    print_stopping(s)

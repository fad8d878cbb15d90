"""An experiment's results: means over seeds, the Markdown table, and the files written (atomically)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["results_markdown", "summarize", "write_outputs"]


def _mean_std(values) -> dict:
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)}


def summarize(runs: list[dict], reference: dict) -> dict:
    """Mean and standard deviation over seeds of every figure, per strategy and reference."""
    out = {}
    groups = {name: [r for r in runs if r["strategy"] == name] for name in dict.fromkeys(r["strategy"] for r in runs)}
    groups.update({f"reference:{k}": v for k, v in reference.items() if v})
    for name, rs in groups.items():
        keys = ["tpr_at_fpr", "auc", "labels"] + [k for k in ("select_seconds", "model_fits") if k in rs[0]]
        out[name] = {k: _mean_std([r[k] for r in rs]) for k in keys}
        if "decided_by" in rs[0]:
            # share of the ranked batch rows that only the id put ahead of the rows left out
            shares = [r["decided_by"]["id"] / max(1, sum(r["decided_by"].values())) for r in rs]
            out[name]["id_decided_share"] = _mean_std(shares)
    return out


def results_markdown(results: dict) -> str:
    """The summary as a Markdown table: mean +/- std over seeds per strategy."""
    cfg = results["config"]
    pct = f"{100 * cfg['fpr']:g}%"
    lines = [
        f"# {cfg['dataset']} {cfg['task']}, {cfg['mode']}: L = {cfg['labeled_size']}, B = {cfg['budget']}, "
        f"model {cfg['model']}, noise {cfg['noise']:g} ({cfg['noise_kind']})",
        "",
        f"Mean +/- std over seeds {cfg['seeds']}. TPR at FPR = {pct} and AUC on the test set "
        f"({results['sizes']['test']} samples), each run's the mean of {cfg.get('eval_repeats', 1)} model(s) "
        "trained with different seeds; selection cost in model fits and seconds.",
        "",
        f"| run | labels | TPR@FPR={pct} (%) | AUC | model fits | select s | decided by id (%) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in results["summary"].items():
        cost = ("", "")
        by_id = f"{100 * s['id_decided_share']['mean']:.1f}" if "id_decided_share" in s else ""
        if "model_fits" in s:
            cost = (
                f"{s['model_fits']['mean']:.1f}",
                f"{s['select_seconds']['mean']:.1f} +/- {s['select_seconds']['std']:.1f}",
            )
        lines.append(
            f"| {name} | {s['labels']['mean']:,.0f} | {100 * s['tpr_at_fpr']['mean']:.2f} +/- {100 * s['tpr_at_fpr']['std']:.2f} "
            f"| {s['auc']['mean']:.4f} +/- {s['auc']['std']:.4f} | {cost[0]} | {cost[1]} | {by_id} |"
        )
    from activemine.budget.report import stopping_markdown

    return "\n".join(lines) + "\n" + stopping_markdown(results)


def write_outputs(results: dict, out: Path) -> list[Path]:
    """Write ``results.json``, ``results.md``, ``roc.png`` (and ``curves.png`` in multi-round mode) atomically."""
    import json

    from activemine.experiments.plots import plot_curves, plot_roc

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = [
        _atomic_write(out / "results.json", json.dumps(results, indent=1)),
        _atomic_write(out / "results.md", results_markdown(results)),
    ]
    written.append(_atomic_png(out / "roc.png", lambda p: plot_roc(results, p)))
    if results["config"]["mode"] == "multi-round":
        written.append(_atomic_png(out / "curves.png", lambda p: plot_curves(results, p)))
    return written


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _atomic_png(path: Path, draw: Callable[[Path], None]) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    try:
        draw(tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

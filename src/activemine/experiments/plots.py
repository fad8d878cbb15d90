"""Figures of an experiment's results: ROC curves and learning curves.

matplotlib is imported inside the functions, so ``import activemine`` never
loads it. Both functions read the document :func:`activemine.experiments.runner.run_experiment`
returns and write a PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot_curves", "plot_roc"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _by_strategy(results: dict) -> dict[str, list[dict]]:
    names = dict.fromkeys(r["strategy"] for r in results["runs"])
    return {n: [r for r in results["runs"] if r["strategy"] == n] for n in names}


def plot_roc(results: dict, path) -> None:
    """One ROC curve per strategy (TPR averaged over seeds at each FPR), FPR on a log scale.

    The references are dashed and the experiment's FPR is marked by a
    vertical line; the legend gives each curve's mean TPR there.
    """
    plt = _pyplot()
    grid = np.asarray(results["roc_grid"])
    fpr = results["config"]["fpr"]
    keep = grid >= 1e-4  # a log axis cannot show FPR = 0
    fig, ax = plt.subplots(figsize=(7, 5.5))
    curves = [(n, rs, "-") for n, rs in _by_strategy(results).items()]
    curves += [(f"reference: {k}", v, "--") for k, v in results["reference"].items() if v]
    for name, rs, style in curves:
        tpr = np.mean([r["roc_tpr"] for r in rs], axis=0)
        mean = np.mean([r["tpr_at_fpr"] for r in rs])
        ax.plot(grid[keep], tpr[keep], style, lw=1.4, label=f"{name} ({100 * mean:.1f}%)")
    ax.axvline(fpr, color="grey", lw=0.8, ls=":")
    ax.text(fpr, 0.02, f" FPR = {100 * fpr:g}%", color="grey", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (log scale)")
    ax.set_ylabel("true-positive rate")
    cfg = results["config"]
    ax.set_title(f"{cfg['dataset']} {cfg['task']}, {cfg['mode']}: mean ROC over {len(cfg['seeds'])} seed(s)")
    ax.legend(title=f"TPR at FPR = {100 * fpr:g}%", fontsize=8, loc="lower right")
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120, format="png")
    plt.close(fig)


def plot_curves(results: dict, path) -> None:
    """Learning curves of the multi-round mode: labels against mean TPR at the FPR, one line per strategy."""
    plt = _pyplot()
    cfg = results["config"]
    fig, ax = plt.subplots(figsize=(7, 5))
    initial = results["reference"]["initial"]
    start = (np.mean([r["labels"] for r in initial]), np.mean([r["tpr_at_fpr"] for r in initial]))
    colors = {}
    for name, rs in _by_strategy(results).items():
        labels = [start[0]] + [np.mean(p) for p in zip(*[[c["labels"] for c in r["curve"]] for r in rs])]
        tpr = [start[1]] + [np.mean(p) for p in zip(*[[c["tpr_at_fpr"] for c in r["curve"]] for r in rs])]
        colors[name] = ax.plot(labels, 100 * np.asarray(tpr), "o-", ms=3, label=name)[0].get_color()
    from activemine.budget.report import mark_stop_points

    mark_stop_points(ax, results, colors)  # where each stopping criterion would have stopped
    for r in results["reference"]["full"][:1]:
        full = np.mean([f["tpr_at_fpr"] for f in results["reference"]["full"]])
        ax.axhline(100 * full, color="grey", ls="--", lw=0.8, label=f"full ({r['labels']:,} labels)")
    ax.set_xlabel("labeled samples")
    ax.set_ylabel(f"TPR at FPR = {100 * cfg['fpr']:g}% (%)")
    ax.set_title(f"{cfg['dataset']} {cfg['task']}: {cfg['rounds']} rounds, mean over {len(cfg['seeds'])} seed(s)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.25)
    fig.tight_layout()
    fig.savefig(Path(path), dpi=120, format="png")
    plt.close(fig)

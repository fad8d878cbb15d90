"""How many to label: stopping criteria and the label-budget forecast on multi-round runs.

For each dataset and seed, one multi-round run of least confidence (``lc``,
which reads the probabilities of the model each round trains anyway) through
:func:`activemine.experiments.runner.run_experiment`, with ``eval_repeats`` 2: each
round trains two models on its labels (seeds differ); the TPR is their mean,
and the second is the refit that ``kappa-refit`` compares with. Per criterion
(``kappa``, ``kappa-refit``, ``uncertainty``, ``plateau``, ``max``): the round
at which it would have stopped, the labels used there and the TPR at 1% FPR
there against the final round. The stop set is drawn from training rows
outside L and the pool where there are enough (Fashion-MNIST), else from the
pool (digits, whose pool is every training image but L); ``stop_set_source``
in ``summary.json``. The forecast, made from the first half of the rounds,
predicts the labels at which the final TPR minus 0.5 points is first reached.

Writes ``results.json`` (one record per dataset, seed and criterion, and per forecast), ``summary.json``
(sizes, command, timings, the targets checked), ``results.md``, per dataset the
experiment's own outputs (``curves.png`` with the stop points marked) and
``forecast.png`` (the first-half forecast against the measured curve).

CPU is scarce (2 shared cores), so the sizes are small and the model is a
small LightGBM (60 trees, 15 leaves, ``--n-jobs`` threads, 1 by default);
they are stated in ``summary.json`` and ``results.md``.

    python benchmarks/stopping.py --seeds 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from activemine.budget.stopping import CRITERIA
from activemine.experiments.runner import ExperimentConfig, run_experiment, write_outputs
from activemine.progress import log_line, progress_reporter

OUT = Path(__file__).parent / "results" / "stopping"

DATASETS = {
    # Fashion-MNIST shirt (6) against the rest: L 500 random, U 8,000, 12 rounds of 200, test set the official 10,000
    "fashion-mnist": dict(
        dataset="fashion-mnist", task="binary:6", labeled_size=500, pool_size=8_000, budget=2_400, rounds=12
    ),
    # scikit-learn's digits, all 10 classes (macro one-vs-rest TPR at 1% FPR): its binary tasks saturate near
    # 100% within a few rounds on a 450-image test set, which would leave nothing to forecast
    "digits": dict(dataset="digits", task="multiclass", labeled_size=100, pool_size=None, budget=600, rounds=12),
}
MODEL = dict(
    n_estimators=60,
    learning_rate=0.15,
    num_leaves=15,
    min_child_samples=5,
    subsample=0.8,
    subsample_freq=1,
    colsample_bytree=0.3,
    n_jobs=1,
    verbose=-1,
)


def small_lightgbm():
    from lightgbm import LGBMClassifier

    return LGBMClassifier(**MODEL)


def extract(name: str, results: dict) -> tuple[list[dict], list[dict]]:
    """The rows of ``results.json`` for one dataset."""
    criteria, forecast = [], []
    for run in results["runs"]:
        rep = run["stopping"]
        for c in rep["criteria"]:
            criteria.append(
                {
                    "dataset": name,
                    "seed": run["seed"],
                    "criterion": c["criterion"],
                    "stop_round": c["stop_round"],
                    "labels_at_stop": c["labels_at_stop"],
                    "labels_final": c["labels_final"],
                    "tpr_at_stop": c["metric_at_stop"],
                    "tpr_final": c["metric_final"],
                }
            )
        f = rep["forecast"]
        forecast.append(
            {
                "dataset": name,
                "seed": run["seed"],
                "target_tpr": f["target"],
                "true_labels": f["true_labels"],
                "predicted_labels": f["predicted_labels"],
                "interval": f["interval"],
                "reached": bool(f.get("reached", False)),
            }
        )
    return criteria, forecast


def _lost_and_saved(rows: list[dict]) -> tuple[float, float]:
    """Mean TPR lost (points) and share of labels saved at a criterion's stop, over seeds."""
    lost = 100 * np.mean([c["tpr_final"] - c["tpr_at_stop"] for c in rows])
    saved = 1 - np.mean([c["labels_at_stop"] for c in rows]) / np.mean([c["labels_final"] for c in rows])
    return float(lost), float(saved)


def check_targets(criteria: list[dict], forecast: list[dict], reasons: dict) -> dict:
    """The targets per dataset, on means over seeds; stabilizing predictions as ``kappa`` and ``kappa-refit``."""
    out = {}
    for name in dict.fromkeys(c["dataset"] for c in criteria):
        lost, saved = _lost_and_saved([c for c in criteria if c["dataset"] == name and c["criterion"] == "kappa"])
        r_lost, r_saved = _lost_and_saved(
            [c for c in criteria if c["dataset"] == name and c["criterion"] == "kappa-refit"]
        )
        fs = [f for f in forecast if f["dataset"] == name]
        made = [f for f in fs if f["predicted_labels"] is not None]
        errors = [abs(f["predicted_labels"] - f["true_labels"]) / f["true_labels"] for f in made]
        # an open upper end (None) is an interval that says "at least the lower end"
        misses = [
            f
            for f in made
            if not f["interval"][0] <= f["true_labels"] <= (np.inf if f["interval"][1] is None else f["interval"][1])
        ]
        out[name] = {
            "kappa_tpr_lost_points": float(lost),
            "kappa_labels_saved_share": float(saved),
            "kappa_target_met": bool(lost <= 1.0 and saved >= 0.2),
            "kappa_refit_tpr_lost_points": r_lost,
            "kappa_refit_labels_saved_share": r_saved,
            "kappa_refit_target_met": bool(r_lost <= 1.0 and r_saved >= 0.2),
            "seeds": len(fs),
            "forecasts_made": len(made),
            "forecasts_measured": int(sum(bool(f.get("reached")) for f in made)),
            "forecasts_open_ended": int(sum(f["interval"][1] is None for f in made)),
            "forecast_relative_errors": [float(e) for e in errors],
            "forecasts_within_25pct": int(sum(e <= 0.25 for e in errors)),
            "interval_misses": len(misses),
            "declined_reasons": reasons[name],
            "forecast_target_met": bool(len(made) >= 4 and not misses),
        }
    return out


KAPPA_THRESHOLDS = (0.99, 0.98, 0.97, 0.95)


def kappa_ceilings(all_results: dict) -> list[dict]:
    """Per dataset and round, means over seeds: consecutive kappa, kappa to the refit, and the refit ceiling."""
    out = []
    for name, results in all_results.items():
        runs = [run["stopping"]["rounds"] for run in results["runs"]]
        for i in range(1, len(runs[0])):
            rows = [rounds[i] for rounds in runs]
            mean = lambda key: None if any(r[key] is None for r in rows) else float(np.mean([r[key] for r in rows]))  # noqa: E731
            out.append(
                {
                    "dataset": name,
                    "round": rows[0]["round"],
                    "labels": float(np.mean([r["labels"] for r in rows])),
                    "kappa": mean("kappa"),
                    "kappa_refit_change": mean("kappa_refit_change"),
                    "kappa_refit_ceiling": mean("kappa_refit_ceiling"),
                }
            )
    return out


def kappa_sensitivity(all_results: dict, window: int = 3) -> list[dict]:
    """The kappa criterion replayed at other thresholds from the kappas each run stored (no new model)."""
    out = []
    for name, results in all_results.items():
        for t in KAPPA_THRESHOLDS:
            at, final, lost, fired = [], [], [], 0
            for run in results["runs"]:
                rounds = run["stopping"]["rounds"]
                kappas = [r["kappa"] for r in rounds[1:]]
                stop = next((i for i in range(window, len(kappas) + 1) if np.mean(kappas[i - window : i]) >= t), None)
                fired += stop is not None
                row = rounds[stop] if stop is not None else rounds[-1]
                at.append(row["labels"])
                final.append(rounds[-1]["labels"])
                lost.append(rounds[-1]["metric"] - row["metric"])
            out.append(
                {
                    "dataset": name,
                    "threshold": t,
                    "fired": fired,
                    "runs": len(results["runs"]),
                    "labels_at_stop": float(np.mean(at)),
                    "labels_final": float(np.mean(final)),
                    "tpr_lost_points": float(100 * np.mean(lost)),
                }
            )
    return out


def markdown(
    criteria, forecast, targets, sizes, seconds, sensitivity=(), ceilings=(), sources=None, eval_repeats: int = 2
) -> str:
    lines = [
        "# How many to label: stopping criteria and the forecast",
        "",
        f"Least confidence, multi-round, {len({c['seed'] for c in criteria})} seeds; model: small LightGBM {MODEL}, "
        f"{eval_repeats} fits per round (TPR their mean; the second is the refit); "
        f"{seconds:.0f} s in all. Stop set: "
        + "; ".join(f"{n}: {s}" for n, s in (sources or {}).items())
        + ". Sizes: "
        + "; ".join(
            f"{n}: {s['task']}, L {s['labeled_size']}, U {s['pool_size'] or 'all other training images'}, "
            f"{s['rounds']} rounds of {s['budget'] // s['rounds']}"
            for n, s in sizes.items()
        ),
        "",
        "Means over seeds; a criterion that never fired counts as stopping at the last round.",
        "",
        "| dataset | criterion | fired | stop round | labels at stop | labels final | labels saved | TPR lost (points) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in sizes:
        for crit in CRITERIA:
            rows = [c for c in criteria if c["dataset"] == name and c["criterion"] == crit]
            fired = sum(c["stop_round"] is not None for c in rows)
            rounds = np.mean([c["stop_round"] or sizes[name]["rounds"] for c in rows])
            at = np.mean([c["labels_at_stop"] for c in rows])
            final = np.mean([c["labels_final"] for c in rows])
            lost = 100 * np.mean([c["tpr_final"] - c["tpr_at_stop"] for c in rows])
            lines.append(
                f"| {name} | {crit} | {fired}/{len(rows)} | {rounds:.1f} | {at:,.0f} | {final:,.0f} | "
                f"{100 * (1 - at / final):.0f}% | {lost:+.2f} |"
            )
    lines += [
        "",
        "Forecast from the first half of the rounds: labels until the final TPR minus 0.5 points.",
        "",
        "| dataset | seed | target TPR | true labels | predicted | 90% interval | error |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for f in forecast:
        made = f["predicted_labels"] is not None
        upper = "" if not made else "open" if f["interval"][1] is None else f"{f['interval'][1]:,.0f}"
        lines.append(
            f"| {f['dataset']} | {f['seed']} | {100 * f['target_tpr']:.2f}% | {f['true_labels']:,} | "
            + (
                f"{f['predicted_labels']:,.0f}{' (measured)' if f.get('reached') else ''} | "
                f"[{f['interval'][0]:,.0f}, {upper}] | "
                f"{100 * (f['predicted_labels'] - f['true_labels']) / f['true_labels']:+.0f}% |"
                if made
                else "declined | | |"
            )
        )
    lines += [
        "",
        "The kappa criterion at other thresholds (window 3), replayed from the stored kappas:",
        "",
        "| dataset | threshold | fired | labels at stop | labels saved | TPR lost (points) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k in sensitivity:
        lines.append(
            f"| {k['dataset']} | {k['threshold']:g} | {k['fired']}/{k['runs']} | {k['labels_at_stop']:,.0f} | "
            f"{100 * (1 - k['labels_at_stop'] / k['labels_final']):.0f}% | {k['tpr_lost_points']:+.2f} |"
        )
    lines += [
        "",
        "Agreement per round, means over seeds: consecutive models (kappa), the previous model against this "
        "round's refit (change), this round's model against its refit (ceiling):",
        "",
        "| dataset | round | labels | kappa | change | ceiling | ceiling - change |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    fmt = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    for c in ceilings:
        gap = None if c["kappa_refit_change"] is None else c["kappa_refit_ceiling"] - c["kappa_refit_change"]
        lines.append(
            f"| {c['dataset']} | {c['round']} | {c['labels']:,.0f} | {fmt(c['kappa'])} | "
            f"{fmt(c['kappa_refit_change'])} | {fmt(c['kappa_refit_ceiling'])} | {fmt(gap)} |"
        )
    lines += ["", "Targets (means over seeds):", ""]
    for name, t in targets.items():
        lines.append(
            f"* {name}: kappa loses {t['kappa_tpr_lost_points']:.2f} points with {100 * t['kappa_labels_saved_share']:.0f}% "
            f"fewer labels -> {'met' if t['kappa_target_met'] else 'NOT met'}; kappa-refit loses "
            f"{t['kappa_refit_tpr_lost_points']:.2f} points with {100 * t['kappa_refit_labels_saved_share']:.0f}% fewer "
            f"labels -> {'met' if t['kappa_refit_target_met'] else 'NOT met'} (<= 1 point, >= 20%); forecast made in "
            f"{t['forecasts_made']}/{t['seeds']} ({t['forecasts_measured']} already measured in the first half, "
            f"{t['forecasts_open_ended']} with an open upper end), {t['forecasts_within_25pct']} within 25%, interval "
            f"missed the truth {t['interval_misses']} time(s) -> {'met' if t['forecast_target_met'] else 'NOT met'} "
            "(>= 4 of 5, no miss)"
        )
    return "\n".join(lines) + "\n"


def plot_forecasts(all_results: dict, path: Path, seed: int) -> None:
    """The first-half forecast of ``seed`` against the measured curve, one panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_results), figsize=(6 * len(all_results), 4.5))
    for ax, (name, results) in zip(np.atleast_1d(axes), all_results.items()):
        run = next(r for r in results["runs"] if r["seed"] == seed)
        rep = run["stopping"]
        f = rep["forecast"]
        labels = np.array([r["labels"] for r in rep["rounds"]])
        metric = 100 * np.array([r["metric"] for r in rep["rounds"]])
        first = np.isin([r["round"] for r in rep["rounds"]], f["from_rounds"])
        ax.plot(labels[first], metric[first], "o", color="C0", label="measured, used by the forecast")
        ax.plot(labels[~first], metric[~first], "o", mfc="none", color="C0", label="measured later")
        if "curve" in f:
            c = f["curve"]
            grid = np.linspace(labels.min(), labels.max() * 1.3, 200)
            ax.plot(
                grid,
                100 * (c["a"] - c["b"] * (grid / c["n0"]) ** (-c["c"])),
                "-",
                color="C1",
                label=f"fit a - b (n/n0)^-c, a = {100 * c['a']:.1f}%",
            )
        ax.axhline(100 * f["target"], color="grey", ls=":", lw=1, label="final TPR - 0.5 points")
        ax.axvline(f["true_labels"], color="C2", lw=1, label=f"first reached: {f['true_labels']:,}")
        if f["predicted_labels"] is not None:
            lo, hi = f["interval"]
            shown = f"{hi:,.0f}" if hi is not None else "open"
            hi = labels.max() * 1.3 if hi is None else hi
            ax.axvspan(lo, hi, color="C1", alpha=0.15, label=f"90% interval [{lo:,.0f}, {shown}]")
            ax.axvline(
                f["predicted_labels"], color="C1", ls="--", lw=1, label=f"forecast: {f['predicted_labels']:,.0f}"
            )
        else:
            ax.text(0.02, 0.02, f"declined: {f['reason']}", transform=ax.transAxes, fontsize=7, wrap=True)
        ax.set_xlabel("labeled samples")
        ax.set_ylabel("TPR at 1% FPR (%)")
        ax.set_title(f"{name} {results['config']['task']}, seed {seed}")
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(True, alpha=0.25)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--datasets", default="fashion-mnist,digits")
    p.add_argument("--stop-set-size", type=int, default=2_000)
    p.add_argument(
        "--stop-set-source",
        default="auto",
        choices=["auto", "held-out", "pool"],
        help="held-out training rows when there are enough (auto), or the pool (a control)",
    )
    p.add_argument("--eval-repeats", type=int, default=2, help="models per round (>= 2: the second is the refit)")
    p.add_argument("--n-jobs", type=int, default=1, help="threads per model fit")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--rewrite-summary",
        action="store_true",
        help="only rewrite results.json, summary.json, results.md and forecast.png from the runs under --out",
    )
    args = p.parse_args(argv)
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    args.out.mkdir(parents=True, exist_ok=True)
    if args.rewrite_summary:  # the runs as the last full run left them, with its timings and command
        old = json.loads((args.out / "summary.json").read_text())
        runs = {n: json.loads((args.out / n / "results.json").read_text()) for n in names}
        write_summary(runs, old["seconds_per_dataset"], old["seconds"], args, old["command"].split()[2:])
        return 0
    started = time.perf_counter()
    all_results, timings = {}, {}
    for name in names:
        spec = DATASETS[name]
        config = ExperimentConfig(
            **spec,
            strategies=["lc"],
            seeds=list(range(args.seeds)),
            mode="multi-round",
            model=small_lightgbm(),
            full_seeds=0,
            eval_repeats=args.eval_repeats,
            n_jobs=args.n_jobs,
            stopping={"stop_set_size": args.stop_set_size, "stop_set_source": args.stop_set_source},
        )
        t0 = time.perf_counter()
        steps = args.seeds * 2
        with progress_reporter(f"stopping: {name}", total=steps, unit="steps") as bar:
            results = run_experiment(config, progress=lambda what: bar.advance(1, description=f"{name}: {what}"))
        timings[name] = time.perf_counter() - t0
        results["config"]["model"] = f"LGBMClassifier({MODEL})"
        write_outputs(results, args.out / name)
        all_results[name] = results
        log_line(f"{name}: {timings[name]:.0f} s")
    write_summary(all_results, timings, time.perf_counter() - started, args, argv)
    return 0


def write_summary(all_results: dict, timings: dict, seconds: float, args, argv) -> None:
    """``results.json``, ``summary.json``, ``results.md`` and ``forecast.png`` from the runs of every dataset."""
    criteria, forecast, reasons = [], [], {}
    for name, results in all_results.items():
        c, f = extract(name, results)
        criteria += c
        forecast += f
        reasons[name] = [r["stopping"]["forecast"]["reason"] for r in results["runs"]]
    names = list(all_results)
    targets = check_targets(criteria, forecast, reasons)
    sizes = {n: DATASETS[n] for n in names}
    sensitivity = kappa_sensitivity(all_results)
    ceilings = kappa_ceilings(all_results)
    sources = {
        n: sorted({f"{r['stopping']['stop_set_size']:,} {r['stopping']['stop_set_source']} rows" for r in res["runs"]})
        for n, res in all_results.items()
    }
    sources = {n: ", ".join(v) for n, v in sources.items()}
    (args.out / "results.json").write_text(json.dumps({"criteria": criteria, "forecast": forecast}, indent=1))
    (args.out / "summary.json").write_text(
        json.dumps(
            {
                "command": "python benchmarks/stopping.py " + " ".join(sys.argv[1:] if argv is None else argv),
                "sizes": sizes,
                "model": MODEL,
                "strategy": "lc",
                "seeds": args.seeds,
                "stop_set_size": args.stop_set_size,
                "stop_set_source": sources,
                "eval_repeats": args.eval_repeats,
                "n_jobs": args.n_jobs,
                "seconds": seconds,
                "seconds_per_dataset": timings,
                "targets": targets,
                "kappa_sensitivity": sensitivity,
                "kappa_ceilings": ceilings,
            },
            indent=1,
        )
    )
    md = markdown(criteria, forecast, targets, sizes, seconds, sensitivity, ceilings, sources, args.eval_repeats)
    (args.out / "results.md").write_text(md)
    plot_forecasts(all_results, args.out / "forecast.png", seed=0)
    print(md)


if __name__ == "__main__":
    sys.exit(main())

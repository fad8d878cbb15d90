"""Batches without copies: near-duplicate suppression and Cluster-Margin against plain lc/hw.

Fashion-MNIST shirt (class 6) against the rest, LightGBM, L = 10,000 random, U = 30,000 others,
one-shot, TPR at 1% FPR on the official test set (``activemine experiment`` underneath):

* ``copies``: U plus R = 300 hard source rows of U (the L-only model's least confident) copied
  C = 30 times each with seeded noise (``--duplicates 300,30``), B = 3,000;
* ``clean``: the same pool without copies, B = 3,000;
* ``clean-30pct``: without copies, B = 9,000 (30% of the pool).

Strategies: random, lc, hw, lc/hw + near-duplicates (``auto`` radius), lc/hw + clusters
(Cluster-Margin, 1,000 clusters, top 5x quota). Defaults are the targets' settings (5 seeds, 2 models
per evaluation); ``--seeds``, ``--eval-repeats`` and ``--settings`` scale it down. Writes
``benchmarks/results/diversity/results.json`` (``runs``: one record per setting, strategy and seed; ``summary`` means,
``targets``, ``command``) after every setting, so a partial run keeps what it measured.

    python benchmarks/diversity.py --seeds 3 --eval-repeats 1 --settings copies,clean
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

SETTINGS = {
    "copies": dict(budget=3_000, duplicates=(300, 30)),
    "clean": dict(budget=3_000, duplicates=None),
    "clean-30pct": dict(budget=9_000, duplicates=None),
}
STRATEGIES = ["random", "lc", "hw", "lc+near-duplicates", "hw+near-duplicates", "lc+clusters", "hw+clusters"]


def run_setting(name: str, args, seed: int) -> list[dict]:
    from activemine.experiments.runner import ExperimentConfig, run_experiment

    spec = SETTINGS[name]
    config = ExperimentConfig(
        dataset=args.dataset,
        task=args.task,
        labeled_size=args.labeled_size,
        pool_size=args.pool_size,
        budget=spec["budget"],
        strategies=args.strategies,
        seeds=[seed],
        eval_repeats=args.eval_repeats,
        full_seeds=0,
        duplicates=spec["duplicates"],
        clusters=args.clusters,
        model="lightgbm",
    )
    started = time.perf_counter()
    results = run_experiment(
        config,
        progress=lambda what: print(
            f"[{time.perf_counter() - started:6.0f} s] {name}: {what}", file=sys.stderr, flush=True
        ),
    )
    runs = []
    for r in results["runs"]:
        runs.append(
            {
                "setting": name,
                "strategy": r["strategy"],
                "seed": r["seed"],
                "tpr_at_1pct_fpr": r["tpr_at_fpr"],
                "auc": r["auc"],
                "copies": r.get("copies"),
                "sources": r.get("sources"),
                "radius": (r.get("diversity") or {}).get("radius"),
                "select_seconds": r["select_seconds"],
            }
        )
    return runs


def summarize(runs: list[dict]) -> dict:
    out: dict = {}
    for r in runs:
        out.setdefault(r["setting"], {}).setdefault(r["strategy"], []).append(r)
    summary = {}
    for setting, by in out.items():
        summary[setting] = {}
        for strategy, rs in by.items():
            tpr = np.array([r["tpr_at_1pct_fpr"] for r in rs])
            s = {
                "tpr_at_1pct_fpr": float(tpr.mean()),
                "tpr_std": float(tpr.std(ddof=1)) if tpr.size > 1 else 0.0,
                "auc": float(np.mean([r["auc"] for r in rs])),
                "seeds": len(rs),
            }
            if rs[0]["copies"] is not None:
                s["copies"] = float(np.mean([r["copies"] for r in rs]))
                s["sources"] = float(np.mean([r["sources"] for r in rs]))
            summary[setting][strategy] = s
    return summary


def targets(summary: dict) -> dict:
    """The targets on the means (None where a setting was not run)."""
    t = {}
    a = summary.get("copies", {})
    if {"hw+near-duplicates", "hw", "lc"} <= set(a):
        nd = a["hw+near-duplicates"]
        t["copies: hw+near-duplicates >= lc + 2 points"] = nd["tpr_at_1pct_fpr"] >= a["lc"]["tpr_at_1pct_fpr"] + 0.02
        t["copies: hw+near-duplicates >= hw + 2 points"] = nd["tpr_at_1pct_fpr"] >= a["hw"]["tpr_at_1pct_fpr"] + 0.02
        t["copies: hw+near-duplicates <= 1.1 copies per source"] = nd["copies"] <= 1.1 * max(nd["sources"], 1)
    for setting in ("clean", "clean-30pct"):
        b = summary.get(setting, {})
        if {"hw+near-duplicates", "hw"} <= set(b):
            gap = b["hw+near-duplicates"]["tpr_at_1pct_fpr"] - b["hw"]["tpr_at_1pct_fpr"]
            t[f"{setting}: hw+near-duplicates no more than 0.3 points below hw"] = gap >= -0.003
    return t


def table(summary: dict) -> str:
    lines = ["| setting | strategy | TPR@1% FPR (%) | AUC | copies / sources in batch |", "|---|---|---:|---:|---:|"]
    for setting, by in summary.items():
        for strategy, s in by.items():
            cs = f"{s['copies']:,.0f} / {s['sources']:,.0f}" if "copies" in s else "-"
            lines.append(
                f"| {setting} | {strategy} | {100 * s['tpr_at_1pct_fpr']:.2f} +/- {100 * s['tpr_std']:.2f} "
                f"| {s['auc']:.4f} | {cs} |"
            )
    return "\n".join(lines)


def merge(paths: list[str], out: Path) -> None:
    """One results file from several (e.g. seeds run as separate processes); the commands are joined."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    doc = {
        "command": " ; ".join(d["command"] for d in docs),
        "config": docs[0]["config"],
        "not_run": sorted(set.intersection(*(set(d.get("not_run", [])) for d in docs))),
        "runs": [r for d in docs for r in d["runs"]],
        "scale": next((d["scale"] for d in docs if d.get("scale")), None),
        "seconds": max(d.get("seconds", 0) for d in docs),
    }
    doc["config"]["seeds"] = sorted({r["seed"] for r in doc["runs"]})
    doc["summary"] = summarize(doc["runs"])
    doc["targets"] = targets(doc["summary"])
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out)
    print(table(doc["summary"]))
    print(json.dumps(doc["targets"], indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--eval-repeats", type=int, default=2)
    ap.add_argument("--settings", default="copies,clean,clean-30pct")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--labeled-size", type=int, default=10_000)
    ap.add_argument("--pool-size", type=int, default=30_000)
    ap.add_argument("--clusters", type=int, default=1_000)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--task", default="binary:6")
    ap.add_argument("--out", default="benchmarks/results/diversity/results.json")
    ap.add_argument(
        "--append", action="store_true", help="Keep the runs already in --out (another setting, more seeds)."
    )
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument(
        "--merge", nargs="+", help="Combine the runs of these results files (seeds run in parallel) into --out."
    )
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, Path(args.out))
        return
    args.strategies = [s for s in args.strategies.split(",") if s]
    settings = [s for s in args.settings.split(",") if s]
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        raise SystemExit(f"unknown settings {unknown}; expected {list(SETTINGS)}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "command": "python " + " ".join(sys.argv),
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "not_run": [s for s in SETTINGS if s not in settings],
        "runs": [],
        "scale": None,
    }
    if out.exists():  # keep a scale run measured separately (and, with --append, the runs)
        before = json.loads(out.read_text())
        doc["scale"] = before.get("scale")
        if args.append:
            doc["runs"] = before.get("runs", [])
            doc["command"] = before.get("command", "") + " && " + doc["command"]
            doc["not_run"] = [s for s in before.get("not_run", []) if s not in settings]
    started = time.perf_counter()
    # seeds outermost, so a run stopped early still has every setting for the seeds it finished
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for setting in settings:
            doc["runs"].extend(run_setting(setting, args, seed))
            doc["summary"] = summarize(doc["runs"])
            doc["targets"] = targets(doc["summary"])
            doc["seconds"] = time.perf_counter() - started
            tmp = out.with_name(f".{out.name}.tmp")
            tmp.write_text(json.dumps(doc, indent=1))
            tmp.replace(out)
            print(table(doc["summary"]), flush=True)
    print(json.dumps(doc["targets"], indent=1))
    print(f"done in {time.perf_counter() - started:.0f} s; wrote {out}")


if __name__ == "__main__":
    main()

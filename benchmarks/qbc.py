"""QBC that ranks every row: tie rules, committee sizes, Active-Decorate.

Three parts, each written to ``benchmarks/results/qbc/`` as soon as it ends:

* **one-shot** on Fashion-MNIST shirt-vs-rest at a reduced scale (L 5,000,
  U 20,000, B 2,000, LightGBM, 3 seeds): ``lc`` against QBC with plain vote
  entropy (ties by id, the old rule), vote entropy ranked by the consensus's
  least confidence (the new default) and KL to the consensus, for committees
  of 2, 3 and 5. One 5-member committee is fitted per seed; a committee of m
  is its first m members, which are exactly the members ``Committee(n_members=m)``
  fits (member i draws from the generator seeded ``[seed, i]``). Costs: the
  seconds of one member's fit and prediction (means over the 5, fitted one
  after the other), times m. Every batch records ``decided_by`` (which key put
  its rows ahead of the rows left out, :func:`activemine.selection.ties.decided_by`), its
  positives, and the TPR at 1% FPR and AUC of LightGBM trained on L + B. Rows
  marked "selection only" were not evaluated (no final fit), to save time.
* **secondary** on digits, 10 classes (L 300, B 150, LightGBM, 3 seeds): the
  consensus's least confidence against its entropy as the secondary key (on a
  binary task the two rank rows identically).
* **multi-round** (``activemine.experiments.runner``, ``--mode multi-round``): ``qbc``
  (a 3-member committee refitted on all labels each round) against ``qbc-grow``
  (fitted once, then one member a round trained on the new batch plus a
  resample of the old labels, Active-Decorate), L 2,000, U 10,000, B 1,000 in
  4 rounds, 2 seeds.

    python benchmarks/qbc.py                    # all three parts: 35 minutes on the shared 2-core machine under load
    python benchmarks/qbc.py --parts one-shot --seeds 1 --labeled-size 1000 --pool-size 4000 --budget 400
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

# LightGBM's OpenMP threads spin while waiting; on a busy 2-core machine that
# multiplies fit times, so they yield instead (before lightgbm is loaded).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np

from activemine import PoolChunk, make_strategy
from activemine.experiments.runner import ExperimentConfig, load_task, run_experiment
from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.models import make_model, predict_proba_aligned
from activemine.selection.committee import Committee
from activemine.selection.plan import SelectionPlan
from activemine.selection.ties import strategy_decided_by

OUT = Path(__file__).parent / "results" / "qbc"
#: one-shot variants: name -> (committee size or None for lc, strategy kwargs, evaluated)
VARIANTS = {
    "lc": (None, {}, True),
    "qbc-3 vote, ties by id (old)": (3, {"secondary": None}, True),
    "qbc-3 vote + consensus lc": (3, {}, True),
    "qbc-3 kl": (3, {"disagreement": "kl"}, True),
    "qbc-2 vote + consensus lc": (2, {}, True),
    "qbc-5 vote + consensus lc": (5, {}, True),
    "qbc-2 vote, ties by id (old)": (2, {"secondary": None}, False),
    "qbc-5 vote, ties by id (old)": (5, {"secondary": None}, False),
    "qbc-2 kl": (2, {"disagreement": "kl"}, False),
    "qbc-5 kl": (5, {"disagreement": "kl"}, False),
}


def log(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)


def split(n: int, labeled: int, pool: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # the experiment's split: a seeded permutation, L first, then U
    order = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(order[:labeled]), np.sort(order[labeled : labeled + pool])


def evaluate(task, rows: np.ndarray, *, seed: int, fpr: float, cache: dict, model=None) -> dict:
    """TPR at ``fpr`` and AUC (one-vs-rest macro for several classes) of LightGBM trained on ``rows``
    (``model``: that model, already fitted)."""
    rows = np.sort(rows)
    key = hashlib.sha1(rows.tobytes()).hexdigest()
    if key not in cache:
        if model is None:
            model = make_model("lightgbm", random_state=seed).fit(task.X_train[rows], task.y_train[rows])
        proba = predict_proba_aligned(model, task.X_test, np.arange(len(task.class_names)))
        scores = proba[:, 1] if task.binary else proba
        cache[key] = {
            "tpr_at_fpr": float(tpr_at_fpr(task.y_test, scores, fpr)),
            "auc": float(roc_auc(task.y_test, scores)),
        }
    return dict(cache[key])


def select(task, variant: tuple, *, ids, pool_proba, stack, budget: int, seed: int) -> dict:
    """One batch of a variant from precomputed probabilities; its ids, ``decided_by`` and positives."""
    size, kwargs, _ = variant
    k = len(task.class_names)
    if size is None:
        strategy = make_strategy("lc", random_state=seed).fit(None, n_proba_columns=k)
        chunk = PoolChunk(ids, proba=pool_proba)
    else:
        strategy = make_strategy("qbc", committee_size=size, random_state=seed, **kwargs).fit(None, n_proba_columns=k)
        chunk = PoolChunk(ids, member_proba=stack[:size])
    start = time.perf_counter()
    scores, predicted = strategy.score(chunk)
    batch = SelectionPlan.build(strategy, budget=budget).bind(classes=strategy.classes_).select(ids, scores, predicted)
    seconds = time.perf_counter() - start
    decided = strategy_decided_by(strategy, batch, ids, scores, predicted)
    return {
        "ids": batch.ids,
        "decided_by": decided,
        "id_share": decided["id"] / max(1, sum(decided.values())),
        "positives": int(task.y_train[batch.ids].sum()) if task.binary else None,
        "score_select_seconds": seconds,
    }


def one_shot(
    task, *, seeds, labeled: int, pool: int, budget: int, variants: dict, max_members: int, started: float
) -> dict:
    runs = []
    for seed in seeds:
        L, U = split(task.y_train.size, labeled, pool, seed)
        cache: dict = {}
        t = time.perf_counter()
        initial_model = make_model("lightgbm", random_state=seed).fit(task.X_train[L], task.y_train[L])
        lc_fit = time.perf_counter() - t
        t = time.perf_counter()
        pool_proba = predict_proba_aligned(initial_model, task.X_train[U], np.arange(len(task.class_names)))
        lc_predict = time.perf_counter() - t
        initial = evaluate(task, L, seed=seed, fpr=0.01, cache=cache, model=initial_model)
        log(f"one-shot seed {seed}: initial TPR {100 * initial['tpr_at_fpr']:.2f}", started)
        t = time.perf_counter()
        committee = Committee("lightgbm", n_members=max_members, random_state=seed, n_jobs=1).fit(
            task.X_train[L], task.y_train[L]
        )
        member_fit = (time.perf_counter() - t) / max_members
        t = time.perf_counter()
        stack = committee.predict_proba_stack(task.X_train[U])
        member_predict = (time.perf_counter() - t) / max_members
        log(
            f"one-shot seed {seed}: {max_members} members, {member_fit:.1f} s fit + {member_predict:.1f} s predict each",
            started,
        )
        for name, variant in variants.items():
            got = select(task, variant, ids=U, pool_proba=pool_proba, stack=stack, budget=budget, seed=seed)
            size = variant[0]
            cost = (lc_fit + lc_predict) if size is None else size * (member_fit + member_predict)
            run = {
                "variant": name,
                "seed": seed,
                "committee_size": size,
                "evaluated": variant[2],
                "select_seconds": cost + got["score_select_seconds"],
                "model_fits": 1 if size is None else size,
                **{k: v for k, v in got.items() if k != "ids"},
            }
            if variant[2]:
                run.update(evaluate(task, np.concatenate([L, got["ids"]]), seed=seed, fpr=0.01, cache=cache))
            runs.append(run)
            tpr = f"TPR {100 * run['tpr_at_fpr']:.2f}" if "tpr_at_fpr" in run else "selection only"
            log(
                f"one-shot seed {seed}: {name}: {tpr}, decided by id {100 * run['id_share']:.1f}%, "
                f"{run['positives']} positives",
                started,
            )
        runs.append({"variant": "reference:initial", "seed": seed, **initial})
    return {
        "config": {
            "dataset": "fashion-mnist",
            "task": "binary:6",
            "labeled_size": labeled,
            "pool_size": pool,
            "budget": budget,
            "seeds": list(seeds),
            "model": "lightgbm",
            "fpr": 0.01,
            "committee_members_fitted": max_members,
        },
        "runs": runs,
        "summary": summarize(runs),
    }


def secondary_keys(*, seeds, labeled: int, budget: int, started: float) -> dict:
    task = load_task("digits", "multiclass")
    runs = []
    for seed in seeds:
        L, U = split(task.y_train.size, labeled, task.y_train.size - labeled, seed)
        cache: dict = {}
        committee = Committee("lightgbm", n_members=3, random_state=seed, n_jobs=1).fit(
            task.X_train[L], task.y_train[L]
        )
        stack = committee.predict_proba_stack(task.X_train[U])
        for name, kwargs in (
            ("vote + consensus lc", {"secondary": "lc"}),
            ("vote + consensus entropy", {"secondary": "entropy"}),
            ("vote, ties by id (old)", {"secondary": None}),
        ):
            got = select(task, (3, kwargs, True), ids=U, pool_proba=None, stack=stack, budget=budget, seed=seed)
            run = {
                "variant": name,
                "seed": seed,
                "decided_by": got["decided_by"],
                "id_share": got["id_share"],
                **evaluate(task, np.concatenate([L, got["ids"]]), seed=seed, fpr=0.01, cache=cache),
            }
            runs.append(run)
            log(
                f"secondary seed {seed}: {name}: macro TPR {100 * run['tpr_at_fpr']:.2f}, AUC {run['auc']:.4f}", started
            )
    return {
        "config": {
            "dataset": "digits",
            "task": "multiclass",
            "labeled_size": labeled,
            "budget": budget,
            "seeds": list(seeds),
            "model": "lightgbm",
            "committee_size": 3,
            "fpr": 0.01,
        },
        "runs": runs,
        "summary": summarize(runs),
    }


def multi_round(*, seeds, labeled: int, pool: int, budget: int, rounds: int, started: float) -> dict:
    config = ExperimentConfig(
        dataset="fashion-mnist",
        task="binary:6",
        labeled_size=labeled,
        budget=budget,
        pool_size=pool,
        strategies=("qbc", "qbc-grow"),
        seeds=tuple(seeds),
        mode="multi-round",
        rounds=rounds,
        full_seeds=0,
    )
    results = run_experiment(config, progress=lambda what: log(f"multi-round: {what}", started))
    for r in results["runs"]:
        r.pop("roc_tpr", None)
    return {
        "config": results["config"],
        "runs": results["runs"],
        "summary": results["summary"],
        "reference": {
            k: [{kk: vv for kk, vv in x.items() if kk != "roc_tpr"} for x in v] for k, v in results["reference"].items()
        },
    }


def _mean_std(values) -> dict:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if a.size == 0:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)}


def summarize(runs: list[dict]) -> dict:
    out = {}
    for name in dict.fromkeys(r["variant"] for r in runs):
        rs = [r for r in runs if r["variant"] == name]
        keys = [k for k in ("tpr_at_fpr", "auc", "id_share", "positives", "select_seconds") if k in rs[0]]
        out[name] = {k: _mean_std([r[k] for r in rs]) for k in keys}
    return out


def _fmt(s: dict, key: str, scale: float = 1.0, digits: int = 2) -> str:
    if key not in s or s[key]["mean"] is None:
        return ""
    return f"{scale * s[key]['mean']:.{digits}f} +/- {scale * s[key]['std']:.{digits}f}"


def markdown(doc: dict) -> str:
    lines = ["# QBC benchmark", "", f"Command: `{doc['command']}`; {doc['machine']}.", ""]
    if "one_shot" in doc:
        c, s = doc["one_shot"]["config"], doc["one_shot"]["summary"]
        lines += [
            f"## One-shot: Fashion-MNIST shirt-vs-rest, L {c['labeled_size']:,}, U {c['pool_size']:,}, "
            f"B {c['budget']:,}, LightGBM, seeds {c['seeds']}",
            "",
            "Mean +/- std over seeds. *decided by id*: share of the batch that only the id put ahead of the rows left "
            "out. *select s*: fitting and scoring the committee (m x one member's mean fit + prediction) and selecting. "
            "Rows without TPR are selection only.",
            "",
            "| run | TPR@1% FPR (%) | AUC | positives in batch | decided by id (%) | select s |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, v in s.items():
            lines.append(
                f"| {name} | {_fmt(v, 'tpr_at_fpr', 100)} | {_fmt(v, 'auc', 1, 4)} | {_fmt(v, 'positives', 1, 0)} "
                f"| {_fmt(v, 'id_share', 100, 1)} | {_fmt(v, 'select_seconds', 1, 1)} |"
            )
        lines.append("")
    if "secondary" in doc:
        c, s = doc["secondary"]["config"], doc["secondary"]["summary"]
        lines += [
            f"## Secondary key: digits, 10 classes, L {c['labeled_size']}, B {c['budget']}, 3 members, seeds {c['seeds']}",
            "",
            "| secondary key | macro TPR@1% FPR (%) | macro AUC | decided by id (%) |",
            "|---|---:|---:|---:|",
        ]
        for name, v in s.items():
            lines.append(
                f"| {name} | {_fmt(v, 'tpr_at_fpr', 100)} | {_fmt(v, 'auc', 1, 4)} | {_fmt(v, 'id_share', 100, 1)} |"
            )
        lines.append("")
    if "multi_round" in doc:
        c, s = doc["multi_round"]["config"], doc["multi_round"]["summary"]
        lines += [
            f"## Multi-round: Fashion-MNIST shirt-vs-rest, L {c['labeled_size']:,}, U {c['pool_size']:,}, "
            f"B {c['budget']:,} in {c['rounds']} rounds, seeds {c['seeds']}",
            "",
            "`qbc`: 3 members refitted on all labels every round; `qbc-grow`: fitted once, then one member a round "
            "(Active-Decorate). TPR after the last round.",
            "",
            "| run | TPR@1% FPR (%) | AUC | model fits | select s | decided by id (%) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, v in s.items():
            fits = f"{v['model_fits']['mean']:.0f}" if "model_fits" in v else ""
            lines.append(
                f"| {name} | {_fmt(v, 'tpr_at_fpr', 100)} | {_fmt(v, 'auc', 1, 4)} | {fits} "
                f"| {_fmt(v, 'select_seconds', 1, 1)} | {_fmt(v, 'id_decided_share', 100, 1)} |"
            )
        curves = {}
        for r in doc["multi_round"]["runs"]:
            curves.setdefault(r["strategy"], []).append([100 * p["tpr_at_fpr"] for p in r["curve"]])
        lines += ["", "Learning curves (mean TPR@1% FPR per round, %):", ""]
        for name, cs in curves.items():
            lines.append(f"- {name}: " + ", ".join(f"{v:.2f}" for v in np.mean(cs, axis=0)))
        lines.append("")
    return "\n".join(lines)


def write(doc: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(doc, indent=1)), ("results.md", markdown(doc))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)  # atomic: a reader never sees half a file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="one-shot,secondary,multi-round")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labeled-size", type=int, default=5_000)
    parser.add_argument("--pool-size", type=int, default=20_000)
    parser.add_argument("--budget", type=int, default=2_000)
    parser.add_argument("--mr-seeds", type=int, default=2)
    parser.add_argument("--mr-labeled-size", type=int, default=2_000)
    parser.add_argument("--mr-pool-size", type=int, default=10_000)
    parser.add_argument("--mr-budget", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    doc = {
        "command": "python benchmarks/qbc.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared), Python {platform.python_version()}",
    }
    parts = args.parts.split(",")
    if "one-shot" in parts:
        task = load_task("fashion-mnist", "binary:6")
        doc["one_shot"] = one_shot(
            task,
            seeds=range(args.seeds),
            labeled=args.labeled_size,
            pool=args.pool_size,
            budget=args.budget,
            variants=VARIANTS,
            max_members=5,
            started=started,
        )
        write(doc, args.out)
    if "secondary" in parts:
        doc["secondary"] = secondary_keys(seeds=range(args.seeds), labeled=300, budget=150, started=started)
        write(doc, args.out)
    if "multi-round" in parts:
        doc["multi_round"] = multi_round(
            seeds=range(args.mr_seeds),
            labeled=args.mr_labeled_size,
            pool=args.mr_pool_size,
            budget=args.mr_budget,
            rounds=args.rounds,
            started=started,
        )
    doc["wall_seconds"] = time.perf_counter() - started
    write(doc, args.out)
    print(markdown(doc))


if __name__ == "__main__":
    main()

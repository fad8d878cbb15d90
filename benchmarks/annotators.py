"""Annotator benchmark: consensus accuracy, finding the bad annotator, and relabeling against new samples.

    python benchmarks/annotators.py [--datasets fashion-mnist,digits] [--seeds 5] [--noise 0.05,0.15]

Datasets: Fashion-MNIST shirt (class 6) against the rest, on a seeded subsample
of the training set in 50 PCA components (to keep the run short on 2 shared
cores), and scikit-learn's digits, 10 classes. No downloads.

Annotators (:mod:`activemine.annotators.simulation`): five; each gives the true
class with probability ``1 - noise`` and otherwise a uniformly drawn other
class; the fifth also confuses the hardest pair of classes (closest class means;
on Fashion-MNIST the closest to shirt, which is pullover) 30% of the time; 10% of the samples are
labeled by two distinct annotators. On Fashion-MNIST the annotators judge the
garment (10 classes) and the campaign receives shirt / not shirt, as in a
shirt-vs-rest campaign. ``noise`` is the good annotators' garment error rate.

Per dataset, seed and noise level, on the labeled set L:

(a) consensus accuracy against the truth of ``majority``, ``dawid-skene`` and
    ``model-weighted`` (activemine), ``crowd-kit-dawid-skene`` and
    ``cleanlab-crowdlab`` (reference implementations, test/bench extra); the model's
    probabilities are out of fold (3 folds of a small LightGBM on the
    majority-vote labels);
(b) the rank of the bad annotator by activemine's annotator quality (1 = worst),
    at the first noise level (every level in ``summary.bad_annotator_by_noise``,
    with how often the bad and the good annotators were flagged);
(c) the same extra budget of labels spent three ways, then a LightGBM trained
    on the resulting consensus labels and evaluated on the test set (TPR at
    FPR = 1%, one-vs-rest macro for digits): ``relabel-activemine`` (second
    opinions on the rows :func:`activemine.annotators.relabel.rank_for_relabel` ranks
    first), ``relabel-random`` (second opinions on random labeled rows),
    ``new-hw`` (new pool samples mined with HW, one label each). All three
    start from the same labels and train the same model with the same seed
    (paired). Training labels are the majority vote with ties (a disputed
    second opinion) broken by the out-of-fold model (``majority-model-ties``):
    on Fashion-MNIST the model-weighted consensus overrules correct single
    shirt labels too often to train on (see (a));
(d) the advice of :func:`activemine.annotators.relabel.relabel_advice` (made before
    spending) against the better of ``relabel-activemine`` and ``new-hw``.

Writes benchmarks/results/annotators/results.json with ``consensus``,
``bad_annotator``, ``relabel``, ``advice`` (one schema per part; advice rows
also name the noise level, as there are two per seed) plus ``details`` (labels
fixed and broken by each relabeling, the advice's expected fixes),
``settings`` and ``summary``, results.md, and agreement_DATASET.png (the
pairwise kappa heat map of seed 0 at the first noise level).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import numpy as np

from activemine.annotators.agreement import annotator_report, dawid_skene, majority_vote, model_weighted_consensus
from activemine.annotators.relabel import rank_for_relabel, relabel_advice
from activemine.annotators.simulation import (
    AnnotatorSpec,
    add_second_opinions,
    annotator_names,
    hardest_pair,
    simulate_labels,
)
from activemine.campaign.annotators import write_agreement_heatmap
from activemine.data.chunks import LabeledSet, PoolChunk
from activemine.data.datasets import load_dataset
from activemine.dirty import out_of_fold_proba
from activemine.engines.mining import mine
from activemine.metrics import tpr_at_fpr
from activemine.progress import log_line
from activemine.selection.strategies import make_strategy

OUT_DIR = Path(__file__).resolve().parent / "results" / "annotators"
SHIRT = 6
SEED = 0  # the Fashion-MNIST subsample and PCA
SIZES = {  # labeled set L, pool U (for new-hw), extra budget B
    "fashion-mnist": {"train": 20_000, "labeled": 5_000, "pool": 10_000, "budget": 1_000},
    "digits": {"labeled": 600, "pool": 600, "budget": 120},
}


def eval_model(seed: int):
    from lightgbm import LGBMClassifier

    # small and single-threaded: the machine's 2 cores are shared, and OpenMP threads fighting for them cost more
    return LGBMClassifier(
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=15,
        colsample_bytree=0.5,
        subsample=0.8,
        subsample_freq=1,
        n_jobs=1,
        verbose=-1,
        random_state=seed,
    )


def load(name: str):
    """Features, the annotators' classes (garments / digits) and the task's labels, train and test."""
    d = load_dataset(name)
    if name == "digits":
        return d.X_train, d.y_train, d.y_train, d.X_test, d.y_test, 10
    from sklearn.decomposition import PCA

    rows = np.sort(np.random.default_rng(SEED).choice(d.y_train.size, size=SIZES[name]["train"], replace=False))
    pca = PCA(n_components=50, random_state=SEED).fit(d.X_train[rows])
    y = d.y_train[rows]
    return (
        pca.transform(d.X_train[rows]),
        y,
        (y == SHIRT).astype(np.int64),
        pca.transform(d.X_test),
        (d.y_test == SHIRT).astype(np.int64),
        10,
    )


def to_task(labels: np.ndarray, name: str) -> np.ndarray:
    """Annotators' labels in their own classes -> the task's classes (-1 stays -1)."""
    if name == "digits":
        return labels
    return np.where(labels < 0, -1, (labels == SHIRT).astype(np.int64))


def tpr(X, y, X_test, y_test, k: int, seed: int) -> float:
    model = eval_model(seed).fit(X, y)
    p = model.predict_proba(X_test)
    return float(tpr_at_fpr(y_test, p[:, 1] if k == 2 else p, 0.01, classes=None if k == 2 else list(range(k))))


def crowd_kit_ds(L: np.ndarray) -> np.ndarray:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

    rows, cols = np.nonzero(L >= 0)
    df = pd.DataFrame({"task": rows, "worker": cols, "label": L[rows, cols]})
    return DawidSkene(n_iter=100).fit_predict(df).reindex(range(L.shape[0])).to_numpy().astype(np.int64)


def cleanlab_crowdlab(L: np.ndarray, P: np.ndarray) -> np.ndarray:
    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = get_label_quality_multiannotator(pd.DataFrame(np.where(L >= 0, L, np.nan)), P, verbose=False)
    return out["label_quality"]["consensus_label"].to_numpy().astype(np.int64)


def run_one(name, data, seed, noise, first_noise, out, log):
    X, y_ann, y_task, X_test, y_test, k_ann = data
    k = 2 if name == "fashion-mnist" else 10
    size = SIZES[name]
    order = np.random.default_rng([seed, 16]).permutation(y_task.size)
    Lr, Ur = np.sort(order[: size["labeled"]]), np.sort(order[size["labeled"] : size["labeled"] + size["pool"]])
    pair = hardest_pair(X, y_ann, k_ann, involving=SHIRT if name == "fashion-mnist" else None)
    spec = AnnotatorSpec(n=5, noise=noise, bad=1, bad_rate=0.3, overlap=0.1, per_item=2)
    L = to_task(simulate_labels(y_ann[Lr], spec, k=k_ann, pair=pair, random_state=seed), name)
    truth = y_task[Lr]
    mv = majority_vote(L, k)
    P = out_of_fold_proba(eval_model(seed), X[Lr], mv.labels, folds=3, seed=seed, classes=list(range(k)), n_jobs=1)
    mw = model_weighted_consensus(L, P, k=k)
    train = majority_vote(L, k, proba=P)  # the training labels: votes, ties (a disputed second opinion) by the model
    report = annotator_report(L, k, result=mw, proba=P, names=annotator_names(spec))
    if seed == 0 and noise == first_noise:  # the figure of the README's annotator-quality section
        write_agreement_heatmap(report, out["_dir"] / f"agreement_{name}.png")
    bad = report["annotators"][-1]
    out["_bad_by_noise"].append(
        {
            "dataset": name,
            "seed": seed,
            "noise": noise,
            "rank": bad["rank"],
            "flagged": bad["flagged"],
            "flagged_good": sum(a["flagged"] for a in report["annotators"][:-1]),
        }
    )
    if noise == first_noise:
        methods = {
            "majority": mv.labels,
            "majority-model-ties": train.labels,
            "dawid-skene": dawid_skene(L, k).labels,
            "model-weighted": mw.labels,
            "crowd-kit-dawid-skene": crowd_kit_ds(L),
            "cleanlab-crowdlab": cleanlab_crowdlab(L, P),
        }
        for method, labels in methods.items():
            out["consensus"].append(
                {"dataset": name, "seed": seed, "method": method, "accuracy": float(np.mean(labels == truth))}
            )
        out["bad_annotator"].append({"dataset": name, "seed": seed, "rank": bad["rank"], "n_annotators": spec.n})
    B = size["budget"]
    ranking = rank_for_relabel(L, P, budget=B, k=k, result=mw, train_labels=train.labels)
    advice = relabel_advice(ranking)
    results = {}
    for use, rows in (
        ("relabel-activemine", ranking.order),
        ("relabel-random", np.random.default_rng([seed, 17]).choice(Lr.size, size=B, replace=False)),
    ):
        L2 = to_task(
            add_second_opinions(np.where(L >= 0, 0, -1), y_ann[Lr], rows, spec, k=k_ann, pair=pair, random_state=seed),
            name,
        )
        L2 = np.where(L >= 0, L, L2)  # the old labels, plus the new opinion where one was added
        y2 = majority_vote(L2, k, proba=P).labels
        results[use] = {
            "tpr": tpr(X[Lr], y2, X_test, y_test, k, seed),
            "fixed": int(((y2 == truth) & (train.labels != truth)).sum()),
            "broken": int(((y2 != truth) & (train.labels == truth)).sum()),
        }
    hw = make_strategy("hw", model=eval_model(seed), random_state=seed, classes=list(range(k)))
    batch = mine(hw, PoolChunk(Ur, X=X[Ur]), budget=B, labeled=LabeledSet(X[Lr], train.labels, Lr))
    single = AnnotatorSpec(n=5, noise=noise, bad=1, bad_rate=0.3, overlap=0.0)
    new = to_task(simulate_labels(y_ann[batch.ids], single, k=k_ann, pair=pair, random_state=seed + 1000), name).max(
        axis=1
    )
    results["new-hw"] = {
        "tpr": tpr(np.concatenate([X[Lr], X[batch.ids]]), np.concatenate([train.labels, new]), X_test, y_test, k, seed)
    }
    for use, r in results.items():
        out["relabel"].append({"dataset": name, "seed": seed, "noise": noise, "use": use, "tpr_at_1pct_fpr": r["tpr"]})
    better = "relabel" if results["relabel-activemine"]["tpr"] >= results["new-hw"]["tpr"] else "mine"
    # the advice row, plus the noise level (two levels per seed here)
    out["advice"].append(
        {"dataset": name, "seed": seed, "noise": noise, "advised": advice["advised"], "better": better}
    )
    out["details"].append(
        {
            "dataset": name,
            "seed": seed,
            "noise": noise,
            "expected_fixes": advice["expected_fixes"],
            "wrong_training_labels": int((train.labels != truth).sum()),
            **{f"{u}_{key}": r[key] for u, r in results.items() for key in ("fixed", "broken") if key in r},
        }
    )
    log(
        f"{name} seed {seed} noise {noise}: "
        + ", ".join(f"{u} {100 * r['tpr']:.2f}" for u, r in results.items())
        + f"; advised {advice['advised']}, better {better}"
    )


def summarize(out: dict) -> dict:
    s: dict = {"consensus": {}, "bad_annotator": {}, "relabel": {}, "advice": {}}
    for r in out["consensus"]:
        s["consensus"].setdefault(r["dataset"], {}).setdefault(r["method"], []).append(r["accuracy"])
    s["consensus"] = {d: {m: float(np.mean(v)) for m, v in ms.items()} for d, ms in s["consensus"].items()}
    for r in out["bad_annotator"]:
        s["bad_annotator"].setdefault(r["dataset"], []).append(r["rank"])
    s["bad_annotator"] = {
        d: {"ranked_last": sum(v == 1 for v in ranks), "seeds": len(ranks)} for d, ranks in s["bad_annotator"].items()
    }
    for r in out["relabel"]:
        s["relabel"].setdefault(f"{r['dataset']} noise {r['noise']}", {}).setdefault(r["use"], []).append(
            r["tpr_at_1pct_fpr"]
        )
    s["relabel"] = {key: {u: float(np.mean(v)) for u, v in uses.items()} for key, uses in s["relabel"].items()}
    for r in out["advice"]:
        a = s["advice"].setdefault(f"{r['dataset']} noise {r['noise']}", {"right": 0, "seeds": 0})
        a["right"] += r["advised"] == r["better"]
        a["seeds"] += 1
    return s


def markdown(out: dict) -> str:
    s = out["summary"]
    lines = [
        f"# Annotator benchmark\n\n`{out['settings']['command']}` ({out['settings']['seconds']:.0f} s)\n",
        "## Consensus accuracy (mean over seeds, %)\n",
    ]
    methods = sorted({m for d in s["consensus"].values() for m in d})
    lines += ["| dataset | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]
    for d, ms in s["consensus"].items():
        lines.append(f"| {d} | " + " | ".join(f"{100 * ms[m]:.2f}" for m in methods) + " |")
    lines += ["\n## Bad annotator ranked last (rank 1)\n"]
    lines += [f"- {d}: {v['ranked_last']} of {v['seeds']} seeds" for d, v in s["bad_annotator"].items()]
    lines += [
        "\n## TPR at 1% FPR after the extra budget (mean over seeds, %)\n",
        "| dataset, noise | relabel-activemine | relabel-random | new-hw | advice right |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, uses in s["relabel"].items():
        a = s["advice"][key]
        lines.append(
            f"| {key} | {100 * uses['relabel-activemine']:.2f} | {100 * uses['relabel-random']:.2f} | "
            f"{100 * uses['new-hw']:.2f} | {a['right']}/{a['seeds']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="fashion-mnist,digits")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument(
        "--noise", default="0.05,0.15", help="good annotators' error rates; the first also drives (a) and (b)"
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    noises = [float(v) for v in args.noise.split(",")]
    started = time.perf_counter()
    out: dict = {
        "consensus": [],
        "bad_annotator": [],
        "relabel": [],
        "advice": [],
        "_bad_by_noise": [],
        "details": [],
        "_dir": args.out,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.datasets.split(","):
        data = load(name)
        for seed in range(args.seeds):
            for noise in noises:
                run_one(name, data, seed, noise, noises[0], out, log_line)
    out["settings"] = {
        "command": "python benchmarks/annotators.py "
        + " ".join(
            f"--{k} {v}" for k, v in (("datasets", args.datasets), ("seeds", args.seeds), ("noise", args.noise))
        ),
        "sizes": SIZES,
        "annotators": "5, noise as given, the 5th also confuses the hardest pair 30%, overlap 10%, 2 per item",
        "seconds": time.perf_counter() - started,
        "machine": platform.platform(),
    }
    out.pop("_dir")
    out["summary"] = summarize(out)
    by_noise: dict = {}
    for r in out.pop("_bad_by_noise"):
        b = by_noise.setdefault(
            f"{r['dataset']} noise {r['noise']}", {"ranked_last": 0, "bad_flagged": 0, "good_flagged": 0, "seeds": 0}
        )
        b["ranked_last"] += r["rank"] == 1
        b["bad_flagged"] += r["flagged"]
        b["good_flagged"] += r["flagged_good"]
        b["seeds"] += 1
    out["summary"]["bad_annotator_by_noise"] = by_noise
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(out, indent=1))
    (args.out / "results.md").write_text(markdown(out))
    print(markdown(out))


if __name__ == "__main__":
    main()

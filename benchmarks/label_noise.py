"""Label-noise benchmark: detection quality of activemine.dirty vs cleanlab, and what pruning does to a test metric.

    python benchmarks/label_noise.py [--datasets fashion-mnist,digits] [--fmnist-train 10000] [--seeds 3]

For each seed, dataset, noise kind (``uniform``, ``ambiguous``, ``ambiguous-top``) and rate (5, 10, 20%):

1. flip labels of the training set with :func:`activemine.experiments.noise.inject_observed_noise`
   (the rate is the share of wrong labels within each observed class, as ``activemine experiment
   --noise`` reads it; ``ambiguous`` flips samples to their runner-up class with a chance that
   grows with their ambiguity, judged by out-of-fold probabilities of a model
   trained on the clean labels; ``ambiguous-top`` flips exactly the most
   ambiguous ones, the worst case);
2. compute out-of-fold probabilities on the noisy labels once (5 folds of
   :func:`activemine.dirty.fast_oof_model`, a small LightGBM);
3. run ``activemine.dirty.find_suspects`` and ``cleanlab.filter.find_label_issues``
   (defaults, ``n_jobs=1``) on those same probabilities: precision, recall
   and F1 against the planted flips, and the seconds each takes;
4. train the evaluation model (a mid-size LightGBM) on all noisy labels
   (``metric_unpruned``) and on the labels left after pruning
   (``metric_pruned``): for activemine the ``prune`` policy at
   ``max_dirty=0.02``, for cleanlab every issue it found removed.

The test metric is TPR at FPR = 1% for shirt (class 6) vs rest on
Fashion-MNIST and accuracy on digits. Fashion-MNIST uses a seeded subsample
of the training set and 50 PCA components to keep the run short. The seed
drives the noise, the folds and the evaluation model; the targets are read
off the means over seeds (one test set: its own sampling error does not
average out, so "not worse" allows two binomial standard errors of it).
cleanlab is a benchmark-only dependency (``pip install .[bench]``).

Writes benchmarks/results/label_noise/results.json (a list ``rows``) and results.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from activemine.data.datasets import load_dataset
from activemine.dirty import clean_labels, out_of_fold_proba
from activemine.dirty import estimate_dirty_share as estimate_noise_rate
from activemine.dirty import find_suspects as find_label_issues
from activemine.experiments.noise import inject_observed_noise
from activemine.metrics import tpr_at_fpr

OUT_DIR = Path(__file__).resolve().parent / "results" / "label_noise"
RATES = (0.05, 0.10, 0.20)
KINDS = ("uniform", "ambiguous", "ambiguous-top")
FOLDS = 5
MAX_DIRTY = 0.02
SHIRT = 6
EVAL_JOBS = 2  # threads of the evaluation model (--n-jobs); 1 on a loaded machine, where 2 threads wait on each other
SEED = 0  # the Fashion-MNIST subsample, PCA and the clean model that judges ambiguity


def eval_model(seed: int, n_jobs: int = 2):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(
        n_estimators=150,
        learning_rate=0.1,
        num_leaves=31,
        colsample_bytree=0.5,
        subsample=0.8,
        subsample_freq=1,
        n_jobs=n_jobs,
        verbose=-1,
        random_state=seed,
    )


def load(name: str, fmnist_train: int):
    """Train/test features and labels, the metric and its name."""
    d = load_dataset(name)
    if name == "digits":
        return d.X_train, d.y_train, d.X_test, d.y_test, "accuracy"
    from sklearn.decomposition import PCA

    rows = np.sort(np.random.default_rng(SEED).choice(d.y_train.size, size=fmnist_train, replace=False))
    pca = PCA(n_components=50, random_state=SEED).fit(d.X_train[rows])
    return pca.transform(d.X_train[rows]), d.y_train[rows], pca.transform(d.X_test), d.y_test, "tpr_at_fpr_1pct_shirt"


def test_metric(metric: str, X_train, y_train, X_test, y_test, seed: int) -> float:
    model = eval_model(seed, EVAL_JOBS).fit(X_train, y_train)
    if metric == "accuracy":
        return float((model.predict(X_test) == y_test).mean())
    col = list(model.classes_).index(SHIRT)
    return float(tpr_at_fpr(y_test == SHIRT, model.predict_proba(X_test)[:, col], 0.01, pos_label=True))


def allowed_drop(metric: str, value: float, y_test) -> float:
    """Two binomial standard errors of the metric: a drop smaller than this is within test-set noise."""
    n = (y_test == SHIRT).sum() if metric != "accuracy" else y_test.size
    return float(2.0 * np.sqrt(max(value * (1.0 - value), 1e-12) / n))


def detection(found: np.ndarray, flipped: np.ndarray) -> dict:
    tp = int((found & flipped).sum())
    precision = tp / max(int(found.sum()), 1)
    recall = tp / max(int(flipped.sum()), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_flagged": int(found.sum())}


def run_dataset(name: str, fmnist_train: int, seeds: list[int], kinds: list[str], log) -> list[dict]:
    from cleanlab.filter import find_label_issues as cleanlab_find_label_issues

    X, y, X_test, y_test, metric = load(name, fmnist_train)
    log(f"{name}: {y.size} train rows, {X.shape[1]} features, {y_test.size} test rows, metric {metric}")
    clean_proba = out_of_fold_proba("fast", X, y, FOLDS, seed=SEED)  # judges ambiguity for the ambiguous kinds
    rows = []
    for seed in seeds:
        metric_clean = test_metric(metric, X, y, X_test, y_test, seed)
        for kind in kinds:
            for rate in RATES:
                noisy, flipped = inject_observed_noise(y, rate, kind=kind, proba=clean_proba, random_state=seed)
                started = time.perf_counter()
                proba = out_of_fold_proba("fast", X, noisy, FOLDS, seed=seed)
                oof_seconds = time.perf_counter() - started
                unpruned = test_metric(metric, X, noisy, X_test, y_test, seed)
                base = {
                    "dataset": name,
                    "noise_kind": kind,
                    "noise_rate": rate,
                    "seed": seed,
                    "metric": metric,
                    "metric_unpruned": unpruned,
                    "metric_clean_labels": metric_clean,
                    "allowed_drop": allowed_drop(metric, unpruned, y_test),
                    "oof_seconds": oof_seconds,
                    "n_train": int(y.size),
                    "n_flipped": int(flipped.sum()),
                }

                started = time.perf_counter()
                issues = find_label_issues(noisy, proba)
                seconds = time.perf_counter() - started
                found = np.zeros(y.size, dtype=bool)
                found[issues] = True
                report = clean_labels(noisy, proba, policy="prune", max_dirty=MAX_DIRTY)
                keep = report.keep
                rows.append(
                    {
                        **base,
                        "method": "activemine",
                        **detection(found, flipped),
                        "seconds": seconds,
                        "metric_pruned": test_metric(metric, X[keep], noisy[keep], X_test, y_test, seed),
                        "n_dropped": int((~keep).sum()),
                        "dropped_precision": float(flipped[~keep].mean()) if (~keep).any() else None,
                        "estimated_noise_rate": estimate_noise_rate(noisy, proba),
                        "dirty_share_after": report.dirty_share_after,
                    }
                )

                started = time.perf_counter()
                found = np.asarray(cleanlab_find_label_issues(noisy, proba, n_jobs=1), dtype=bool)
                seconds = time.perf_counter() - started
                rows.append(
                    {
                        **base,
                        "method": "cleanlab",
                        **detection(found, flipped),
                        "seconds": seconds,
                        "metric_pruned": test_metric(metric, X[~found], noisy[~found], X_test, y_test, seed),
                        "n_dropped": int(found.sum()),
                        "dropped_precision": float(flipped[found].mean()) if found.any() else None,
                    }
                )
                a, c = rows[-2], rows[-1]
                log(
                    f"  seed {seed} {kind:13s} {rate:4.0%}  F1 activemine {a['f1']:.3f} cleanlab {c['f1']:.3f}  "
                    f"{metric} unpruned {unpruned:.4f} pruned {a['metric_pruned']:.4f} / {c['metric_pruned']:.4f}  "
                    f"dropped {a['n_dropped']} / {c['n_dropped']}"
                )
    return rows


SUMMED = ("precision", "recall", "f1", "seconds", "n_dropped", "metric_unpruned", "metric_pruned", "allowed_drop")


def summarize(rows: list[dict]) -> list[dict]:
    """Means (and standard deviations, ``*_std``) over seeds per dataset, noise kind, rate and method."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["noise_kind"], r["noise_rate"], r["method"]), []).append(r)
    out = []
    for (dataset, kind, rate, method), rs in groups.items():
        row = {"dataset": dataset, "noise_kind": kind, "noise_rate": rate, "method": method, "seeds": len(rs)}
        for k in SUMMED:
            values = np.array([r[k] for r in rs], dtype=np.float64)
            row[k] = float(values.mean())
            row[f"{k}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        row["metric_delta"] = row["metric_pruned"] - row["metric_unpruned"]
        out.append(row)
    return out


def check_targets(summary: list[dict]) -> list[dict]:
    """One line per (dataset, kind, rate) of the means over seeds (:func:`summarize`): F1 within 0.02 of
    cleanlab's; pruning within noise, and better at 10% and 20%."""
    out = []
    for a in (r for r in summary if r["method"] == "activemine"):
        c = next(
            r
            for r in summary
            if r["method"] == "cleanlab" and all(r[k] == a[k] for k in ("dataset", "noise_kind", "noise_rate"))
        )
        delta = a["metric_delta"]
        out.append(
            {
                "dataset": a["dataset"],
                "noise_kind": a["noise_kind"],
                "noise_rate": a["noise_rate"],
                "f1_gap": a["f1"] - c["f1"],
                "f1_ok": a["f1"] >= c["f1"] - 0.02,
                "metric_delta": delta,
                "not_worse_ok": delta >= -a["allowed_drop"],
                "improves": delta > 0,
                "improves_required": a["noise_rate"] >= 0.10,
            }
        )
    return out


def write_markdown(summary: list[dict], targets: list[dict], settings: dict, path: Path) -> None:
    lines = [
        "# Label-noise benchmark",
        "",
        f"Command: `{settings['command']}`  ",
        f"Machine: {settings['machine']}; total {settings['total_seconds']:.0f} s.",
        "",
        "Out-of-fold probabilities: 5 folds of `activemine.dirty.fast_oof_model` (a small LightGBM, 40 trees, "
        "one thread), computed once per noisy set and given to both detectors. Evaluation model: LightGBM, "
        "150 trees. Fashion-MNIST: a seeded subsample of "
        f"{settings['fmnist_train']} training images, 50 PCA components, the full 10,000-image test set; "
        "metric TPR at FPR = 1% for shirt (class 6) vs rest. Digits: scikit-learn's digits, the fixed 75/25 split "
        f"of `activemine.data.datasets`, metric accuracy. Seeds {settings['seeds']} (noise draw, folds, evaluation "
        "model); every figure is the mean over them, +/- the standard deviation where shown.",
        "",
        "activemine: `find_label_issues` (detection) and `clean_labels(policy='prune', max_dirty=0.02)` "
        "(pruning). cleanlab: `cleanlab.filter.find_label_issues` with its defaults "
        "(`filter_by='prune_by_noise_rate'`), `n_jobs=1`; pruning removes every issue it found. "
        "`seconds` is the detector alone on the given probabilities.",
        "",
        "| dataset | noise | rate | method | precision | recall | F1 | seconds | dropped | metric unpruned | metric pruned |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary:
        lines.append(
            f"| {r['dataset']} | {r['noise_kind']} | {r['noise_rate']:.0%} | {r['method']} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['f1']:.3f} +/- {r['f1_std']:.3f} | {r['seconds']:.3f} | {r['n_dropped']:.0f} | "
            f"{r['metric_unpruned']:.4f} | {r['metric_pruned']:.4f} +/- {r['metric_pruned_std']:.4f} |"
        )
    lines += [
        "",
        "## Targets",
        "",
        "F1 ok: activemine's mean F1 >= cleanlab's - 0.02. Not worse: mean pruned - mean unpruned >= -2 binomial "
        "standard errors of the test metric (`allowed_drop`). Improves: pruned > unpruned (required at 10% and 20%).",
        "",
        "| dataset | noise | rate | F1 gap | F1 ok | metric delta | not worse | improves |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    for t in targets:
        imp = (
            ("yes" if t["improves"] else "**no**")
            if t["improves_required"]
            else ("yes" if t["improves"] else "no (not required)")
        )
        lines.append(
            f"| {t['dataset']} | {t['noise_kind']} | {t['noise_rate']:.0%} | {t['f1_gap']:+.3f} | "
            f"{'yes' if t['f1_ok'] else '**no**'} | {t['metric_delta']:+.4f} | {'yes' if t['not_worse_ok'] else '**no**'} | {imp} |"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="fashion-mnist,digits")
    parser.add_argument("--fmnist-train", type=int, default=10_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--n-jobs", type=int, default=2, help="threads of the evaluation model")
    args = parser.parse_args()
    global EVAL_JOBS
    EVAL_JOBS = args.n_jobs
    started = time.perf_counter()
    seeds, kinds = list(range(args.seeds)), args.kinds.split(",")
    rows = []
    for name in args.datasets.split(","):
        rows += run_dataset(name, args.fmnist_train, seeds, kinds, log=lambda s: print(s, flush=True))
    summary = summarize(rows)
    targets = check_targets(summary)
    settings = {
        "command": f"python benchmarks/label_noise.py --datasets {args.datasets} --fmnist-train {args.fmnist_train} "
        f"--seeds {args.seeds} --kinds {args.kinds} --n-jobs {args.n_jobs}",
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "fmnist_train": args.fmnist_train,
        "folds": FOLDS,
        "max_dirty": MAX_DIRTY,
        "seeds": seeds,
        "total_seconds": time.perf_counter() - started,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    # temp file + rename, so an interrupted run never leaves half a result
    tmp = args.out / ".results.json.tmp"
    tmp.write_text(json.dumps({"settings": settings, "rows": rows, "summary": summary, "targets": targets}, indent=2))
    tmp.replace(args.out / "results.json")
    tmp = args.out / ".results.md.tmp"
    write_markdown(summary, targets, settings, tmp)
    tmp.replace(args.out / "results.md")
    for t in targets:
        print(
            f"{t['dataset']:13s} {t['noise_kind']:13s} {t['noise_rate']:4.0%}  F1 gap {t['f1_gap']:+.3f} "
            f"{'ok' if t['f1_ok'] else 'MISS'}  metric delta {t['metric_delta']:+.4f} "
            f"{'ok' if t['not_worse_ok'] else 'WORSE'}{'' if t['improves'] or not t['improves_required'] else ' NO-GAIN'}"
        )
    print(f"wrote {args.out / 'results.json'} and results.md in {settings['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()

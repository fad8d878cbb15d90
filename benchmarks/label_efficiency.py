"""Label efficiency as a matrix: datasets x label noise x how many labeled positives, one-shot, 5 seeds.

Cells (24 by default):

* **datasets**, all offline: ``fashion`` (Fashion-MNIST shirt-vs-rest, images averaged over 4x4 pixels to
  7x7 = 49 features so the matrix fits its compute budget, a seeded 8,000-row subsample of the official
  training set and the official 10,000 test images), ``digits`` (scikit-learn's digits, 8-vs-rest),
  ``rare`` (a synthetic tabular set with a 1% positive class: scikit-learn's ``make_classification``, 80,000
  rows, 40 features of which 12 informative and 8 redundant, 3 clusters per class, ``class_sep=1.0``, seed 2026;
  60,000 train and 20,000 test) and ``breast-cancer`` (scikit-learn's Wisconsin breast cancer set, malignant
  against benign, a seeded stratified 75/25 split);
* **labels**: ``clean``; ``noisy`` (``--noise 0.1 --noise-kind ambiguous``: 10% of the labels of each observed
  class wrong, the most ambiguous most likely); ``class-noise`` (class-conditional: the noise matrix
  ``1:0.2,0:0.002``, annotators miss a fifth of the positives and call 0.2% of the negatives positive,
  ambiguity-weighted);
* **positives**: ``enough`` (the dataset's own class balance) and ``few``: positives of the training set are
  subsampled (seeded) so that L holds about 8 of them (6 on the two small sets), and placed among the training
  rows so that no seed's L holds more than 10; each run's count is in its ``results.json``
  (``reference.initial[].labeled_class_counts``). The test set is never subsampled.

Runs ``random, lc, qbc, hw`` and HW's variants ``hw-adapt-off`` (no difficulty step: HW as it was before it
could leave the boundary) and ``hw-dirty-off`` (no dirty-data step at all), with the ``initial`` (L only)
and ``full`` (L + U) references. LightGBM (the default model), TPR at 1% FPR, one evaluation model per run.

Each cell is an ``activemine experiment`` run written by :func:`activemine.experiments.runner.write_outputs` to
``OUT/{dataset}-{labels}-{positives}/`` (``results.json``, ``results.md``, ``roc.png``); ``summary.md`` and
``targets.json`` go to ``OUT``. The targets per cell: ``hw >= max(random, initial) - 0.5``; on clean labels
``hw >= lc - 0.3``; wherever ``lc < random``, ``hw >= lc + 2`` (points of TPR, means over seeds).

    python benchmarks/label_efficiency.py                 # the whole matrix (about 45 minutes as two processes on 2 busy cores)
    python benchmarks/label_efficiency.py --cells rare-noisy-few,digits-clean-enough --seeds 2 --out /tmp/le
    python benchmarks/label_efficiency.py --report-only   # rebuild summary.md and targets.json from disk
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from activemine.experiments.runner import ExperimentConfig, run_experiment, write_outputs

STRATEGIES = ("random", "lc", "qbc", "hw", "hw-adapt-off", "hw-dirty-off")
VARIANTS = {
    "hw-adapt-off": ("hw", {"adapt_difficulty": False}),
    "hw-dirty-off": ("hw", {"dirty_policy": "off", "adapt_difficulty": False}),
}
LABELS = {
    "clean": {},
    "noisy": {"noise": 0.10, "noise_kind": "ambiguous"},
    "class-noise": {"noise_matrix": "1:0.2,0:0.002", "noise_kind": "ambiguous"},
}
NOISY = LABELS["noisy"]  # the noisy setting, shared with benchmarks/hw_cost.py
#: per dataset: (L, U, B) and, for the ``few`` cells, the share of positives kept in the training set
SIZES = {
    "fashion": {"enough": (500, 2_500, 250), "few": (500, 2_500, 250)},
    "rare": {"enough": (2_000, 5_000, 250), "few": (1_000, 5_000, 250)},
    "digits": {"enough": (300, 900, 100), "few": (300, 900, 100)},
    "breast-cancer": {"enough": (100, 250, 50), "few": (100, 180, 40)},
}
FEW_LABELED_POSITIVES = {"fashion": 8, "rare": 8, "digits": 6, "breast-cancer": 6}
FEW_CAP = 10  # no seed's labeled set holds more positives than this in a ``few`` cell
DATASETS = tuple(SIZES)
CELLS = tuple(f"{d}-{label}-{pos}" for d in DATASETS for label in LABELS for pos in ("enough", "few"))


def _raw(dataset: str):
    """``(X_train, y_train, X_test, y_test)`` with y 1 for the positive class."""
    if dataset == "fashion":
        from activemine.data.datasets import load_dataset

        ds = load_dataset("fashion-mnist")
        keep = np.sort(np.random.default_rng(2026).choice(ds.y_train.size, 8_000, replace=False))
        pool = lambda X: X.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4)).reshape(-1, 49)  # noqa: E731
        X_tr, X_te = pool(ds.X_train[keep]), pool(ds.X_test)
        return X_tr, (ds.y_train[keep] == 6).astype(int), X_te, (ds.y_test == 6).astype(int)
    if dataset == "digits":
        from activemine.data.datasets import load_dataset

        ds = load_dataset("digits")
        return ds.X_train, (ds.y_train == 8).astype(int), ds.X_test, (ds.y_test == 8).astype(int)
    if dataset == "rare":
        from sklearn.datasets import make_classification

        X, y = make_classification(
            n_samples=80_000,
            n_features=40,
            n_informative=12,
            n_redundant=8,
            n_clusters_per_class=3,
            weights=[0.99],
            class_sep=1.0,
            flip_y=0.0,
            random_state=2026,
        )
        X = X.astype(np.float32)
        return X[:60_000], y[:60_000], X[60_000:], y[60_000:]
    if dataset == "breast-cancer":
        from sklearn.datasets import load_breast_cancer

        X, y = load_breast_cancer(return_X_y=True)
        y = (y == 0).astype(int)  # scikit-learn codes malignant as 0
        rng = np.random.default_rng(0)
        test = np.concatenate(
            [rng.permutation(np.flatnonzero(y == c))[: int(round(0.25 * (y == c).sum()))] for c in (0, 1)]
        )
        is_test = np.zeros(y.size, dtype=bool)
        is_test[test] = True
        return X[~is_test].astype(np.float32), y[~is_test], X[is_test].astype(np.float32), y[is_test]
    raise SystemExit(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def _place_positives(n: int, k: int, L: int, seeds: int, rng: np.random.Generator) -> np.ndarray:
    """Positions ``(k,)`` among ``n`` training rows for the positives such that the labeled set of every seed
    (the first ``L`` of ``default_rng([seed, 7]).permutation(n)``, as :class:`activemine.experiments.seeds._Seed` draws
    it) holds at most FEW_CAP of them: a seeded uniform draw, with each excess positive moved to a row in no
    seed's labeled set."""
    labeled = [np.random.default_rng([seed, 7]).permutation(n)[:L] for seed in range(seeds)]
    in_any = np.zeros(n, dtype=bool)
    for rows in labeled:
        in_any[rows] = True
    positions = rng.choice(n, size=k, replace=False)
    for rows in labeled:
        inside = np.flatnonzero(np.isin(positions, rows))
        if inside.size > FEW_CAP:
            free = np.setdiff1d(np.flatnonzero(~in_any), positions)
            move = rng.choice(inside, size=inside.size - FEW_CAP, replace=False)
            positions[move] = rng.choice(free, size=move.size, replace=False)
    return positions


def write_cell_dataset(dataset: str, positives: str, folder: Path, *, name: str | None = None, seeds: int = 5) -> Path:
    """The dataset as Parquet (features f000.., label neg/pos, split train/test); for ``few``, positives of the
    training set subsampled (seed 2026) so that L holds about FEW_LABELED_POSITIVES of them, and placed so that
    no seed's L holds more than FEW_CAP (:func:`_place_positives`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    X_tr, y_tr, X_te, y_te = _raw(dataset)
    if positives == "few":
        L = SIZES[dataset]["few"][0]
        neg, pos = np.flatnonzero(y_tr == 0), np.flatnonzero(y_tr == 1)
        # a share s of positives in the training set puts s * L of them in L: s = k / L, so k_pos = s * n / (1 - s)
        share = FEW_LABELED_POSITIVES[dataset] / L
        n_pos = int(round(share * neg.size / (1 - share)))
        rng = np.random.default_rng(2026)
        pos = rng.choice(pos, size=min(n_pos, pos.size), replace=False)
        n = neg.size + pos.size
        order = np.empty(n, dtype=np.int64)
        at = np.zeros(n, dtype=bool)
        at[_place_positives(n, pos.size, L, seeds, rng)] = True
        order[at], order[~at] = pos, neg
        X_tr, y_tr = X_tr[order], y_tr[order]
    X = np.concatenate([X_tr, X_te]).astype(np.float32)
    y = np.concatenate([y_tr, y_te])
    cols = {f"f{j:03d}": X[:, j] for j in range(X.shape[1])}
    cols["label"] = np.where(y == 1, "pos", "neg")
    cols["split"] = np.where(np.arange(y.size) < y_tr.size, "train", "test")
    path = folder / (name or f"{dataset}-{positives}.parquet")
    pq.write_table(pa.table(cols), path)
    return path


def write_rare_dataset(path: Path) -> Path:
    """The synthetic rare set (``enough`` positives) as Parquet with its own split column."""
    return write_cell_dataset("rare", "enough", Path(path).parent, name=Path(path).name)


def _mean(summary: dict, name: str) -> float | None:
    return 100 * summary[name]["tpr_at_fpr"]["mean"] if name in summary else None


def check_targets(results: dict[str, dict]) -> dict:
    """Per cell, the targets on the means (TPR points), each with its figures and whether it holds."""
    out = {}
    for cell, r in results.items():
        s = r["summary"]
        hw, lc, rnd, init = (_mean(s, n) for n in ("hw", "lc", "random", "reference:initial"))
        if hw is None:
            continue
        floor = max(v for v in (rnd, init) if v is not None)
        out[f"{cell}: hw >= max(random, initial) - 0.5"] = {
            "hw": hw,
            "random": rnd,
            "initial": init,
            "holds": hw >= floor - 0.5,
        }
        if "-clean-" in cell and lc is not None:
            out[f"{cell}: hw >= lc - 0.3"] = {"hw": hw, "lc": lc, "holds": hw >= lc - 0.3}
        if lc is not None and rnd is not None and lc < rnd:
            out[f"{cell}: hw >= lc + 2 (lc < random)"] = {"hw": hw, "lc": lc, "random": rnd, "holds": hw >= lc + 2.0}
    return out


def summary_table(results: dict[str, dict]) -> str:
    """One row per cell: mean TPR at 1% FPR of every run, the labeled positives per seed, HW's decisions."""
    runs = list(STRATEGIES) + ["reference:initial", "reference:full"]
    head = "| cell | L pos | " + " | ".join(r.replace("reference:", "") for r in runs) + " | hw band | hw fits |"
    lines = [head, "|---|---|" + "---:|" * len(runs) + "---|---:|"]
    for cell, r in results.items():
        s = r["summary"]
        pos = [str(i["labeled_class_counts"].get("pos", 0)) for i in r["reference"]["initial"]]
        figures = [f"{_mean(s, n):.2f}" if n in s else "" for n in runs]
        hw_runs = [x for x in r["runs"] if x["strategy"] == "hw"]
        band = sum(1 for x in hw_runs if x.get("difficulty", {}).get("decision") == "band")
        fits = np.mean([x["model_fits"] for x in hw_runs]) if hw_runs else float("nan")
        lines.append(
            f"| {cell} | {','.join(pos)} | " + " | ".join(figures) + f" | {band}/{len(hw_runs)} | {fits:.0f} |"
        )
    return "\n".join(lines) + "\n"


def noise_table(results: dict[str, dict]) -> str:
    """Per noisy cell: mean over seeds of the wrong share among the training rows labeled each class."""
    head = (
        "| cell | wrong among positive labels | wrong among negative labels | positives flipped | negatives flipped |"
    )
    lines = [head, "|---|---:|---:|---:|---:|"]
    for cell, r in results.items():
        flips = r.get("noise_flips") or []
        if not flips:
            continue
        neg, pos = r["classes"]
        share = {c: np.mean([f["observed"]["train"][c]["wrong_share"] for f in flips]) for c in (neg, pos)}
        flipped = {c: np.mean([f["train"][c]["flipped"] for f in flips]) for c in (neg, pos)}
        lines.append(
            f"| {cell} | {100 * share[pos]:.1f}% | {100 * share[neg]:.2f}% | {flipped[pos]:.0f} | {flipped[neg]:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cells", default=",".join(CELLS), help=f"comma-separated, among {', '.join(CELLS)}")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--n-jobs", type=int, default=1, help="threads per model fit")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "label_efficiency")
    parser.add_argument("--keep-old", action="store_true", help="keep what OUT holds (default: the current run only)")
    parser.add_argument("--report-only", action="store_true", help="only rebuild targets.json and summary.md")
    args = parser.parse_args()
    cells = [c for c in args.cells.split(",") if c]
    unknown = sorted(set(cells) - set(CELLS))
    if unknown:
        raise SystemExit(f"unknown cells {unknown}; expected names among {list(CELLS)}")
    if not args.report_only and not args.keep_old and args.out.exists():
        shutil.rmtree(args.out)  # the current run only
    args.out.mkdir(parents=True, exist_ok=True)
    started_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[tuple[str, str], Path] = {}
        for cell in [] if args.report_only else cells:
            dataset, rest = next((d, cell[len(d) + 1 :]) for d in DATASETS if cell.startswith(d + "-"))
            labels, positives = rest.rsplit("-", 1)
            if (dataset, positives) not in files:
                files[dataset, positives] = write_cell_dataset(dataset, positives, Path(tmp), seeds=args.seeds)
            L, U, B = SIZES[dataset][positives]
            config = ExperimentConfig(
                dataset=str(files[dataset, positives]),
                task="binary:pos",
                split_col="split",
                labeled_size=L,
                pool_size=U,
                budget=B,
                strategies=tuple(args.strategies.split(",")),
                seeds=tuple(range(args.seeds)),
                full_seeds=args.seeds,
                eval_repeats=1,
                variants=VARIANTS,
                n_jobs=args.n_jobs,
                **LABELS[labels],
            )
            started = time.perf_counter()
            result = run_experiment(
                config,
                progress=lambda what, t0=started, n=cell: print(
                    f"[{n} {time.perf_counter() - t0:6.0f} s] {what}", flush=True
                ),
            )
            result["wall_seconds"] = time.perf_counter() - started
            result["config"]["dataset"] = f"{dataset} ({positives} positives; see benchmarks/label_efficiency.py)"
            write_outputs(result, args.out / cell)
            print(f"[{cell}] done in {result['wall_seconds']:.0f} s", flush=True)
    results = {}
    for cell in CELLS:
        done = args.out / cell / "results.json"
        if done.exists():
            results[cell] = json.loads(done.read_text())
    targets = check_targets(results)
    (args.out / "targets.json").write_text(json.dumps(targets, indent=1))
    missed = [k for k, v in targets.items() if not v["holds"]]
    table = (
        "TPR at 1% FPR (%), mean over seeds; L pos: labeled positives per seed; hw band: seeds in which HW left "
        "the boundary; hw fits: HW's model fits to select.\n\n"
        + summary_table(results)
        + "\nLabel noise as simulated (share of wrong labels among the training rows labeled each class):\n\n"
        + noise_table(results)
        + f"\nTargets: {len(targets) - len(missed)} of {len(targets)} hold. Missed:\n\n"
        + "".join(
            f"- {k}: {json.dumps({a: round(b, 2) if isinstance(b, float) else b for a, b in targets[k].items()})}\n"
            for k in missed
        )
    )
    (args.out / "summary.md").write_text(table)
    print(table)
    print(f"total {time.perf_counter() - started_all:.0f} s", flush=True)


if __name__ == "__main__":
    main()

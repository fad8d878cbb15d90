"""Deep image models: HW, uncertainty sampling and QBC with a small CNN on Fashion-MNIST image files.

Fashion-MNIST (Debian's ``dataset-fashion-mnist``) is written once as PNG files
under ``benchmarks/.data/fashion-mnist-png/`` (``train/<class>/<index>.png`` for the
first ``--universe`` training images, ``test/<class>/<index>.png`` for the 10,000 test
images) and read back from the files for every run, so the image path is exercised.
Task: shirt against the rest (10% positives). Per seed a seeded split of the
universe gives L (``--labeled``) and the pool U (``--pool``); B = ``--budget``.

Settings: ``clean`` and ``noisy`` (10% ambiguity-weighted noise on every training
label, the flips drawn from an out-of-fold LightGBM of the clean labels, as in
``activemine experiment --noise 0.1 --noise-kind ambiguous``).

Strategies (model ``cnn``: :class:`activemine.deep.TorchClassifier` with the default
small CNN; every selection goes through :func:`activemine.engines.mining.mine` on the
network's probabilities):

* ``random``, ``lc``, ``margin``, ``entropy``: one network trained on L;
* ``qbc``: two networks on L, seeds apart (ranked vote entropy);
  ``qbc-dropout``: the one network's 3 dropout passes (BALD);
* ``hw``: HW with its defaults (``weak_trees="all"``: least confidence of the network trained
  on all labels) selecting from the network's probabilities, and HW's dirty-data step on
  L + B before the final network (its fits and seconds are in ``details.json``);
  ``hw-no-dirty``: the same batch without the dirty-data step; ``hw-weak1``: the report's
  weak model, the network's epoch-1 snapshot, ranks the pool, with the dirty-data step
  (benchmarks/deep_weak_model.py compares snapshots of epochs 1, 2 and 4);
* ``hw-gce``: HW's selection with networks trained by generalized cross-entropy and
  no dirty-data step; ``hw-gce-dirty``: both;
* ``full``: L + U.

Model ``lightgbm`` (the default LightGBM on the 784 pixels): ``random`` (the same
L + B rows as the CNN's random run) and ``full``.
Every run's final model is trained on L + B and scored on the 10,000 test images:
TPR at 1% FPR and AUC. ``select_seconds``: training the selecting models, scoring
U and selecting; ``fit_seconds``: the final model (with the dirty-data step).

Writes ``results.json`` (``{"runs": [...]}``), ``details.json`` (dirty-data step,
weak against strong) and ``summary.md`` under ``--out``.

    nice -n 5 python benchmarks/deep_images.py --seeds 0,1,2 \\
        --out benchmarks/results/deep_images > /tmp/deep_images.log 2>&1

or the two settings side by side (one process each), then joined::

    nice -n 5 python benchmarks/deep_images.py --settings clean --out /tmp/deep_images/clean &
    nice -n 5 python benchmarks/deep_images.py --settings noisy --out /tmp/deep_images/noisy
    python benchmarks/deep_images.py --merge /tmp/deep_images/clean /tmp/deep_images/noisy \\
        --out benchmarks/results/deep_images
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from activemine.data import LabeledSet, PoolChunk
from activemine.data.datasets import load_dataset
from activemine.engines.mining import mine
from activemine.experiments.noise import inject_label_noise
from activemine.metrics import roc_auc, tpr_at_fpr
from activemine.models import make_model, predict_proba_aligned
from activemine.progress import log_line
from activemine.selection.strategies import make_strategy

POSITIVE = 6  # shirt
DATA = Path(__file__).resolve().parent / ".data" / "fashion-mnist-png"
CNN_STRATEGIES = (
    "random",
    "lc",
    "margin",
    "entropy",
    "qbc",
    "qbc-dropout",
    "hw",
    "hw-no-dirty",
    "hw-weak1",
    "hw-gce",
    "hw-gce-dirty",
    "full",
)
LGBM_STRATEGIES = ("random", "full")


# -- image files ---------------------------------------------------------------------------------
def write_pngs(universe: int, root: Path = DATA) -> Path:
    """Fashion-MNIST as PNG files in class folders (written once; a finished folder has ``done``)."""
    if (root / "done").exists() and json.loads((root / "done").read_text())["universe"] >= universe:
        return root
    from PIL import Image

    d = load_dataset("fashion-mnist")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root.parent, prefix=".png-"))
    for split, X, y in (("train", d.X_train[:universe], d.y_train[:universe]), ("test", d.X_test, d.y_test)):
        pixels = np.clip(np.rint(np.asarray(X, dtype=np.float64) * (255.0 if X.max() <= 1.0 else 1.0)), 0, 255)
        for i, (row, label) in enumerate(zip(pixels.astype(np.uint8), y)):
            folder = tmp / split / str(int(label))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(row.reshape(28, 28), mode="L").save(folder / f"{i:05d}.png")
    (tmp / "done").write_text(json.dumps({"universe": universe}))
    if root.exists():
        import shutil

        shutil.rmtree(root)
    os.replace(tmp, root)
    return root


def read_pngs(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A class-folder tree of PNG files -> ``X (n, 784)`` float32 in [0, 1] and labels ``(n,)``, in file-index
    order, read by activemine's image source (:mod:`activemine.data.images`, as ``--labeled DIR`` reads them)."""
    from activemine.data.images import ImageSpec, decode_images, list_labeled_images

    paths, codes, names = list_labeled_images(folder)
    X = decode_images(paths, ImageSpec(size=(28, 28), mode="L", root=str(folder), n_jobs=2), where=str(folder))
    order = np.argsort([int(Path(p).stem) for p in paths.to_pylist()], kind="stable")
    y = np.array([int(names[c]) for c in codes])
    return X[order], y[order]


def read_pngs_pillow(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """The same with Pillow directly (the loading step is pluggable: ``--loader``)."""
    from PIL import Image

    files = sorted(folder.glob("*/*.png"), key=lambda p: int(p.stem))
    X = np.empty((len(files), 784), dtype=np.float32)
    y = np.empty(len(files), dtype=np.int64)
    for i, path in enumerate(files):
        with Image.open(path) as im:
            X[i] = np.asarray(im.convert("L"), dtype=np.float32).reshape(-1) / 255.0
        y[i] = int(path.parent.name)
    return X, y


LOADERS = {"activemine": read_pngs, "pillow": read_pngs_pillow}


# -- models --------------------------------------------------------------------------------------
def cnn(args, seed: int, **params):
    from activemine.deep import TorchClassifier, small_cnn

    return TorchClassifier(
        functools.partial(small_cnn, width=args.width),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        schedule=args.schedule,
        augment=args.augment,
        n_jobs=args.n_jobs,
        random_state=seed,
        predict_batch_size=256,
        **params,
    )


def evaluate(model, X_test, y_test) -> tuple[float, float]:
    p = predict_proba_aligned(model, X_test, [0, 1])[:, 1]
    return float(100 * tpr_at_fpr(y_test, p, 0.01)), float(roc_auc(y_test, p))


def select(name: str, labeled: LabeledSet, pool_ids, budget: int, seed: int, **columns):
    """The batch (pool ids) that strategy ``name`` selects from precomputed columns of U."""
    strategy = make_strategy(
        name, random_state=seed, classes=[0, 1], **({"dirty_policy": "off"} if name == "hw" else {})
    )
    batch = mine(
        strategy, PoolChunk(pool_ids, **columns), budget=budget, labeled=LabeledSet(None, labeled.y, labeled.ids)
    )
    return np.asarray(batch.ids)


def run_seed(args, setting: str, seed: int, X, y_obs, y_true, X_test, y_test, details: list) -> list[dict]:
    rng = np.random.default_rng([seed, 7])
    order = rng.permutation(y_obs.size)
    L = np.sort(order[: args.labeled])
    U = np.sort(order[args.labeled : args.labeled + args.pool])
    labeled = LabeledSet(X[L], y_obs[L], L)
    runs, fits = [], {}

    def record(strategy, model, rows, select_s, fit_s, tpr, auc):
        runs.append(
            dict(
                setting=setting,
                seed=seed,
                strategy=strategy,
                model=model,
                n_labeled=int(rows.size),
                tpr_at_1pct_fpr=round(tpr, 3),
                auc=round(auc, 5),
                select_seconds=round(select_s, 2),
                fit_seconds=round(fit_s, 2),
            )
        )
        log_line(f"{setting} seed {seed} {model} {strategy}: TPR {tpr:.2f} AUC {auc:.4f} ({rows.size} labels)")

    def final(strategy, batch, select_s, *, loss="ce", dirty=False, key=None):
        rows = np.concatenate([L, batch])
        cache_key = (loss, dirty, hashlib.sha1(np.sort(rows).tobytes()).hexdigest())
        if cache_key not in fits:
            start = time.perf_counter()
            Xr, yr = X[rows], y_obs[rows]
            model = cnn(args, seed, loss=loss)
            if dirty:
                hw = make_strategy("hw", model=cnn(args, seed, loss=loss), random_state=seed, n_jobs=args.n_jobs)
                step = hw.make_dirty_filter()
                keep = step(Xr, yr, random_state=seed)
                report = step.report_
                if report is not None and report.soft_targets is not None:
                    from activemine.dirty.soft import fit_soft

                    model = fit_soft(model, Xr[keep], report.soft_targets[keep], np.unique(yr), random_state=seed)
                else:
                    model.fit(Xr[keep], yr[keep])
                details.append(
                    dict(
                        setting=setting,
                        seed=seed,
                        strategy=strategy,
                        dirty_fits=int(step.n_fits_),
                        dirty_seconds=round(float(step.seconds_), 2),
                        dropped=int((~keep).sum()),
                        dropped_wrong=int((y_obs[rows][~keep] != y_true[rows][~keep]).sum()),
                        softened=bool(report is not None and report.soft_targets is not None),
                        wrong_labels=int((y_obs[rows] != y_true[rows]).sum()),
                    )
                )
            else:
                model.fit(Xr, yr)
            fits[cache_key] = (time.perf_counter() - start, *evaluate(model, X_test, y_test))
        fit_s, tpr, auc = fits[cache_key]
        record(strategy, "cnn", rows, select_s, fit_s, tpr, auc)

    # the network trained on L, its epoch-1 snapshot and its dropout passes serve random, lc, margin, entropy, hw
    start = time.perf_counter()
    strong = cnn(args, seed, snapshot_epochs=(1,)).fit(X[L], y_obs[L])
    proba = strong.predict_proba(X[U])
    weak = strong.snapshot(1).predict_proba(X[U])
    base_s = time.perf_counter() - start
    t0 = time.perf_counter()
    passes = strong.predict_proba_passes(X[U], 3, random_state=seed)
    passes_s = time.perf_counter() - t0
    tpr_l, auc_l = evaluate(strong, X_test, y_test)
    tpr_w, auc_w = evaluate(strong.snapshot(1), X_test, y_test)
    details.append(
        dict(
            setting=setting,
            seed=seed,
            what="models on L",
            strong_tpr=tpr_l,
            strong_auc=auc_l,
            weak_tpr=tpr_w,
            weak_auc=auc_w,
        )
    )
    batches = {}
    for name, strat, columns, extra in (
        ("random", "random", {"proba": proba}, 0.0),
        ("lc", "lc", {"proba": proba}, 0.0),
        ("margin", "sm", {"proba": proba}, 0.0),
        ("entropy", "entropy", {"proba": proba}, 0.0),
        ("hw", "hw", {"proba": proba}, 0.0),
        ("hw-weak1", "hw", {"proba": proba, "weak_proba": weak}, 0.0),
        ("qbc-dropout", "qbc-bald", {"member_proba": passes}, passes_s),
    ):
        t0 = time.perf_counter()
        if strat == "qbc-bald":
            s = make_strategy("qbc", random_state=seed, classes=[0, 1], disagreement="bald", committee_size=3)
            b = mine(s, PoolChunk(U, **columns), budget=args.budget, labeled=LabeledSet(None, labeled.y, labeled.ids))
            batches[name] = (np.asarray(b.ids), base_s + extra + time.perf_counter() - t0)
        else:
            charged = 0.0 if name == "random" else base_s  # a random batch needs no model
            batches[name] = (
                select(strat, labeled, U, args.budget, seed, **columns),
                charged + time.perf_counter() - t0,
            )
    # two networks, seeds apart (the DAS committee)
    t0 = time.perf_counter()
    other = cnn(args, seed + 1000).fit(X[L], y_obs[L])
    member_proba = np.stack([proba, other.predict_proba(X[U])])
    batches["qbc"] = (
        select("qbc", labeled, U, args.budget, seed, member_proba=member_proba),
        base_s + time.perf_counter() - t0,
    )
    # noise-robust training: the selecting network and the final one trained by generalized cross-entropy
    t0 = time.perf_counter()
    gce = cnn(args, seed, loss="gce").fit(X[L], y_obs[L])
    batches["hw-gce"] = (
        select("hw", labeled, U, args.budget, seed, proba=gce.predict_proba(X[U])),
        time.perf_counter() - t0,
    )
    for name in ("random", "lc", "margin", "entropy", "qbc", "qbc-dropout"):
        final(name, *batches[name])
    final("hw", *batches["hw"], dirty=True)
    final("hw-no-dirty", *batches["hw"])
    final("hw-weak1", *batches["hw-weak1"], dirty=True)
    final("hw-gce", *batches["hw-gce"], loss="gce")
    final("hw-gce-dirty", *batches["hw-gce"], loss="gce", dirty=True)
    if seed in args.full_seeds:
        final("full", U, 0.0)
    # LightGBM on the pixels: the same random rows, and everything
    for name in LGBM_STRATEGIES:
        if name == "full" and seed not in args.full_seeds:
            continue
        t0 = time.perf_counter()
        if name == "random":
            batch = batches["random"][0]
        elif name == "lc":
            lgbm = make_model("lightgbm", random_state=seed, n_jobs=args.n_jobs).fit(X[L], y_obs[L])
            batch = select("lc", labeled, U, args.budget, seed, proba=predict_proba_aligned(lgbm, X[U], [0, 1]))
        else:
            batch = U
        select_s = time.perf_counter() - t0 if name == "lc" else 0.0
        rows = np.concatenate([L, batch])
        t0 = time.perf_counter()
        model = make_model("lightgbm", random_state=seed, n_jobs=args.n_jobs).fit(X[rows], y_obs[rows])
        record(name, "lightgbm", rows, select_s, time.perf_counter() - t0, *evaluate(model, X_test, y_test))
    return runs


def summarize(runs: list[dict]) -> str:
    lines = [
        "| setting | model | strategy | TPR at 1% FPR | AUC | labels | select s | fit s | seeds |",
        "|" + "---|" * 9,
    ]
    keys = sorted({(r["setting"], r["model"], r["strategy"]) for r in runs}, key=lambda k: (k[0], k[1], k[2]))
    for setting, model, strategy in keys:
        rs = [r for r in runs if (r["setting"], r["model"], r["strategy"]) == (setting, model, strategy)]
        tpr = np.array([r["tpr_at_1pct_fpr"] for r in rs])
        lines.append(
            f"| {setting} | {model} | {strategy} | {tpr.mean():.2f} ± {tpr.std(ddof=1) if tpr.size > 1 else 0:.2f} "
            f"| {np.mean([r['auc'] for r in rs]):.4f} | {rs[0]['n_labeled']} | {np.mean([r['select_seconds'] for r in rs]):.1f} "
            f"| {np.mean([r['fit_seconds'] for r in rs]):.1f} | {len(rs)} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--settings", default="clean,noisy")
    parser.add_argument("--universe", type=int, default=20_000, help="training images written as files")
    parser.add_argument("--labeled", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=6_000)
    parser.add_argument("--budget", type=int, default=1_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3, help="the schedule's peak learning rate")
    parser.add_argument("--schedule", default="onecycle", help="TorchClassifier's learning-rate schedule")
    parser.add_argument("--augment", default="none", help="TorchClassifier's augmentation")
    parser.add_argument("--width", type=int, default=16, help="channels of the CNN's first convolution")
    parser.add_argument("--test-size", type=int, default=5_000, help="test images scored (the first N)")
    parser.add_argument("--n-jobs", type=int, default=1, help="torch and LightGBM threads")
    parser.add_argument("--full-seeds", default=None, help="seeds that also train 'full' (default all)")
    parser.add_argument("--loader", default="activemine", choices=sorted(LOADERS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/deep_images"))
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        default=None,
        help="instead of running: join the results of runs written to these folders (e.g. one per setting) into --out",
    )
    args = parser.parse_args(argv)
    if args.merge:
        merge(args.merge, args.out)
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    args.full_seeds = seeds if args.full_seeds is None else [int(s) for s in args.full_seeds.split(",") if s]
    started = time.perf_counter()
    root = write_pngs(args.universe)
    log_line(f"PNG files ready in {time.perf_counter() - started:.0f} s")
    X, y10 = LOADERS[args.loader](root / "train")
    X_test, y10_test = LOADERS[args.loader](root / "test")
    X_test, y10_test = X_test[: args.test_size], y10_test[: args.test_size]
    y_true, y_test = (y10 == POSITIVE).astype(np.int64), (y10_test == POSITIVE).astype(np.int64)
    log_line(f"read {len(X) + len(X_test)} PNG files in {time.perf_counter() - started:.0f} s")
    runs, details = [], []
    for setting in args.settings.split(","):
        clean_proba = None
        if setting == "noisy":
            from activemine.dirty.oof import out_of_fold_proba

            clean_proba = out_of_fold_proba("fast", X, y_true, 2, seed=12345, n_jobs=args.n_jobs)
        for seed in seeds:
            y_obs = y_true
            if setting == "noisy":
                y_obs, _ = inject_label_noise(y_true, 0.10, kind="ambiguous", proba=clean_proba, random_state=seed)
                y_obs = np.asarray(y_obs)
            runs += run_seed(args, setting, seed, X, y_obs, y_true, X_test, y_test, details)
            write(args, runs, details, started)
    print(summarize(runs))


def merge(folders: list[Path], out: Path) -> None:
    """One ``results.json``, ``details.json`` and ``summary.md`` in ``out`` from runs written to ``folders``
    (each a run of this script, e.g. ``--settings clean`` and ``--settings noisy`` side by side)."""
    runs, details, parts = [], [], []
    for folder in folders:
        runs += json.loads((folder / "results.json").read_text())["runs"]
        part = json.loads((folder / "details.json").read_text())
        details += part["details"]
        parts.append({"folder": folder.name, "config": part["config"], "seconds": part["seconds"]})
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in (("results.json", {"runs": runs}), ("details.json", {"parts": parts, "details": details})):
        tmp = out / f".{name}.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, out / name)
    (out / "summary.md").write_text(summarize(runs) + "\n")
    print(summarize(runs))


def write(args, runs, details, started) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    for name, doc in (
        ("results.json", {"runs": runs}),
        (
            "details.json",
            {
                "config": {k: (v if not isinstance(v, Path) else str(v)) for k, v in vars(args).items()},
                "seconds": round(time.perf_counter() - started, 1),
                "details": details,
            },
        ),
    ):
        tmp = args.out / f".{name}.tmp"
        tmp.write_text(json.dumps(doc, indent=1))
        os.replace(tmp, args.out / name)
    (args.out / "summary.md").write_text(summarize(runs) + "\n")


if __name__ == "__main__":
    main()

"""End-to-end demo: the whole labeling loop on Fashion-MNIST, through the CLI, as a user would run it.

1. writes a labeled set L (15,000 images, shirt-vs-rest labels) and a pool U (the other 45,000) as Parquet;
2. ``activemine campaign init`` / ``campaign mine`` select 5,000 pool images with HW;
3. ``campaign export`` writes the batch for annotators; two simulated annotators label it from the ground
   truth (one of them careless: 5% of her labels are flipped) and ``campaign import`` brings the labels back;
4. ``campaign status`` and ``campaign dataset`` give the new training set L + B;
5. a model trained on L + B is compared, at TPR for FPR = 1% on the official test set, with L alone and
   with L plus a random batch of the same size.

Falls back to scikit-learn's digits (and says so) when the Fashion-MNIST files are not on this machine.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.data.datasets import fashion_mnist_available, load_dataset


def write_split(path: Path, ids: np.ndarray, X: np.ndarray, y: np.ndarray | None) -> None:
    columns = {"id": ids}
    columns.update({f"px{j}": X[:, j] for j in range(X.shape[1])})
    if y is not None:
        columns["y"] = y
    pq.write_table(pa.table(columns), path)


def activemine(*args: str) -> None:
    print("$ activemine " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "activemine", *args], check=True)


def simulate_annotators(batch_csv: Path, truth: dict, out: Path, *, seed: int = 0) -> int:
    """Label every exported id from the ground truth: ``careful`` takes even rows, ``hasty`` odd rows and
    flips 5% of hers. Returns the number of wrong labels written."""
    rng = np.random.default_rng(seed)
    with batch_csv.open(newline="") as f:
        ids = [row["id"] for row in csv.DictReader(f)]
    wrong = 0
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "label", "annotator"])
        for i, sid in enumerate(ids):
            label, who = truth[int(sid)], "careful" if i % 2 == 0 else "hasty"
            if who == "hasty" and rng.random() < 0.05:
                label, wrong = 1 - label, wrong + 1
            writer.writerow([sid, label, who])
    return wrong


def tpr_after_training(X, y, X_test, y_test, *, seed: int = 0) -> float:
    from activemine.metrics import tpr_at_fpr
    from activemine.models import make_model

    model = make_model("lightgbm", random_state=seed).fit(X, y)
    return tpr_at_fpr(y_test, model.predict_proba(X_test)[:, 1], 0.01)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--strategy", default="hw")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    campaign = args.out / "campaign"
    shutil.rmtree(campaign, ignore_errors=True)  # a rerun starts a fresh campaign

    if fashion_mnist_available():
        data, n_labeled, budget, positive = load_dataset("fashion-mnist"), 15_000, 5_000, 6
        print("dataset: Fashion-MNIST, task shirt (class 6) vs rest")
    else:
        data, n_labeled, budget, positive = load_dataset("digits"), 400, 200, 8
        print("dataset: Fashion-MNIST files not found; falling back to scikit-learn's digits, task 8 vs rest")
    rng = np.random.default_rng(0)
    order = rng.permutation(data.y_train.size)
    lab, pool = order[:n_labeled], order[n_labeled:]
    ids = np.arange(data.y_train.size, dtype=np.int64)
    y = (data.y_train == positive).astype(np.int64)
    y_test = (data.y_test == positive).astype(np.int64)
    write_split(args.out / "labeled.parquet", ids[lab], data.X_train[lab], y[lab])
    write_split(args.out / "pool.parquet", ids[pool], data.X_train[pool], None)
    print(f"labeled set: {lab.size} rows, pool: {pool.size} rows, budget: {budget}", flush=True)

    activemine(
        "campaign",
        "init",
        str(campaign),
        "--pool",
        str(args.out / "pool.parquet"),
        "--labeled",
        str(args.out / "labeled.parquet"),
        "--label-col",
        "y",
        "--id-col",
        "id",
    )
    activemine(
        "campaign",
        "mine",
        str(campaign),
        "--budget",
        str(budget),
        "--strategy",
        args.strategy,
        "--model",
        "lightgbm",
        "--seed",
        "0",
    )
    batch_csv = args.out / "round1.csv"
    activemine("campaign", "export", str(campaign), "--round", "1", "--format", "csv", "--out", str(batch_csv))
    labels_csv = args.out / "round1-labels.csv"
    wrong = simulate_annotators(batch_csv, dict(zip(ids.tolist(), y.tolist())), labels_csv)
    print(f"annotators labeled the batch; the hasty one got {wrong} labels wrong", flush=True)
    activemine("campaign", "import", str(campaign), str(labels_csv))
    activemine("campaign", "status", str(campaign))
    train_path = args.out / "train.parquet"
    activemine("campaign", "dataset", str(campaign), "--out", str(train_path))

    train = pq.read_table(train_path)
    train_ids = train.column("id").to_numpy()
    mined = np.setdiff1d(train_ids, ids[lab])
    print(f"\nthe mined batch holds {y[mined].mean():.1%} shirts (pool base rate {y[pool].mean():.1%})")
    random_batch = rng.choice(pool, size=mined.size, replace=False)
    X = data.X_train
    print("retraining LightGBM and reading TPR at FPR = 1% on the test set ...", flush=True)
    results = {
        "L only": tpr_after_training(X[lab], y[lab], data.X_test, y_test),
        f"L + random {mined.size}": tpr_after_training(
            X[np.r_[lab, random_batch]], y[np.r_[lab, random_batch]], data.X_test, y_test
        ),
        f"L + {args.strategy} {mined.size} (campaign dataset)": tpr_after_training(
            X[train_ids], train.column("y").to_numpy().astype(np.int64), data.X_test, y_test
        ),
    }
    for name, tpr in results.items():
        print(f"  {name:<45} TPR@1%FPR {100 * tpr:5.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

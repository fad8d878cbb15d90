"""End-to-end demo: mine a batch from Fashion-MNIST with the HW strategy through the CLI.

Writes a labeled set L (15,000 images, shirt-vs-rest labels) and a pool U (the
other 45,000 images) as Parquet, then runs ``activemine mine`` on them, exactly
as a user would. Falls back to scikit-learn's digits (and says so) when the
Fashion-MNIST files are not on this machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.datasets import fashion_mnist_available, load_dataset


def write_split(path: Path, ids: np.ndarray, X: np.ndarray, y: np.ndarray | None) -> None:
    columns = {"id": ids}
    columns.update({f"px{j}": X[:, j] for j in range(X.shape[1])})
    if y is not None:
        columns["y"] = y
    pq.write_table(pa.table(columns), path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("demo-out"))
    parser.add_argument("--strategy", default="hw")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

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
    write_split(args.out / "labeled.parquet", ids[lab], data.X_train[lab], y[lab])
    write_split(args.out / "pool.parquet", ids[pool], data.X_train[pool], None)
    print(f"labeled set: {lab.size} rows, pool: {pool.size} rows, budget: {budget}")

    cmd = [
        sys.executable, "-m", "activemine", "mine",
        "--labeled", str(args.out / "labeled.parquet"), "--pool", str(args.out / "pool.parquet"),
        "--label-col", "y", "--id-col", "id", "--budget", str(budget), "--strategy", args.strategy,
        "--model", "lightgbm", "--seed", "0", "--out", str(args.out / "batch.parquet"),
    ]  # fmt: skip
    print("$ activemine " + " ".join(cmd[3:]), flush=True)
    rc = subprocess.call(cmd)
    if rc == 0:
        batch = pq.read_table(args.out / "batch.parquet")
        truth = y[batch.column("id").to_numpy()]
        print(f"true positives in the batch: {truth.mean():.1%} (pool base rate {y[pool].mean():.1%})")
    return rc


if __name__ == "__main__":
    sys.exit(main())

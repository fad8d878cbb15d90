"""k-means++ and the PCA of the near-duplicate filter: scikit-learn against the hand-written code, side by side.

    python benchmarks/diversity_library.py [--sample 10000] [--clusters 1000] [--rows 50000] [--repeats 3]

Data as in benchmarks/diversity_scale.py: a Gaussian mixture in 8 latent dimensions mapped to 32, plus
noise (float32). Two steps of :mod:`activemine.diversity` are timed, each ``--repeats`` times, the fastest
kept (the machine is shared):

* **centroids** for Cluster-Margin on the seeded sample (``--sample`` rows, ``--clusters`` k):
  ``library`` is what :func:`activemine.diversity.geometry.fit_centroids` calls (scikit-learn's
  ``kmeans_plusplus`` with one candidate per step, then ``KMeans`` Lloyd steps, at most 25), ``hand``
  the hand-written k-means++ and Lloyd steps it replaced, ``sklearn_greedy`` scikit-learn's default
  ``KMeans`` (greedy k-means++: 2 + log k candidates per step); each with its inertia (sum of squared
  distances to the nearest centroid: lower is better);
* **filter directions** of the near-duplicate k-d tree (top 16 principal directions of ``--rows``
  candidates x 32): ``library`` is ``PCA(svd_solver="covariance_eigh")`` as
  :func:`activemine.diversity.geometry.principal_directions` calls it, ``hand`` the covariance
  eigendecomposition it replaced, ``sklearn_full_svd`` ``PCA(svd_solver="full")``; the largest angle
  between the library's and the hand-written subspaces is reported (the pairs found do not depend on
  it: every pair is checked exactly).

Also the cost of importing scikit-learn's two modules in a fresh process (the near-duplicate step
imports them when it runs; ``import activemine`` never does). Writes
``benchmarks/results/diversity_library/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "results" / "diversity_library" / "results.json"


def embeddings(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(40, 8)) * 3
    latent = centers[rng.integers(0, 40, n)] + rng.normal(size=(n, 8))
    mix = rng.normal(size=(8, 32))
    return (latent @ mix + 0.1 * rng.normal(size=(n, 32))).astype(np.float32)


def hand_centroids(sample, k: int, *, random_state: int = 0, iterations: int = 25) -> np.ndarray:
    """The hand-written k-means++ start and Lloyd steps the library call replaced (for comparison only)."""
    from activemine.diversity.geometry import nearest_centroid

    X = np.asarray(sample, dtype=np.float64)
    s = X.shape[0]
    rng = np.random.default_rng([int(random_state), 0xC1])
    sq = np.einsum("ij,ij->i", X, X)
    centers = np.empty((k, X.shape[1]))
    centers[0] = X[rng.integers(s)]
    best = np.maximum(sq - 2 * X @ centers[0] + centers[0] @ centers[0], 0)
    for j in range(1, k):
        total = best.sum()
        pick = int(rng.choice(s, p=best / total)) if total > 0 else int(rng.integers(s))
        centers[j] = X[pick]
        best = np.minimum(best, np.maximum(sq - 2 * X @ centers[j] + centers[j] @ centers[j], 0))
    for _ in range(iterations):
        label = nearest_centroid(X, centers)
        counts = np.bincount(label, minlength=k)
        sums = np.zeros_like(centers)
        np.add.at(sums, label, X)
        moved = counts > 0
        new = centers.copy()
        new[moved] = sums[moved] / counts[moved, None]
        if np.array_equal(new, centers):
            break
        centers = new
    return centers


def hand_directions(emb: np.ndarray) -> np.ndarray:
    """The covariance eigendecomposition the library call replaced: directions ``(d, d)``, largest first."""
    fit = np.asarray(emb[: min(len(emb), 50_000)], dtype=np.float64)
    centered = fit - fit.mean(axis=0)
    _, vectors = np.linalg.eigh(centered.T @ centered)
    return vectors[:, ::-1]


def inertia(X, centers) -> float:
    from activemine.diversity.geometry import nearest_centroid

    X = np.asarray(X, dtype=np.float64)
    label = nearest_centroid(X, centers)
    return float(((X - centers[label]) ** 2).sum())


def fastest(fn, repeats: int):
    """The fastest of ``repeats`` calls: ``(wall seconds, CPU seconds of all threads, result)``."""
    best, out = None, None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        took = (time.perf_counter() - wall, time.process_time() - cpu)
        best = took if best is None or took[1] < best[1] else best
    return best[0], best[1], out


def greedy_centroids(sample, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=1, max_iter=25, tol=0.0, algorithm="lloyd", random_state=0)
    return km.fit(np.asarray(sample, dtype=np.float64)).cluster_centers_


def full_svd_directions(emb: np.ndarray, dims: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    fit = np.asarray(emb[: min(len(emb), 50_000)], dtype=np.float64)
    return PCA(n_components=dims, svd_solver="full").fit(fit).components_.T


def import_seconds(repeats: int) -> float:
    code = "import time; t = time.perf_counter(); import sklearn.cluster, sklearn.decomposition; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)]
    for _ in range(repeats - 1):
        runs.append(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout))
    return min(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=10_000)
    ap.add_argument("--clusters", type=int, default=1_000)
    ap.add_argument("--rows", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from activemine.diversity.geometry import fit_centroids, principal_directions

    sample = embeddings(args.sample, seed=1)
    centroids = {
        "library": lambda: fit_centroids(sample, args.clusters, random_state=0),
        "hand": lambda: hand_centroids(sample, args.clusters, random_state=0),
        "sklearn_greedy": lambda: greedy_centroids(sample, args.clusters),
    }
    rows = embeddings(args.rows, seed=2)
    directions = {
        "library": lambda: principal_directions(rows, 16),
        "hand": lambda: hand_directions(rows)[:, :16],
        "sklearn_full_svd": lambda: full_svd_directions(rows, 16),
    }
    result = {
        "command": "python " + " ".join(sys.argv),
        "centroids": {"sample_rows": args.sample, "clusters": args.clusters},
        "filter_directions": {"rows": args.rows, "dims": 16},
    }
    for name, fn in centroids.items():
        wall, cpu, centers = fastest(fn, args.repeats)
        result["centroids"][name] = {"wall_seconds": wall, "cpu_seconds": cpu, "inertia": inertia(sample, centers)}
    found = {}
    for name, fn in directions.items():
        wall, cpu, found[name] = fastest(fn, args.repeats)
        result["filter_directions"][name] = {"wall_seconds": wall, "cpu_seconds": cpu}
    # the largest principal angle between the two 16-dim subspaces (0: the same subspace)
    cosines = np.linalg.svd(found["library"].T @ found["hand"], compute_uv=False)
    result["filter_directions"]["largest_angle_degrees"] = float(np.degrees(np.arccos(np.clip(cosines.min(), -1, 1))))
    result["sklearn_import_seconds"] = import_seconds(args.repeats)
    result["load_average"] = os.getloadavg()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_name(f".{OUT.name}.tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(OUT)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

"""Which index finds near-duplicate pairs among candidates x 32 dims: activemine's (a k-d tree in an
8-dim PCA projection, then the exact distance), scipy's cKDTree in 32 dims, scikit-learn's
NearestNeighbors (kd_tree) or faiss-cpu.

Synthetic candidates as in benchmarks/diversity_scale.py: a Gaussian mixture in 8 latent dims mapped to
32, 1% of the rows in planted groups of 10 near-copies; the radius is activemine's ``auto`` radius.
Every method must return the same pairs (exact search). Times are CPU seconds of this process
(``time.process_time``, all threads), so a machine shared with other jobs does not distort them. faiss has no exact radius index but brute
force (IndexFlatL2.range_search), which is quadratic: it is timed on a subset and scaled by
(n / subset)^2, and said so. Writes benchmarks/results/diversity_index/results.json.

    python benchmarks/diversity_index.py --rows 1000000 --faiss-rows 100000
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def candidates(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.normal(scale=3.0, size=(50, 8)).astype(np.float32)
    lift = rng.normal(size=(8, d)).astype(np.float32) / np.sqrt(8)
    z = mix[rng.integers(0, 50, n)] + rng.standard_normal((n, 8), dtype=np.float32)
    X = (z @ lift + 0.05 * rng.standard_normal((n, d), dtype=np.float32)).astype(np.float32)
    groups = n // 1000  # 1% of the rows in groups of 10
    src = rng.choice(n - 10 * groups, groups, replace=False)
    X[n - 10 * groups :] = X[np.repeat(src, 10)] + 0.01 * rng.standard_normal((10 * groups, d), dtype=np.float32)
    return X


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dims", type=int, default=32)
    ap.add_argument("--faiss-rows", type=int, default=100_000)
    ap.add_argument("--out", default="benchmarks/results/diversity_index/results.json")
    args = ap.parse_args()
    from activemine.diversity.geometry import auto_radius, sample_rows

    X = candidates(args.rows, args.dims)
    ids = np.arange(args.rows)
    r = auto_radius(X[sample_rows(ids, seed=0, size=10_000)])
    out = {"rows": args.rows, "dims": args.dims, "radius": r}

    from scipy.spatial import cKDTree

    from activemine.diversity.select import _Suppressor

    t = time.process_time()
    sup = _Suppressor(X, r, None)
    out["activemine_projected_seconds"] = time.process_time() - t
    out["activemine_pairs"] = int(sup.pairs.size // 2)
    print(
        f"activemine (8-dim projection + exact check): {out['activemine_projected_seconds']:.1f} s, {out['activemine_pairs']} pairs",
        flush=True,
    )

    t = time.process_time()
    tree = cKDTree(X)
    pairs = tree.query_pairs(r, output_type="ndarray")
    out["ckdtree_seconds"] = time.process_time() - t
    out["pairs"] = int(pairs.shape[0])
    print(f"cKDTree: {out['ckdtree_seconds']:.1f} s, {pairs.shape[0]} pairs, radius {r:.4f}", flush=True)

    from sklearn.neighbors import NearestNeighbors

    t = time.process_time()
    graph = NearestNeighbors(radius=r, algorithm="kd_tree").fit(X).radius_neighbors_graph(X, mode="connectivity")
    out["sklearn_kd_tree_seconds"] = time.process_time() - t
    out["sklearn_pairs"] = int((graph.nnz - args.rows) // 2)
    print(f"sklearn kd_tree: {out['sklearn_kd_tree_seconds']:.1f} s, {out['sklearn_pairs']} pairs", flush=True)

    try:
        import faiss
    except ImportError:
        out["faiss"] = "not installed"
    else:
        m = min(args.faiss_rows, args.rows)
        index = faiss.IndexFlatL2(args.dims)
        index.add(X[:m])
        t = time.process_time()
        lims, _, _ = index.range_search(X[:m], r * r)
        sub = time.process_time() - t
        out["faiss_flat_subset_rows"] = m
        out["faiss_flat_subset_seconds"] = sub
        out["faiss_flat_seconds_extrapolated"] = sub * (args.rows / m) ** 2
        print(
            f"faiss IndexFlatL2 range_search on {m} rows: {sub:.1f} s -> {out['faiss_flat_seconds_extrapolated']:.0f} s at {args.rows} (quadratic)"
        )
        t = time.process_time()
        sub_pairs = cKDTree(X[:m]).query_pairs(r, output_type="ndarray")
        out["ckdtree_subset_seconds"] = time.process_time() - t
        out["faiss_subset_pairs"] = int((lims[-1] - m) // 2)
        out["ckdtree_subset_pairs"] = int(sub_pairs.shape[0])
    out["command"] = f"python benchmarks/diversity_index.py --rows {args.rows} --faiss-rows {args.faiss_rows}"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

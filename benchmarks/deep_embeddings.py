"""A network's penultimate layer as the embedding of near-duplicate suppression, on Fashion-MNIST image files.

The PNG files of ``benchmarks/deep_images.py`` (written there once), read through
``activemine.data.images``. Per seed: the small CNN of that benchmark trained on L (2,000),
then 200 of the pool's most uncertain rows (U = 6,000) are planted 4 times each with
seeded pixel noise (standard deviation 0.05 of each pixel's spread, clipped to [0, 1]),
a pool of 6,800 in which 1,000 rows are copies. Least confidence selects B = 1,000:

* ``none``: no suppression;
* ``network``: ``--near-duplicates auto`` on the network's ``embed`` (128 dims);
* ``pca``: the same on the pixels projected by the seeded PCA fitted on L that ``mine``
  uses for a model without embeddings.

Reports the batch rows that belong to a planted group and the distinct groups among them,
the rows suppressed and the seconds of the embedding and of the selection.

    nice -n 5 python benchmarks/deep_embeddings.py --out benchmarks/results/deep_embeddings
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from deep_images import DATA, POSITIVE, read_pngs, write_pngs

from activemine.data import LabeledSet, PoolChunk
from activemine.diversity.geometry import fit_projection
from activemine.diversity.options import DiversityOptions
from activemine.engines.mining import mine
from activemine.experiments.diversity import duplicate_stats, plant_duplicates
from activemine.progress import log_line
from activemine.selection.plan import SelectionPlan
from activemine.selection.scores import least_confidence
from activemine.selection.strategies import make_strategy


def run_seed(args, seed: int, X, y) -> list[dict]:
    import functools

    from activemine.deep import TorchClassifier, small_cnn

    order = np.random.default_rng([seed, 7]).permutation(y.size)
    L, U = np.sort(order[: args.labeled]), np.sort(order[args.labeled : args.labeled + args.pool])
    # the recipe its recorded figures were measured with: a constant rate, 4 epochs
    net = TorchClassifier(
        functools.partial(small_cnn, width=16),
        epochs=4,
        batch_size=64,
        lr=2e-3,
        schedule="constant",
        n_jobs=1,
        random_state=seed,
    ).fit(X[L], y[L])
    proba_u = net.predict_proba(X[U])
    sources = np.argsort(-least_confidence(proba_u), kind="stable")[: args.sources]  # positions in U
    copies, source_of = plant_duplicates(X[U], sources, args.copies, scale=0.05, random_state=seed)
    copies = np.clip(copies, 0.0, 1.0).astype(np.float32)
    Xp = np.concatenate([X[U], copies])
    group = np.full(Xp.shape[0], -1)
    group[sources] = sources
    group[len(U) :] = source_of
    ids = np.arange(Xp.shape[0])
    proba = np.concatenate([proba_u, net.predict_proba(copies)])
    labeled = LabeledSet(None, y[L], L + 10**6)
    out = []
    for name in ("none", "network", "pca"):
        t0 = time.perf_counter()
        embedding = None
        if name == "network":
            embedding = net.embed(Xp)
        elif name == "pca":
            embedding = fit_projection(X[L], random_state=seed)(Xp)
        embed_s = time.perf_counter() - t0
        strategy = make_strategy("lc", random_state=seed, classes=[0, 1])
        diversity = None if name == "none" else DiversityOptions.from_cli(near_duplicates="auto")
        plan = SelectionPlan.build(strategy, budget=args.budget, diversity=diversity)
        t0 = time.perf_counter()
        batch = mine(strategy, PoolChunk(ids, proba=proba, embedding=embedding), plan=plan, labeled=labeled)
        stats = duplicate_stats(np.asarray(batch.ids), group)
        row = dict(
            seed=seed,
            embedding=name,
            copies_in_batch=stats["copies"],
            distinct_groups=stats["sources"],
            suppressed=int(batch.diversity.suppressed) if batch.diversity is not None else 0,
            embed_seconds=round(embed_s, 2),
            select_seconds=round(time.perf_counter() - t0, 2),
        )
        log_line(json.dumps(row))
        out.append(row)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--labeled", type=int, default=2_000)
    parser.add_argument("--pool", type=int, default=6_000)
    parser.add_argument("--budget", type=int, default=1_000)
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/deep_embeddings"))
    args = parser.parse_args(argv)
    root = write_pngs(20_000, DATA)
    X, y10 = read_pngs(root / "train")
    y = (y10 == POSITIVE).astype(np.int64)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        rows += run_seed(args, seed, X, y)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / ".results.json.tmp"
    tmp.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "runs": rows}, indent=1))
    os.replace(tmp, args.out / "results.json")
    for name in ("none", "network", "pca"):
        rs = [r for r in rows if r["embedding"] == name]
        print(
            f"{name:8s} copies in batch {np.mean([r['copies_in_batch'] for r in rs]):7.1f}  distinct groups "
            f"{np.mean([r['distinct_groups'] for r in rs]):6.1f}  embed s {np.mean([r['embed_seconds'] for r in rs]):5.1f}"
        )


if __name__ == "__main__":
    main()

"""The campaign's suspect check on a planted-noise campaign: which threshold keeps correct labels?

    python benchmarks/campaign_suspect.py [--seeds 3] [--noise 0.1]

For each dataset and seed: a campaign (L, U from the dataset's training split),
one round mined with the strategy named below, and the annotators' answers =
the truth with a share ``--noise`` of the labels flipped uniformly to another
class (planted errors). Every answer's *disagreement* with the round's model
(``max_c p(c) - p(given)``, :func:`activemine.campaign.checks.disagreement`)
is what ``campaign import`` compares with ``--suspect-threshold``. For each
threshold: correct labels flagged (they leave ``campaign dataset`` until
reviewed), precision (flagged labels that are wrong) and recall (wrong labels
flagged). Writes ``benchmarks/results/campaign_suspect/results.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.campaign import init_campaign, mine_round
from activemine.campaign.batchdata import read_batch
from activemine.campaign.checks import disagreement
from activemine.data.datasets import fashion_mnist_available, load_dataset
from activemine.selection.strategies import make_strategy

OUT = Path(__file__).resolve().parent / "results" / "campaign_suspect"
THRESHOLDS = [0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
# (dataset, n labeled, n pool, round size, strategy settings)
SETUPS = [
    ("digits", 150, 1_000, 300, dict(name="hw", model="logreg")),
    ("fashion-mnist", 1_000, 6_000, 1_000, dict(name="hw", model="lightgbm")),
]


def one_run(dataset: str, n_l: int, n_u: int, budget: int, strat: dict, seed: int, noise: float, tmp: Path):
    d = load_dataset(dataset)
    rng = np.random.default_rng(seed)
    order = rng.permutation(d.y_train.size)[: n_l + n_u]
    X, y = d.X_train[order], d.y_train[order]
    ids = np.arange(order.size)
    cols = {f"px{j}": X[:, j] for j in range(X.shape[1])}
    L, U = tmp / "L.parquet", tmp / "U.parquet"
    pq.write_table(pa.table({"id": ids[:n_l], **{k: v[:n_l] for k, v in cols.items()}, "y": y[:n_l]}), L)
    pq.write_table(pa.table({"id": ids[n_l:], **{k: v[n_l:] for k, v in cols.items()}}), U)
    store = init_campaign(tmp / "camp", pool=U, labeled=L)
    strategy = make_strategy(strat["name"], model=strat["model"], random_state=seed)
    mine_round(store, strategy, budget=budget)
    with store.snapshot() as conn:
        batch_sids, data = read_batch(conn, 1)
    sids = np.array([int(s) for s in batch_sids])
    proba = data.proba  # (b, k)
    truth = y[sids]
    k = proba.shape[1]
    flip = rng.random(sids.size) < noise
    given = truth.copy()
    given[flip] = (truth[flip] + rng.integers(1, k, flip.sum())) % k  # another class, uniformly
    dis = disagreement(given, proba)
    out = []
    for t in THRESHOLDS:
        flagged = dis > t
        out.append(
            {
                "threshold": t,
                "flagged": int(flagged.sum()),
                "wrong": int(flip.sum()),
                "correct_flagged": int((flagged & ~flip).sum()),
                "correct": int((~flip).sum()),
                "wrong_flagged": int((flagged & flip).sum()),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.1)
    args = ap.parse_args()
    started = time.perf_counter()
    results = {
        "command": f"campaign_suspect.py --seeds {args.seeds} --noise {args.noise}",
        "noise": args.noise,
        "thresholds": THRESHOLDS,
        "setups": [],
    }
    for dataset, n_l, n_u, budget, strat in SETUPS:
        if dataset == "fashion-mnist" and not fashion_mnist_available():
            print("fashion-mnist not installed; skipped")
            continue
        runs = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(one_run(dataset, n_l, n_u, budget, strat, seed, args.noise, Path(tmp)))
        table = []
        for i, t in enumerate(THRESHOLDS):
            tot = {key: sum(r[i][key] for r in runs) for key in runs[0][i] if key != "threshold"}
            row = {
                "threshold": t,
                **tot,
                "correct_flagged_share": tot["correct_flagged"] / tot["correct"],
                "precision": tot["wrong_flagged"] / tot["flagged"] if tot["flagged"] else None,
                "recall": tot["wrong_flagged"] / tot["wrong"] if tot["wrong"] else None,
            }
            table.append(row)
        results["setups"].append(
            {
                "dataset": dataset,
                "labeled": n_l,
                "pool": n_u,
                "round": budget,
                "strategy": strat,
                "seeds": args.seeds,
                "table": table,
            }
        )
        print(
            f"\n{dataset}: L {n_l}, U {n_u}, one round of {budget} with {strat}, {args.seeds} seeds, {args.noise:.0%} planted errors"
        )
        print(f"{'threshold':>9} {'flagged':>8} {'correct flagged':>16} {'precision':>9} {'recall':>7}")
        for r in table:
            prec = "-" if r["precision"] is None else f"{r['precision']:.2f}"
            print(
                f"{r['threshold']:>9} {r['flagged']:>8} {r['correct_flagged']:>7} ({r['correct_flagged_share']:.1%})"
                f" {prec:>9} {r['recall']:>7.2f}",
                flush=True,
            )
        _save(results, started)
    print(f"\nwrote {OUT / 'results.json'} ({results['seconds']} s)")


def _save(results: dict, started: float) -> None:
    """Written after every setup, so a long run keeps what it measured."""
    results["seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

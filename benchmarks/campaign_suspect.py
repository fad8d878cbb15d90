"""The campaign's suspect check: how often it flags correct labels of each class, and what it catches.

    python benchmarks/campaign_suspect.py [--seeds 3] [--rounds 3] [--noise 0.1] [--parts rare,planted]

Two parts, both on real campaigns (:func:`activemine.campaign.init_campaign`,
:func:`~activemine.campaign.mine_round`, :func:`~activemine.campaign.import_labels`):

* **rare**: a pool with a rare positive class (the synthetic set below, about
  2% positives, and Fashion-MNIST's "bag" class thinned to 2% when the files are
  installed), ``--rounds`` HW rounds with LightGBM, the campaign's defaults;
  the annotators return **the truth**, imported as a file. Every flag is a
  false flag; counted per class, with the check's class thresholds (the
  default) and, on the same labels, with one shared threshold (the old rule).
  Target: at most 2% of the correct positives flagged, and at most twice the
  rate on the correct negatives.
* **planted**: digits, one HW round with logistic regression, the truth with a
  share ``--noise`` of the labels flipped to another class; per threshold, for
  both rules: correct labels flagged, precision (flagged labels that are wrong)
  and recall (wrong labels flagged).

Writes ``benchmarks/results/campaign_suspect/results.json`` (the current run only).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.campaign import import_labels, init_campaign, mine_round
from activemine.campaign.batchdata import read_batch
from activemine.campaign.checks import DEFAULT_SUSPECT_THRESHOLD, class_thresholds, disagreement
from activemine.data.datasets import fashion_mnist_available, load_dataset
from activemine.selection.strategies import make_strategy

OUT = Path(__file__).resolve().parent / "results" / "campaign_suspect"
THRESHOLDS = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
# (name, n labeled, n pool, round size)
RARE_SETUPS = [("synthetic-rare", 3_000, 30_000, 1_000), ("fashion-bag-rare", 3_000, 20_000, 1_000)]
TARGET_POS, TARGET_RATIO = 0.02, 2.0


def _rare_data(name: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features ``(n, d)`` float32 and labels ``(n,)`` "neg"/"pos" with about 2% positives."""
    rng = np.random.default_rng(seed)
    if name == "synthetic-rare":
        from sklearn.datasets import make_classification

        X, y = make_classification(
            n_samples=n,
            n_features=30,
            n_informative=10,
            n_redundant=6,
            n_clusters_per_class=3,
            weights=[0.98],
            class_sep=1.0,
            flip_y=0.0,
            random_state=seed,
        )
        return X.astype(np.float32), np.where(y == 1, "pos", "neg")
    d = load_dataset("fashion-mnist")
    bag = np.flatnonzero(d.y_train == 8)
    rest = np.flatnonzero(d.y_train != 8)
    n_pos = int(round(0.02 * n))
    rows = np.concatenate([rng.choice(bag, n_pos, replace=False), rng.choice(rest, n - n_pos, replace=False)])
    rows = rng.permutation(rows)
    return d.X_train[rows].astype(np.float32), np.where(d.y_train[rows] == 8, "pos", "neg")


def rare_run(name: str, n_l: int, n_u: int, budget: int, rounds: int, seed: int, tmp: Path) -> list[dict]:
    """One campaign fed correct labels: per round, correct labels and false flags per class, both rules."""
    X, y = _rare_data(name, n_l + n_u, seed)
    ids = np.arange(y.size)
    cols = {f"f{j:03d}": X[:, j] for j in range(X.shape[1])}
    L, U = tmp / "L.parquet", tmp / "U.parquet"
    pq.write_table(pa.table({"id": ids[:n_l], **{k: v[:n_l] for k, v in cols.items()}, "y": y[:n_l]}), L)
    pq.write_table(pa.table({"id": ids[n_l:], **{k: v[n_l:] for k, v in cols.items()}}), U)
    store = init_campaign(tmp / "camp", pool=U, labeled=L)
    classes = store.class_names  # ["neg", "pos"]
    out = []
    for _ in range(rounds):
        strategy = make_strategy("hw", model="lightgbm", random_state=seed)
        round_no, _ = mine_round(store, strategy, budget=budget)
        with store.snapshot() as conn:
            sids, data = read_batch(conn, round_no)
        truth = y[np.array([int(s) for s in sids])]
        path = tmp / f"round{round_no}.csv"
        with path.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id", "label", "annotator"])
            w.writerows((s, t, "truth") for s, t in zip(sids, truth.tolist()))
        report = import_labels(store, path)
        flagged = np.isin(np.array(sids, dtype=str), np.array([str(s) for s in report.suspect], dtype=str))
        given = np.array([classes.index(t) for t in truth])
        shared = disagreement(given, data.proba) > DEFAULT_SUSPECT_THRESHOLD
        limits = class_thresholds(given, disagreement(given, data.proba), len(classes), DEFAULT_SUSPECT_THRESHOLD)
        row = {"round": round_no, "thresholds": limits.round(4).tolist()}
        for c in classes:
            at = truth == c
            row[c] = {
                "correct": int(at.sum()),
                "flagged": int((flagged & at).sum()),
                "flagged_shared": int((shared & at).sum()),
            }
        out.append(row)
    return out


def planted_run(n_l: int, n_u: int, budget: int, seed: int, noise: float, tmp: Path) -> list[dict]:
    d = load_dataset("digits")
    rng = np.random.default_rng(seed)
    order = rng.permutation(d.y_train.size)[: n_l + n_u]
    X, y = d.X_train[order], d.y_train[order]
    ids = np.arange(order.size)
    cols = {f"px{j}": X[:, j] for j in range(X.shape[1])}
    L, U = tmp / "L.parquet", tmp / "U.parquet"
    pq.write_table(pa.table({"id": ids[:n_l], **{k: v[:n_l] for k, v in cols.items()}, "y": y[:n_l]}), L)
    pq.write_table(pa.table({"id": ids[n_l:], **{k: v[n_l:] for k, v in cols.items()}}), U)
    store = init_campaign(tmp / "camp", pool=U, labeled=L)
    mine_round(store, make_strategy("hw", model="logreg", random_state=seed), budget=budget)
    with store.snapshot() as conn:
        batch_sids, data = read_batch(conn, 1)
    truth = y[np.array([int(s) for s in batch_sids])]
    k = data.proba.shape[1]
    flip = rng.random(truth.size) < noise
    given = truth.copy()
    given[flip] = (truth[flip] + rng.integers(1, k, flip.sum())) % k  # another class, uniformly
    dis = disagreement(given, data.proba)
    out = []
    for t in THRESHOLDS:
        row = {"threshold": t, "wrong": int(flip.sum()), "correct": int((~flip).sum())}
        for rule, flagged in (("shared", dis > t), ("by_class", dis > class_thresholds(given, dis, k, t)[given])):
            row[rule] = {
                "flagged": int(flagged.sum()),
                "correct_flagged": int((flagged & ~flip).sum()),
                "wrong_flagged": int((flagged & flip).sum()),
            }
        out.append(row)
    return out


def _rate(n: int, of: int) -> float | None:
    return n / of if of else None


def summarize_rare(runs: list[list[dict]]) -> dict:
    """Per class and rule, correct labels and false flags summed over seeds and rounds, with the target."""
    out = {}
    for c in ("neg", "pos"):
        correct = sum(r[c]["correct"] for run in runs for r in run)
        out[c] = {"correct": correct}
        for rule, key in (("by_class", "flagged"), ("shared", "flagged_shared")):
            n = sum(r[c][key] for run in runs for r in run)
            out[c][rule] = {"flagged": n, "rate": _rate(n, correct)}
    for rule in ("by_class", "shared"):
        pos, neg = out["pos"][rule]["rate"], out["neg"][rule]["rate"]
        out[f"target_{rule}"] = bool(pos is not None and pos <= TARGET_POS and pos <= TARGET_RATIO * (neg or 0.0))
        if pos == 0:
            out[f"target_{rule}"] = True
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--parts", default="rare,planted", help="rare, planted or both (comma-separated)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if not parts or parts - {"rare", "planted"}:
        ap.error(f"--parts takes rare and/or planted, got {args.parts!r}")
    started = time.perf_counter()
    command = f"python benchmarks/campaign_suspect.py --seeds {args.seeds} --rounds {args.rounds} --noise {args.noise}"
    results = {"command": f"{command} --parts {args.parts}", "rare": [], "planted": None}
    for name, n_l, n_u, budget in RARE_SETUPS if "rare" in parts else []:
        if name.startswith("fashion") and not fashion_mnist_available():
            print("fashion-mnist not installed; its rare setup skipped")
            continue
        runs = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(rare_run(name, n_l, n_u, budget, args.rounds, seed, Path(tmp)))
            print(
                f"{name} seed {seed}: "
                + "; ".join(
                    f"round {r['round']} pos {r['pos']['flagged']}/{r['pos']['correct']} "
                    f"neg {r['neg']['flagged']}/{r['neg']['correct']} (thresholds {r['thresholds']})"
                    for r in runs[-1]
                ),
                flush=True,
            )
        summary = summarize_rare(runs)
        results["rare"].append(
            {
                "dataset": name,
                "labeled": n_l,
                "pool": n_u,
                "round": budget,
                "rounds": args.rounds,
                "seeds": args.seeds,
                "runs": runs,
                "summary": summary,
            }
        )
        print(f"\n{name}: L {n_l}, U {n_u}, {args.rounds} HW rounds of {budget}, {args.seeds} seeds, correct labels")
        print(f"{'rule':>9} {'pos flagged':>18} {'neg flagged':>18} {'target':>7}")
        for rule in ("by_class", "shared"):
            p, n = summary["pos"], summary["neg"]
            print(
                f"{rule:>9} {p[rule]['flagged']:>6}/{p['correct']:<5} ({p[rule]['rate']:.2%})"
                f" {n[rule]['flagged']:>6}/{n['correct']:<5} ({n[rule]['rate']:.2%}) {str(summary['target_' + rule]):>7}",
                flush=True,
            )
        _save(results, started)
    if "planted" in parts:
        runs = []
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(planted_run(150, 1_000, 300, seed, args.noise, Path(tmp)))
        table = []
        for i, t in enumerate(THRESHOLDS):
            row = {
                "threshold": t,
                "wrong": sum(r[i]["wrong"] for r in runs),
                "correct": sum(r[i]["correct"] for r in runs),
            }
            for rule in ("shared", "by_class"):
                tot = {key: sum(r[i][rule][key] for r in runs) for key in runs[0][i][rule]}
                row[rule] = {
                    **tot,
                    "correct_flagged_share": tot["correct_flagged"] / row["correct"],
                    "precision": tot["wrong_flagged"] / tot["flagged"] if tot["flagged"] else None,
                    "recall": tot["wrong_flagged"] / row["wrong"] if row["wrong"] else None,
                }
            table.append(row)
        results["planted"] = {
            "dataset": "digits",
            "labeled": 150,
            "pool": 1_000,
            "round": 300,
            "strategy": "hw, logreg",
            "noise": args.noise,
            "seeds": args.seeds,
            "table": table,
        }
        print(
            f"\ndigits: L 150, U 1,000, one HW round of 300 (logreg), {args.seeds} seeds, {args.noise:.0%} planted errors"
        )
        print(f"{'threshold':>9} {'rule':>9} {'flagged':>8} {'correct flagged':>16} {'precision':>9} {'recall':>7}")
        for r in table:
            for rule in ("shared", "by_class"):
                x = r[rule]
                prec = "-" if x["precision"] is None else f"{x['precision']:.2f}"
                print(
                    f"{r['threshold']:>9} {rule:>9} {x['flagged']:>8} {x['correct_flagged']:>7} "
                    f"({x['correct_flagged_share']:.1%}) {prec:>9} {x['recall']:>7.2f}"
                )
        _save(results, started)
    print(f"\nwrote {OUT / 'results.json'} ({results['seconds']} s)")


def _save(results: dict, started: float) -> None:
    """Written after every part, so a long run keeps what it measured."""
    results["seconds"] = round(time.perf_counter() - started, 1)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

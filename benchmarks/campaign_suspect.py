"""The campaign's suspect check: how often it flags correct labels of each class, and what it catches.

    python benchmarks/campaign_suspect.py [--seeds 3] [--rounds 3] [--noise 0.1] [--parts rare,planted]
        [--workers 1] [--n-jobs N]

Two parts, both on real campaigns (:func:`activemine.campaign.init_campaign`,
:func:`~activemine.campaign.mine_round`, :func:`~activemine.campaign.import_labels`):

* **rare**: a pool with a rare positive class (the synthetic set below, about
  2% positives, and Fashion-MNIST's "bag" class thinned to 2% when the files are
  installed), ``--rounds`` HW rounds with LightGBM, the campaign's defaults;
  the annotators return **the truth**, imported as a file. Every flag is a
  false flag; counted per class when each import sets it and as it stands after
  the last import (a later import lifts the flags its class thresholds spare).
  On the same labels the former per-class rule (:func:`former_class_thresholds`,
  flags never lifted) and one shared threshold are replayed (:func:`replay`; its
  replay of the campaign's rule must match the campaign's flags). Target: at
  most 2% of the correct positives flagged, and at most twice the rate on the
  correct negatives. Then ``--noise`` of each round's labels of each class are
  made wrong (:func:`activemine.experiments.noise.inject_observed_noise`,
  uniform) and every rule is replayed on them: recall of the wrong labels and
  false flags per given class.
* **planted**: digits, one HW round with logistic regression, the truth with a
  share ``--noise`` of the labels flipped to another class; per threshold, for
  the three rules: correct labels flagged, precision (flagged labels that are
  wrong) and recall (wrong labels flagged).

``--workers`` runs the rare campaigns in that many processes; ``--n-jobs`` sets
the threads of their models (on a loaded 2-core machine, 1: two-thread fits
wait on each other).

Writes ``benchmarks/results/campaign_suspect/results.json`` (the current run only).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.campaign import import_labels, init_campaign, mine_round
from activemine.campaign.batchdata import read_batch
from activemine.campaign.checks import DEFAULT_SUSPECT_THRESHOLD, class_thresholds, disagreement
from activemine.data.datasets import fashion_mnist_available, load_dataset
from activemine.experiments.noise import inject_observed_noise
from activemine.selection.strategies import make_strategy

OUT = Path(__file__).resolve().parent / "results" / "campaign_suspect"
THRESHOLDS = [0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
# (name, n labeled, n pool, round size)
RARE_SETUPS = [("synthetic-rare", 3_000, 30_000, 1_000), ("fashion-bag-rare", 3_000, 20_000, 1_000)]
TARGET_POS, TARGET_RATIO = 0.02, 2.0
CLASSES = ("neg", "pos")  # the campaign's class order (sorted names)


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


def rare_run(
    name: str, n_l: int, n_u: int, budget: int, rounds: int, seed: int, tmp: Path, n_jobs: int | None = None
) -> list[dict]:
    """One campaign fed correct labels: per round, the labels (class indices), their disagreements and the
    campaign's flags when imported and at the end (flags a later import lifted are no longer standing)."""
    X, y = _rare_data(name, n_l + n_u, seed)
    ids = np.arange(y.size)
    cols = {f"f{j:03d}": X[:, j] for j in range(X.shape[1])}
    L, U = tmp / "L.parquet", tmp / "U.parquet"
    pq.write_table(pa.table({"id": ids[:n_l], **{k: v[:n_l] for k, v in cols.items()}, "label": y[:n_l]}), L)
    pq.write_table(pa.table({"id": ids[n_l:], **{k: v[n_l:] for k, v in cols.items()}}), U)
    store = init_campaign(tmp / "camp", pool=U, labeled=L)
    classes = store.class_names
    assert tuple(classes) == CLASSES, classes
    out = []
    for _ in range(rounds):
        strategy = make_strategy("hw", model="lightgbm", random_state=seed, n_jobs=n_jobs)
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
        given = np.array([classes.index(t) for t in truth])
        out.append(
            {
                "round": round_no,
                "sids": np.array(sids, dtype=str),
                "given": given,
                "proba": np.asarray(data.proba, dtype=np.float64),
                "d": disagreement(given, data.proba),
                "flagged": np.isin(np.array(sids, dtype=str), np.array([str(s) for s in report.suspect], dtype=str)),
            }
        )
    with store.snapshot() as conn:
        standing = {
            str(s) for (s,) in conn.execute("SELECT sid FROM labels WHERE suspect = 1 AND retracted_at IS NULL")
        }
    for r in out:
        r["standing"] = np.isin(r["sids"], np.array(sorted(standing), dtype=str))
    return out


def _rare_campaign(name: str, n_l: int, n_u: int, budget: int, rounds: int, seed: int, n_jobs) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        return rare_run(name, n_l, n_u, budget, rounds, seed, Path(tmp), n_jobs)


def former_class_thresholds(given: np.ndarray, d: np.ndarray, k: int, threshold: float) -> np.ndarray:
    """The rule the campaign used before (kept here to compare): a class is spared only when a one-sided
    two-proportion z of its flagged share against the others' exceeds 2, down to the others' share rounded to
    the nearest label; flags of earlier imports are never judged again."""
    out = np.full(k, threshold)
    over = d > threshold
    for c in range(k):
        mine, others = given == c, given != c
        n_c, n_o = int(mine.sum()), int(others.sum())
        if not n_c or not n_o:
            continue
        f_c, f_o = int(over[mine].sum()), int(over[others].sum())
        p_c, p_o = f_c / n_c, f_o / n_o
        pooled = (f_c + f_o) / (n_c + n_o)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_o))
        if p_c <= p_o or (p_c - p_o) / se <= 2.0:
            continue
        allowed = int(np.floor(p_o * n_c + 0.5))
        out[c] = max(threshold, float(np.sort(d[mine])[::-1][allowed]))
    return out


def replay(rounds: list[tuple[np.ndarray, np.ndarray]], k: int, t: float, rule: str) -> tuple[list, list]:
    """Flags per round ``(n_r,)`` when imported and standing after the last import, as a campaign of these
    rounds' labels ``[(given, d)]`` would set them under ``rule``: ``by_class`` (the campaign's: thresholds over
    every label so far, spared flags lifted), ``former`` (:func:`former_class_thresholds`) or ``shared``."""
    at_import, standing = [], []
    for i, (g, d) in enumerate(rounds):
        all_g = np.concatenate([r[0] for r in rounds[: i + 1]])
        all_d = np.concatenate([r[1] for r in rounds[: i + 1]])
        if rule == "shared":
            limits = np.full(k, t)
        elif rule == "former":
            limits = former_class_thresholds(all_g, all_d, k, t)
        else:
            limits = class_thresholds(all_g, all_d, k, t)
            for (g0, d0), f0 in zip(rounds[:i], standing):
                f0 &= ~((d0 > t) & (d0 <= limits[g0]))  # lift_spared_flags
        at_import.append(d > limits[g])
        standing.append(at_import[-1].copy())
    return at_import, standing


RULES = ("by_class", "former", "shared")


def noisy_rounds(run: list[dict], noise: float, seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each round's labels with ``noise`` of each observed class wrong (the per-class model of
    :func:`activemine.experiments.noise.inject_observed_noise`, uniform), judged by the same round's model:
    ``[(given, d, wrong)]``. The rounds' models are the ones trained on correct labels."""
    out = []
    for r in run:
        noisy, wrong = inject_observed_noise(
            r["given"], noise, kind="uniform", classes=[0, 1], random_state=seed * 100 + r["round"]
        )
        out.append((noisy, disagreement(noisy, r["proba"]), wrong))
    return out


def planted_run(n_l: int, n_u: int, budget: int, seed: int, noise: float, tmp: Path) -> list[dict]:
    d = load_dataset("digits")
    rng = np.random.default_rng(seed)
    order = rng.permutation(d.y_train.size)[: n_l + n_u]
    X, y = d.X_train[order], d.y_train[order]
    ids = np.arange(order.size)
    cols = {f"px{j}": X[:, j] for j in range(X.shape[1])}
    L, U = tmp / "L.parquet", tmp / "U.parquet"
    pq.write_table(pa.table({"id": ids[:n_l], **{k: v[:n_l] for k, v in cols.items()}, "label": y[:n_l]}), L)
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
        for rule, flagged in (
            ("shared", dis > t),
            ("by_class", dis > class_thresholds(given, dis, k, t)[given]),
            ("former", dis > former_class_thresholds(given, dis, k, t)[given]),
        ):
            row[rule] = {
                "flagged": int(flagged.sum()),
                "correct_flagged": int((flagged & ~flip).sum()),
                "wrong_flagged": int((flagged & flip).sum()),
            }
        out.append(row)
    return out


def _rate(n: int, of: int) -> float | None:
    return n / of if of else None


def _per_class(given: np.ndarray, flagged: np.ndarray, among: np.ndarray | None = None) -> dict:
    """{class name: [flagged, of]} over labels ``among`` (all when None)."""
    among = np.ones(given.size, dtype=bool) if among is None else among
    return {
        name: [int((flagged & among & (given == c)).sum()), int((among & (given == c)).sum())]
        for c, name in enumerate(CLASSES)
    }


def _target(pos: list[int], neg: list[int]) -> bool:
    """At most 2% of the correct positives flagged and at most twice the correct negatives' rate."""
    p, n = pos[0] / max(pos[1], 1), neg[0] / max(neg[1], 1)
    return p <= TARGET_POS and p <= TARGET_RATIO * n if p > 0 else True


def summarize_rare(runs: list[list[dict]], noise: float) -> dict:
    """Per rule and class, summed over seeds and rounds: correct labels flagged when imported and standing at
    the end (the campaign fed correct labels), with the target on both; and, on the same rounds with ``noise``
    of each class's labels wrong, recall of the wrong labels and false flags per given class (standing)."""
    out = {"correct": {}, "noisy": {}, "noise": noise}
    for rule in RULES:
        sums = {"at_import": {c: [0, 0] for c in CLASSES}, "standing": {c: [0, 0] for c in CLASSES}}
        noisy = {c: {"wrong_flagged": [0, 0], "correct_flagged": [0, 0]} for c in CLASSES}
        for seed, run in enumerate(runs):
            at_import, standing = replay([(r["given"], r["d"]) for r in run], 2, DEFAULT_SUSPECT_THRESHOLD, rule)
            for r, fi, fs in zip(run, at_import, standing):
                for key, f in (("at_import", fi), ("standing", fs)):
                    for c, (a, b) in _per_class(r["given"], f).items():
                        sums[key][c][0] += a
                        sums[key][c][1] += b
            rounds = noisy_rounds(run, noise, seed)
            _, standing = replay([(g, d) for g, d, _ in rounds], 2, DEFAULT_SUSPECT_THRESHOLD, rule)
            for (g, _, wrong), f in zip(rounds, standing):
                for key, among in (("wrong_flagged", wrong), ("correct_flagged", ~wrong)):
                    for c, (a, b) in _per_class(g, f, among).items():
                        noisy[c][key][0] += a
                        noisy[c][key][1] += b
        for key in sums:
            sums[key]["target"] = _target(sums[key]["pos"], sums[key]["neg"])
        out["correct"][rule] = sums
        out["noisy"][rule] = noisy
    # the campaign's own flags against the replay of its rule: they should be the same labels
    mismatch = 0
    for run in runs:
        at_import, standing = replay([(r["given"], r["d"]) for r in run], 2, DEFAULT_SUSPECT_THRESHOLD, "by_class")
        mismatch += sum(
            int((r["flagged"] != fi).sum() + (r["standing"] != fs).sum()) for r, fi, fs in zip(run, at_import, standing)
        )
    out["campaign_vs_replay_mismatches"] = mismatch
    return out


def _round_rows(run: list[dict]) -> list[dict]:
    """What results.json keeps per round: per class, labels and flags (the campaign's, and the former and shared
    rules replayed on the same labels)."""
    former, _ = replay([(r["given"], r["d"]) for r in run], 2, DEFAULT_SUSPECT_THRESHOLD, "former")
    rows = []
    for r, f in zip(run, former):
        rows.append(
            {
                "round": r["round"],
                "flagged_at_import": _per_class(r["given"], r["flagged"]),
                "flagged_standing": _per_class(r["given"], r["standing"]),
                "flagged_former": _per_class(r["given"], f),
                "flagged_shared": _per_class(r["given"], r["d"] > DEFAULT_SUSPECT_THRESHOLD),
            }
        )
    return rows


def _share(x: list[int]) -> str:
    return f"{x[0]:>4}/{x[1]:<5} ({x[0] / max(x[1], 1):.2%})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--parts", default="rare,planted", help="rare, planted or both (comma-separated)")
    ap.add_argument("--workers", type=int, default=1, help="rare campaigns run side by side (processes)")
    ap.add_argument(
        "--n-jobs", type=int, default=None, help="threads of each campaign's models (default: the CPUs available)"
    )
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    if not parts or parts - {"rare", "planted"}:
        ap.error(f"--parts takes rare and/or planted, got {args.parts!r}")
    started = time.perf_counter()
    command = (
        f"python benchmarks/campaign_suspect.py --seeds {args.seeds} --rounds {args.rounds} --noise {args.noise} "
        f"--workers {args.workers}" + ("" if args.n_jobs is None else f" --n-jobs {args.n_jobs}")
    )
    results = {"command": f"{command} --parts {args.parts}", "rare": [], "planted": None}
    setups = [s for s in RARE_SETUPS if "rare" in parts]
    if any(s[0].startswith("fashion") for s in setups) and not fashion_mnist_available():
        print("fashion-mnist not installed; its rare setup skipped")
        setups = [s for s in setups if not s[0].startswith("fashion")]
    # every (setup, seed) campaign is independent: --workers runs them side by side, results in the same order
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        pending = {
            (name, seed): pool.submit(_rare_campaign, name, n_l, n_u, budget, args.rounds, seed, args.n_jobs)
            for name, n_l, n_u, budget in setups
            for seed in range(args.seeds)
        }
        for (name, seed), fut in pending.items():
            fut.add_done_callback(
                lambda _, name=name, seed=seed: print(f"{name} seed {seed}: campaign done", flush=True)
            )
    for name, n_l, n_u, budget in setups:
        runs = []
        for seed in range(args.seeds):
            runs.append(pending[(name, seed)].result())
            print(
                f"{name} seed {seed}: "
                + "; ".join(
                    f"round {r['round']} pos {f['pos'][0]}/{f['pos'][1]} neg {f['neg'][0]}/{f['neg'][1]} flagged "
                    f"(standing at the end pos {e['pos'][0]}, neg {e['neg'][0]}; former rule pos {o['pos'][0]}, "
                    f"neg {o['neg'][0]})"
                    for r in _round_rows(runs[-1])
                    for f, e, o in [(r["flagged_at_import"], r["flagged_standing"], r["flagged_former"])]
                ),
                flush=True,
            )
        summary = summarize_rare(runs, args.noise)
        results["rare"].append(
            {
                "dataset": name,
                "labeled": n_l,
                "pool": n_u,
                "round": budget,
                "rounds": args.rounds,
                "seeds": args.seeds,
                "runs": [_round_rows(run) for run in runs],
                "summary": summary,
            }
        )
        print(f"\n{name}: L {n_l}, U {n_u}, {args.rounds} HW rounds of {budget}, {args.seeds} seeds, correct labels")
        print(f"{'rule':>9} {'when':>10} {'pos flagged':>20} {'neg flagged':>20} {'target':>7}")
        for rule in RULES:
            for when in ("at_import", "standing"):
                x = summary["correct"][rule][when]
                print(f"{rule:>9} {when:>10} {_share(x['pos']):>20} {_share(x['neg']):>20} {str(x['target']):>7}")
        print(f"same labels, {args.noise:.0%} of each round's labels of each class wrong (standing flags):")
        print(
            f"{'rule':>9} {'wrong pos caught':>20} {'wrong neg caught':>20} {'correct pos flagged':>20} {'correct neg flagged':>20}"
        )
        for rule in RULES:
            x = summary["noisy"][rule]
            print(
                f"{rule:>9} {_share(x['pos']['wrong_flagged']):>20} {_share(x['neg']['wrong_flagged']):>20} "
                f"{_share(x['pos']['correct_flagged']):>20} {_share(x['neg']['correct_flagged']):>20}"
            )
        print(
            f"campaign flags against the replay of its rule: {summary['campaign_vs_replay_mismatches']} mismatches",
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
            for rule in ("shared", "by_class", "former"):
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
            for rule in ("shared", "by_class", "former"):
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

"""Scale benchmark: streaming and Ray engines on pools of 10^6 to 10^7 rows.

    python benchmarks/scale.py [--rows 10000000] [--repeats 3] [--no-ray] [--only floor_bin,cli_bin,...]

Generates (once, under benchmarks/.data/, gitignored) a binary and a 10-class
Parquet pool of precomputed probabilities (integer ids), the binary pool again
with string ids (``"u000000017"``), and a 1M-row feature pool; runs every
configuration in its own subprocess (peak RSS is that process's maxrss; for
Ray it is the driver's only) and writes benchmarks/results/scale/results.json.

Two times per configuration: ``wall_s`` is measured inside the child around
the work itself (the library's cost), ``process_s`` by this script around the
whole child process (Python start, imports, reading, writing: what a user of
the CLI waits for). ``cli_bin`` is ``activemine mine`` itself on the binary
pool, compared end to end with the floor's process (read + argpartition).
``local_binstr``/``ray_binstr`` mine the string-id pool with both executors.
Needs the ``bench`` extra (modAL, scikit-activeml) and ``ray`` for the Ray rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
OUT = HERE / "results" / "scale"


# -- data ------------------------------------------------------------------------
def _write_proba_pool(path: Path, rows: int, k: int, seed: int, *, string_ids: bool = False) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    step = 1_000_000
    tmp = path.with_suffix(".tmp")
    id_type = pa.string() if string_ids else pa.int64()
    with pq.ParquetWriter(tmp, pa.schema([("id", id_type)] + [(f"p{j}", pa.float32()) for j in range(k)])) as w:
        for start in range(0, rows, step):
            n = min(step, rows - start)
            logits = rng.normal(scale=2.0, size=(n, k)).astype(np.float32)
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            ids = np.arange(start, start + n, dtype=np.int64)
            if string_ids:  # the same rows and probabilities as the integer pool of this seed, ids as text
                ids = np.char.add("u", np.char.zfill(ids.astype(str), 9))
            cols = {"id": ids} | {f"p{j}": p[:, j] for j in range(k)}
            w.write_table(pa.table(cols), row_group_size=1 << 20)
    os.replace(tmp, path)


def _feature_data(rows: int, seed: int = 0, d: int = 20, k: int = 4):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=1.5, size=(k, d))
    y = rng.integers(0, k, size=rows)
    X = (centers[y] + rng.normal(size=(rows, d))).astype(np.float32)
    return X, y


def prepare(rows: int) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    DATA.mkdir(parents=True, exist_ok=True)
    paths = {
        "bin": DATA / f"bin_{rows}.parquet",
        "c10": DATA / f"c10_{rows}.parquet",
        "binstr": DATA / f"binstr_{rows}.parquet",
        "feat": DATA / "feat_1000000.parquet",
        "lab": DATA / "feat_labeled.parquet",
    }
    if not paths["bin"].exists():
        _write_proba_pool(paths["bin"], rows, 2, seed=1)
    if not paths["binstr"].exists():
        _write_proba_pool(paths["binstr"], rows, 2, seed=1, string_ids=True)
    if not paths["c10"].exists():
        _write_proba_pool(paths["c10"], rows, 10, seed=2)
    if not paths["feat"].exists():
        X, _ = _feature_data(1_000_000, seed=3)
        cols = {"id": np.arange(X.shape[0], dtype=np.int64)} | {f"f{j}": X[:, j] for j in range(X.shape[1])}
        pq.write_table(pa.table(cols), paths["feat"], row_group_size=1 << 18)
        X, y = _feature_data(20_000, seed=4)
        cols = {"id": np.arange(-X.shape[0], 0, dtype=np.int64), "y": y} | {f"f{j}": X[:, j] for j in range(X.shape[1])}
        pq.write_table(pa.table(cols), paths["lab"])
    return {k: str(v) for k, v in paths.items()}


# -- one configuration, in a child process -----------------------------------------
def _small_lgbm():
    from lightgbm import LGBMClassifier

    # one thread: OpenMP spinning on a shared 2-core machine costs more than it gains
    return LGBMClassifier(n_estimators=50, num_leaves=31, random_state=0, n_jobs=1, verbose=-1)


def _columns(k: int):
    from activemine.data.sources import PoolColumns

    return PoolColumns(weak_proba=tuple(f"p{j}" for j in range(k)))


# HW as the committed results were measured: equal quotas and a 20% easy share (its heaviest selection path;
# the defaults since are no quotas and 10%), weak model = the first 60 trees
HW_MEASURED = {"balance": "equal", "easy_share": 0.2, "weak_trees": 60}
# the same settings as `activemine mine` options (the pool brings the weak model's probabilities)
HW_CLI = ["--strategy", "hw", "--balance", "equal", "--easy-share", "0.2", "--seed", "0"]


def run_config(name: str, args) -> dict:
    paths = json.loads(args.paths)
    chunk = 1 << 18
    info: dict = {}
    t = time.perf_counter()
    cpu = time.process_time()
    if name.startswith("floor_"):
        import pyarrow.parquet as pq

        pool, k, budget = ("bin", 2, args.budget_bin) if name == "floor_bin" else ("c10", 10, args.budget_c10)
        table = pq.read_table(paths[pool], columns=[f"p{j}" for j in range(k)])
        p = np.stack([table.column(j).to_numpy() for j in range(k)], axis=1)
        lc = 1.0 - p.max(axis=1)
        chosen = np.argpartition(-lc, budget - 1)[:budget]
        rows = p.shape[0]
    elif name == "cli_bin":
        from activemine.cli import app

        out = DATA / "cli_bin_batch.parquet"
        cols = ",".join(f"p{j}" for j in range(2))
        try:
            app(
                [
                    "mine",
                    "--pool",
                    paths["bin"],
                    "--weak-proba-cols",
                    cols,
                    "--budget",
                    str(args.budget_bin),
                    "--chunk-size",
                    str(chunk),
                    "--out",
                    str(out),
                    "--quiet",
                    *HW_CLI,
                ]
            )
        except SystemExit as exc:
            if exc.code:
                raise
        import pyarrow.parquet as pq

        read_started, read_cpu = time.perf_counter(), time.process_time()
        chosen = pq.read_table(out, columns=["id"]).column("id").to_numpy()
        t += time.perf_counter() - read_started  # reading the batch back is not part of the run
        cpu += time.process_time() - read_cpu
        rows = args.rows
    elif name.split("_")[0] in ("local", "ray") and name.split("_")[1] in ("bin", "c10", "feat", "binstr"):
        from activemine import make_strategy
        from activemine.engines import run_engine

        engine, pool = name.split("_")
        # the model only matters for the feature pool; with probabilities nothing is trained (or imported)
        model = _small_lgbm() if pool == "feat" else "lightgbm"
        strategy = make_strategy("hw", random_state=0, model=model, **HW_MEASURED)
        labeled = None
        if pool == "feat":
            from activemine.data.chunks import LabeledSet
            from activemine.data.sources import PoolColumns
            from activemine.data.tables import read_table

            lab = read_table(paths["lab"])
            feats = [f"f{j}" for j in range(20)]
            labeled = LabeledSet(
                np.stack([lab.column(f).to_numpy() for f in feats], 1),
                lab.column("y").to_numpy(),
                lab.column("id").to_numpy(),
            )
            columns, budget = PoolColumns(features=tuple(feats)), args.budget_feat
        else:
            k = 10 if pool == "c10" else 2
            columns, budget = _columns(k), args.budget_c10 if pool == "c10" else args.budget_bin
        if engine == "ray":
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
            info["ray_init_s"] = time.perf_counter() - started
            t, cpu = time.perf_counter(), time.process_time()
        batch = run_engine(
            engine, strategy, paths[pool], columns=columns, budget=budget, labeled=labeled, chunk_size=chunk
        )
        chosen = batch.ids
        rows = 1_000_000 if pool == "feat" else args.rows
        info["quotas"] = {str(c): q for c, q in batch.quotas.items()}
    else:  # 1M rows in memory: ours against modAL and scikit-activeml on the same probabilities
        rng = np.random.default_rng(5)
        rows, k = 1_000_000, 10
        logits = rng.normal(scale=2.0, size=(rows, k))
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        ids = np.arange(rows)
        budget = 100_000 if not name.startswith("skal") else int(name.split("_")[1])
        t, cpu = time.perf_counter(), time.process_time()
        if name in ("mem_lc", "mem_hw"):
            from activemine import PoolChunk, make_strategy, mine

            strategy = (
                make_strategy("lc", random_state=0)
                if name == "mem_lc"
                else make_strategy("hw", random_state=0, **HW_MEASURED)
            )
            pool = PoolChunk(ids, proba=p, weak_proba=p if name == "mem_hw" else None)
            chosen = mine(strategy, pool, budget=budget, chunk_size=rows).ids
        elif name == "modal":
            from modAL.uncertainty import uncertainty_sampling

            class Fixed:  # modAL asks a classifier for probabilities; these are precomputed
                def predict_proba(self, X):
                    return p

            chosen = np.asarray(uncertainty_sampling(Fixed(), ids.reshape(-1, 1), n_instances=budget)[0])
        else:
            from skactiveml.pool import UncertaintySampling

            X = ids.reshape(-1, 1).astype(np.float64)
            clf = _fixed_skactiveml(p)
            qs = UncertaintySampling(method="least_confident", random_state=0)
            chosen = np.asarray(qs.query(X, np.full(rows, np.nan), clf=clf, fit_clf=False, batch_size=budget))
    wall = time.perf_counter() - t
    info["cpu_s"] = time.process_time() - cpu
    chosen = np.asarray(chosen)
    if chosen.dtype.kind in "UO":  # string ids "u000000017" -> 17, to compare with the integer pool's selection
        chosen = np.char.lstrip(chosen.astype(str), "u").astype(np.int64)
    np.save(DATA / f"sel_{name}.npy", np.sort(chosen))
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "config": name,
        "wall_s": wall,
        "rows": rows,
        "rows_per_s": rows / wall,
        "peak_rss_mb": maxrss_mb,
        "selected": int(np.asarray(chosen).size),
        **info,
    }


def _fixed_skactiveml(p):
    """A fitted scikit-activeml classifier whose probabilities are precomputed (row i of X holds i)."""
    from skactiveml.base import SkactivemlClassifier

    class Fixed(SkactivemlClassifier):
        def __init__(self, classes=None):
            super().__init__(classes=classes, missing_label=np.nan)

        def fit(self, X, y, sample_weight=None):
            self.classes_ = np.asarray(self.classes)
            return self

        def predict_proba(self, X):
            return p[np.asarray(X[:, 0], dtype=np.int64)]

    return Fixed(classes=np.arange(p.shape[1])).fit(None, None)


def _child(name: str, paths: dict, args, *, limit_gb: float | None = None, timeout: float = 900) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--run",
        name,
        "--paths",
        json.dumps(paths),
        "--rows",
        str(args.rows),
        "--budget-bin",
        str(args.budget_bin),
        "--budget-c10",
        str(args.budget_c10),
        "--budget-feat",
        str(args.budget_feat),
    ]

    def cap():
        if limit_gb:
            lim = int(limit_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, preexec_fn=cap, env=env)
    except subprocess.TimeoutExpired:
        return {"config": name, "error": f"timed out after {timeout} s"}
    process_s = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the whole child (all its threads; for Ray, not the actors' processes): far steadier
    # than wall time on a shared machine, where other people's jobs stretch every wall time
    process_cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        return {"config": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"process_s": process_s, "process_cpu_s": process_cpu_s}


def _same(a: str, b: str) -> bool:
    x, y = DATA / f"sel_{a}.npy", DATA / f"sel_{b}.npy"
    return x.exists() and y.exists() and np.array_equal(np.load(x), np.load(y))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--budget-bin", type=int, default=2_000_000)
    ap.add_argument("--budget-c10", type=int, default=1_000_000)
    ap.add_argument("--budget-feat", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--skal-batches", default="100,1000")
    ap.add_argument("--only", help="Comma-separated configurations to run (default: all).")
    ap.add_argument("--run")
    ap.add_argument("--paths")
    args = ap.parse_args()
    if args.run:
        print(json.dumps(run_config(args.run, args)))
        return
    started = time.perf_counter()
    load_at_start = os.getloadavg()
    paths = prepare(args.rows)
    print(f"data ready in {time.perf_counter() - started:.0f} s", flush=True)
    results = []

    only = set(args.only.split(",")) if args.only else None
    paired: dict = {}

    def measure(names, repeats=1, **kw):
        """Run ``names`` (one configuration or a group) ``repeats`` times, the group's members in turn
        (floor, ours, floor, ours, ...), so that both see the same load; medians per configuration."""
        names = [names] if isinstance(names, str) else [n for n in names if only is None or n in only]
        if not names or (only is not None and names[0] not in only):
            return None
        runs = {n: [] for n in names}
        for _ in range(repeats):
            for n in names:
                runs[n].append(_child(n, paths, args, **kw))
        for n in names:
            ok = [r for r in runs[n] if "error" not in r]
            if not ok:
                res = runs[n][0]
            else:
                res = dict(ok[0])
                for key in ("wall_s", "process_s", "cpu_s", "process_cpu_s", "rows_per_s", "peak_rss_mb"):
                    if key in res:
                        res[key] = float(np.median([r[key] for r in ok]))
                res["repeats"] = len(ok)
                res["wall_s_runs"] = [round(r["wall_s"], 3) for r in ok]
                res["process_s_runs"] = [round(r["process_s"], 3) for r in ok]
            results.append(res)
            print(json.dumps(res), flush=True)
        if len(names) > 1:  # the ratio to the group's first member (the floor), run by run, then the median
            for n in names[1:]:
                for key in ("wall_s", "process_s"):
                    pairs = [
                        (a[key], b[key])
                        for a, b in zip(runs[names[0]], runs[n])
                        if "error" not in a and "error" not in b
                    ]
                    if pairs:
                        paired[f"{n}_over_{names[0]}_{key}_paired_median"] = float(np.median([b / a for a, b in pairs]))

    measure(["floor_bin", "local_bin", "cli_bin"], args.repeats)
    measure(["floor_c10", "local_c10"], args.repeats)
    measure(["local_binstr"], 1)
    measure("local_feat", 1)
    for name in ("modal", "mem_lc", "mem_hw"):
        measure(name, args.repeats)
    for b in [int(v) for v in args.skal_batches.split(",") if v]:
        measure(f"skal_{b}", 1, limit_gb=12, timeout=300)
    if not args.no_ray:
        for pool in ("bin", "binstr", "c10", "feat"):
            measure(f"ray_{pool}", 1)
    by = {r["config"]: r for r in results}

    def ratio(a, b, key="wall_s"):
        return by[a][key] / by[b][key] if key in by.get(a, {}) and key in by.get(b, {}) else None

    summary = {
        "local_bin_over_floor": ratio("local_bin", "floor_bin"),
        "local_bin_over_floor_cpu": ratio("local_bin", "floor_bin", "cpu_s"),
        "cli_bin_over_floor_process": ratio("cli_bin", "floor_bin", "process_s"),
        "cli_bin_over_floor_process_cpu": ratio("cli_bin", "floor_bin", "process_cpu_s"),
        **paired,
        "local_c10_over_floor": ratio("local_c10", "floor_c10"),
        "local_c10_over_floor_cpu": ratio("local_c10", "floor_c10", "cpu_s"),
        "local_bin_peak_rss_mb": by.get("local_bin", {}).get("peak_rss_mb"),
        "cli_bin_peak_rss_mb": by.get("cli_bin", {}).get("peak_rss_mb"),
        "cli_equals_local_bin": _same("cli_bin", "local_bin"),
        "ray_binstr_over_local_binstr": ratio("ray_binstr", "local_binstr"),
        "mem_lc_over_modal": ratio("mem_lc", "modal"),
        "mem_hw_over_modal": ratio("mem_hw", "modal"),
        "mem_lc_same_ids_as_modal": _same("mem_lc", "modal"),
        "local_equals_ray": {p: _same(f"local_{p}", f"ray_{p}") for p in ("bin", "binstr", "c10", "feat")}
        if not args.no_ray
        else None,
    }
    print(json.dumps(summary, indent=1))
    OUT.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "argv": sys.argv[1:],
        "total_s": time.perf_counter() - started,
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
    }
    tmp = OUT / "results.json.tmp"
    tmp.write_text(json.dumps({"meta": meta, "summary": summary, "results": results}, indent=1))
    os.replace(tmp, OUT / "results.json")


if __name__ == "__main__":
    main()

"""Memory of mining a pool of image files, against the pool's size: 10^5 to 10^6 PNG files.

    nice -n 5 python benchmarks/image_pool_memory.py [--sizes 100000,300000,1000000] [--workers 2]

The pool is Fashion-MNIST's 70,000 images cycled to the largest size, 28x28 grayscale PNG files written once
under benchmarks/.data/image_pool_memory/pool-N/ (git-ignored) in folders of 1,000. Each size is mined in its
own subprocess (its peak RSS is its own) by activemine's engine, least confidence, 1,000 rows selected, from
two kinds of pool:

  folder    ``ImageFolderSource`` on a folder holding exactly that many files (the first folders of 1,000
            hard-linked into pool-N/sizes/SIZE/, so every size reads the same bytes); the listing is one
            Arrow string array of the relative paths
  manifest  a Parquet file with an ``id`` and a ``path`` column (absolute paths), read in chunks

The network is one linear layer on the pixels with seeded random weights: its cost is not what is measured
here (benchmarks/inference_images.py measures scoring speed against a plain torch loop). What is measured:
peak RSS of each run and its growth per 10^6 images, fitted by least squares over the sizes. The target:
bounded memory, that is growth per 10^6 images small against the run's base (what does grow with the pool is
the listing and the duplicate-id check, a few dozen bytes per image).
Results: benchmarks/results/image_pool_memory/results.json (this run only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from activemine.data.files import atomic_path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from inference_images import fashion_images, run_json  # noqa: E402  (a sibling benchmark script)

DATA = HERE / ".data" / "image_pool_memory"
RESULTS = HERE / "results" / "image_pool_memory" / "results.json"
PER_FOLDER = 1000
BUDGET = 1000


def image_path(root: Path, i: int) -> Path:
    return root / "all" / f"{i // PER_FOLDER:05d}" / f"{i:07d}.png"


def write_pool(images: int) -> Path:
    """Write the PNG files once; a marker file records what was written."""
    from PIL import Image

    root = DATA / f"pool-{images}"
    marker = DATA / f"pool-{images}.json"
    if marker.exists():
        return root
    pixels = fashion_images()
    started = time.perf_counter()
    for i in range(images):
        path = image_path(root, i)
        if i % PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        if i % 50_000 == 0:
            print(f"writing PNG files: {i:,}/{images:,}", file=sys.stderr, flush=True)
        Image.fromarray(pixels[i % pixels.shape[0]]).save(path)
    marker.write_text(json.dumps({"images": images, "seconds": time.perf_counter() - started}))
    return root


def size_folder(root: Path, size: int) -> Path:
    """A folder with the first ``size`` files, as hard links (no copy of the bytes)."""
    folder = root / "sizes" / str(size)
    if folder.exists():
        return folder
    tmp = root / "sizes" / f".{size}.tmp"
    for i in range(size):
        src = image_path(root, i)
        dst = tmp / src.parent.name / src.name
        if i % PER_FOLDER == 0:
            dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, dst)
    tmp.rename(folder)
    return folder


def manifest(root: Path, size: int) -> Path:
    """A Parquet file of ``size`` rows: ``id`` and ``path`` (absolute) of the first ``size`` files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = root / f"manifest-{size}.parquet"
    if not path.exists():
        paths = [str(image_path(root, i)) for i in range(size)]
        table = pa.table({"id": pa.array(np.arange(size, dtype=np.int64)), "path": pa.array(paths)})
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp, row_group_size=50_000)
    return path


class LinearNet:
    """One linear layer on 784 pixels as a scikit-learn style classifier (``fit`` records the classes)."""

    def __init__(self, n_jobs: int | None = None, random_state: int | None = None):
        self.n_jobs, self.random_state = n_jobs, random_state

    def get_params(self, deep: bool = True) -> dict:
        return {"n_jobs": self.n_jobs, "random_state": self.random_state}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.w_ = np.random.default_rng(0).normal(scale=0.05, size=(X.shape[1], self.classes_.size))
        return self

    def predict_proba(self, X) -> np.ndarray:
        z = np.asarray(X, dtype=np.float64) @ self.w_
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)


def run_child(kind: str, pool: Path, workers: int) -> dict:
    from activemine.data import LabeledSet
    from activemine.data.images import ImageSpec
    from activemine.data.sources import ImageFolderSource, PoolColumns, open_pool
    from activemine.engines.local import mine_stream
    from activemine.selection.strategies import make_strategy

    started = time.perf_counter()
    if kind == "folder":
        source = ImageFolderSource(pool, ImageSpec(n_jobs=workers))
    else:
        source = open_pool(pool, PoolColumns(image="path", image_spec=ImageSpec(n_jobs=workers)))
    opened = time.perf_counter() - started
    rng = np.random.default_rng(0)
    # ids of L the type of the pool's: relative paths for a folder, integers for the manifest
    ids = [f"labeled/{i}.png" for i in range(1000)] if kind == "folder" else np.arange(1000) - 10_000
    labeled = LabeledSet(rng.random((1000, 784)), np.arange(1000) % 10, np.asarray(ids))
    strategy = make_strategy("lc", model=LinearNet(), random_state=0, n_jobs=1)
    scored = [0]
    started = time.perf_counter()
    batch = mine_stream(
        strategy, source, budget=BUDGET, labeled=labeled, progress=lambda n: scored.__setitem__(0, scored[0] + n)
    )
    return {
        "images": int(source.num_rows),
        "open_seconds": opened,
        "seconds": time.perf_counter() - started,
        "scored": scored[0],
        "selected": len(batch),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(kind: str, pool: Path, workers: int) -> dict:
    return run_json([sys.executable, __file__, "--child", kind, "--pool", str(pool), "--workers", str(workers)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,300000,1000000", help="pool sizes, comma-separated")
    ap.add_argument("--workers", type=int, default=2, help="decode threads")
    ap.add_argument("--child", choices=["folder", "manifest"])
    ap.add_argument("--pool")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child, Path(args.pool), args.workers)))
        return
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    if len(sizes) < 2 or sizes[0] < BUDGET:
        raise SystemExit(f"--sizes needs at least two sizes of at least {BUDGET}, got {args.sizes!r}")
    root = write_pool(sizes[-1])
    runs = []
    for size in sizes:
        for kind, pool in (("folder", size_folder(root, size)), ("manifest", manifest(root, size))):
            r = measure(kind, pool, args.workers)
            r.update(kind=kind, pool=size, images_per_second=r["images"] / r["seconds"])
            runs.append(r)
            print(
                f"{kind:8s} {size:>9,} images: {r['seconds']:7.1f} s  {r['cpu_seconds']:7.1f} CPU s  "
                f"peak RSS {r['peak_rss_mb']:7.1f} MB",
                flush=True,
            )
    growth = {}
    for kind in ("folder", "manifest"):
        xs = np.asarray([r["pool"] for r in runs if r["kind"] == kind], dtype=np.float64)
        ys = np.asarray([r["peak_rss_mb"] for r in runs if r["kind"] == kind])
        slope, base = np.polyfit(xs / 1e6, ys, 1)
        growth[kind] = {
            "mb_per_million_images": float(slope),
            "base_mb": float(base),
            "bytes_per_image": float(slope * 2**20 / 1e6),
        }
        print(
            f"{kind:8s}: peak RSS {ys.min():.0f} to {ys.max():.0f} MB from {int(xs.min()):,} to {int(xs.max()):,} images; "
            f"fitted growth {slope:.1f} MB per 10^6 images ({growth[kind]['bytes_per_image']:.0f} bytes per image)"
        )
    out = {
        "command": "nice -n 5 python benchmarks/image_pool_memory.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "settings": {"workers": args.workers, "budget": BUDGET, "image": [1, 28, 28], "strategy": "lc"},
        "runs": runs,
        "growth": growth,
    }
    with atomic_path(RESULTS) as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

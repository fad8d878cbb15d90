"""Scoring a pool of image files with a network: activemine's streaming path against a plain torch loop.

    nice -n 5 python benchmarks/inference_images.py [--images 200000] [--small 50000] [--workers 2] [--threads 2]

The pool is Fashion-MNIST's 70,000 images cycled to ``--images`` 28x28 grayscale PNG files, written once
under benchmarks/.data/inference_images/pool-IMAGES-SMALL/ (git-ignored) in folders of 1,000: ``a/`` holds the first
``--small`` files, ``b/`` the rest, so ``a/`` is the small pool and the whole folder the large one.

The network is a small CNN (two convolutions, two dense layers, 10 classes) with seeded random weights:
only its cost matters here. Each configuration runs in its own subprocess (its peak RSS is its own):

  floor   a plain torch loop: a Dataset opening each file with Pillow, a DataLoader with --workers worker
          processes and batches of 512, the network's softmax and least confidence per batch
  ours    activemine's engine: ImageFolderSource (the listing, images decoded per chunk by --workers threads,
          the next chunk read while one is scored) and LocalExecutor selecting 1,000 rows by least
          confidence, the network wrapped as a scikit-learn classifier (fit only records the classes)

  check   the check every command makes before fitting (open and verify every image, no decode), at the
          large size only, reported apart

Both use --threads torch threads. Figures: seconds, CPU seconds (the process and every process it started,
imports included: on a shared machine the steadier measure), images per second, the ratios ours/floor at
each pool size (the target is at most 1.3), and peak RSS at both sizes (the target: flat in the pool
size). Results: benchmarks/results/inference_images/results.json (this run only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data" / "inference_images"
RESULTS = HERE / "results" / "inference_images" / "results.json"
FASHION = Path("/usr/share/datasets/fashion-mnist")
BATCH = 512
PER_FOLDER = 1000


def fashion_images() -> np.ndarray:
    """The 70,000 Fashion-MNIST images ``(70000, 28, 28)`` uint8 (train then test)."""
    parts = []
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        with gzip.open(FASHION / name, "rb") as fh:
            data = fh.read()
        parts.append(np.frombuffer(data, dtype=np.uint8, offset=16).reshape(-1, 28, 28))
    return np.concatenate(parts)


def image_path(root: Path, i: int, small: int) -> Path:
    part, j = ("a", i) if i < small else ("b", i - small)
    return root / part / f"{j // PER_FOLDER:04d}" / f"{i:07d}.png"


def write_pool(images: int, small: int) -> Path:
    """Write the PNG files once; a marker file records what was written."""
    from PIL import Image

    root = DATA / f"pool-{images}-{small}"  # one folder per layout: a smaller trial run never mixes with it
    marker = DATA / f"pool-{images}-{small}.json"
    if marker.exists():
        return root
    pixels = fashion_images()
    started = time.perf_counter()
    for i in range(images):
        path = image_path(root, i, small)
        if i % PER_FOLDER == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            print(f"writing PNG files: {i:,}/{images:,}", file=sys.stderr, flush=True)
        Image.fromarray(pixels[i % pixels.shape[0]]).save(path)
    marker.write_text(json.dumps({"images": images, "small": small, "seconds": time.perf_counter() - started}))
    return root


def build_net():
    import torch
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    ).eval()


class FrozenCNN:
    """The network as a scikit-learn style classifier: ``fit`` records the classes, ``predict_proba``
    runs the network on rows of 784 pixels in batches of 512."""

    def __init__(self, batch_size: int = BATCH, n_jobs: int | None = None, random_state: int | None = None):
        self.batch_size, self.n_jobs, self.random_state = batch_size, n_jobs, random_state

    def get_params(self, deep: bool = True) -> dict:
        return {"batch_size": self.batch_size, "n_jobs": self.n_jobs, "random_state": self.random_state}

    def set_params(self, **params):
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.net_ = build_net()
        return self

    def predict_proba(self, X) -> np.ndarray:
        import torch

        X = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)).reshape(-1, 1, 28, 28)
        out = np.empty((X.shape[0], 10), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, X.shape[0], self.batch_size):
                out[start : start + self.batch_size] = torch.softmax(self.net_(X[start : start + self.batch_size]), 1)
        return out


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_floor(root: Path, workers: int, threads: int) -> dict:
    import torch
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset

    from activemine.data.images import list_images

    torch.set_num_threads(threads)
    paths = [str(root / p) for p in list_images(root).to_pylist()]

    class Files(Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            with Image.open(paths[i]) as im:
                a = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
            return torch.from_numpy(a).unsqueeze(0)

    net = build_net()
    loader = DataLoader(Files(), batch_size=BATCH, num_workers=workers)
    started = time.perf_counter()
    lc = []
    with torch.inference_mode():
        for x in loader:
            p = torch.softmax(net(x), 1)
            lc.append((1 - p.max(1).values).numpy())
    seconds = time.perf_counter() - started
    return {"images": len(paths), "seconds": seconds, "scored": int(sum(a.size for a in lc))}


def run_ours(root: Path, workers: int, threads: int) -> dict:
    import sklearn.base  # noqa: F401  imported by the engine to clone the model: an import, not inference
    import torch

    from activemine.data import LabeledSet
    from activemine.data.images import ImageSpec, decode_images, list_images
    from activemine.data.sources import ImageFolderSource
    from activemine.engines.local import mine_stream
    from activemine.selection.strategies import make_strategy

    torch.set_num_threads(threads)
    started = time.perf_counter()
    source = ImageFolderSource(root, ImageSpec(n_jobs=workers))
    listed = time.perf_counter() - started
    first = list_images(root).slice(0, 1000)
    X = decode_images(first, ImageSpec((28, 28), "L", str(root)))
    y = np.arange(1000) % 10
    labeled = LabeledSet(X, y, np.asarray([f"L{i}" for i in range(1000)]))
    strategy = make_strategy("lc", model=FrozenCNN(), random_state=0, n_jobs=threads)
    scored = [0]
    started = time.perf_counter()
    batch = mine_stream(
        strategy, source, budget=1000, labeled=labeled, progress=lambda n: scored.__setitem__(0, scored[0] + n)
    )
    seconds = time.perf_counter() - started
    return {
        "images": source.num_rows,
        "seconds": seconds,
        "listing_seconds": listed,
        "scored": scored[0],
        "selected": len(batch),
        "chunk_rows": source.columns.image_spec.chunk_rows,
    }


def run_check(root: Path, workers: int, threads: int) -> dict:
    """The check every command makes before fitting: open and verify each image (no decode)."""
    from activemine.data.images import ImageSpec
    from activemine.data.sources import ImageFolderSource

    source = ImageFolderSource(root, ImageSpec(n_jobs=workers))
    started, cpu = time.perf_counter(), time.process_time()
    bad = source.check_images()
    return {
        "images": source.num_rows,
        "seconds": time.perf_counter() - started,
        "check_cpu_seconds": time.process_time() - cpu,
        "bad": len(bad),
    }


def child(config: str, root: Path, workers: int, threads: int) -> dict:
    out = {"floor": run_floor, "ours": run_ours, "check": run_check}[config](root, workers, threads)
    out["peak_rss_mb"] = _rss_mb()
    return out


def run_child(config: str, folder: Path, args) -> dict:
    """One configuration in its own process (:func:`run_json`)."""
    cmd = [sys.executable, __file__, "--child", config, "--root", str(folder)]
    return run_json(cmd + ["--workers", str(args.workers), "--threads", str(args.threads)])


def run_json(cmd: list[str]) -> dict:
    """Run ``cmd``, a child printing one JSON object, and return it with ``cpu_seconds``: the CPU time of
    that process and every process it started (DataLoader workers included), imports and listing included."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_seconds"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=200_000)
    ap.add_argument("--small", type=int, default=50_000)
    ap.add_argument("--workers", type=int, default=2, help="data-loading workers (processes) / decode threads")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--child", choices=["floor", "ours", "check"])
    ap.add_argument("--root")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.root), args.workers, args.threads)))
        return
    if not 0 < args.small < args.images:
        raise SystemExit(f"--small must be in (0, --images), got {args.small}")
    root = write_pool(args.images, args.small)
    runs = []
    for size, folder in ((args.small, root / "a"), (args.images, root)):
        for config in ("floor", "ours") if size == args.small else ("floor", "ours", "check"):
            result = run_child(config, folder, args)
            result.update(config=config, pool=size, images_per_second=result["images"] / result["seconds"])
            runs.append(result)
            print(
                f"{config:5s} {size:>9,} images: {result['seconds']:7.1f} s  {result['cpu_seconds']:7.1f} CPU s  "
                f"{result['images_per_second']:8,.0f} images/s  peak RSS {result['peak_rss_mb']:7.1f} MB",
                flush=True,
            )
    by = {(r["config"], r["pool"]): r for r in runs}
    sizes = (args.small, args.images)
    ratios = {str(n): by[("ours", n)]["seconds"] / by[("floor", n)]["seconds"] for n in sizes}
    cpu_ratios = {str(n): by[("ours", n)]["cpu_seconds"] / by[("floor", n)]["cpu_seconds"] for n in sizes}
    rss_growth = by[("ours", args.images)]["peak_rss_mb"] - by[("ours", args.small)]["peak_rss_mb"]
    for n in ratios:
        print(f"ours / floor at {int(n):,} images: {ratios[n]:.2f}x wall, {cpu_ratios[n]:.2f}x CPU (target <= 1.3)")
    print(f"ours: peak RSS {rss_growth:+.1f} MB from {args.small:,} to {args.images:,} images")
    check = by[("check", args.images)]
    print(f"check before fitting: {check['seconds']:.1f} s for {check['images']:,} images (not in the ratios)")
    import torch

    out = {
        "command": "nice -n 5 python benchmarks/inference_images.py " + " ".join(sys.argv[1:]),
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": _cpus()},
        "settings": {"workers": args.workers, "threads": args.threads, "batch": BATCH, "image": [1, 28, 28]},
        "runs": runs,
        "ratio_ours_over_floor": ratios,
        "cpu_ratio_ours_over_floor": cpu_ratios,
        "ours_peak_rss_growth_mb": rss_growth,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS}")


def _cpus() -> int:
    from activemine.models import available_cpus

    return available_cpus()


if __name__ == "__main__":
    main()

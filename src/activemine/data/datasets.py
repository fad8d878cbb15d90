"""Built-in datasets: Fashion-MNIST from local files, and scikit-learn's digits.

Nothing is downloaded. Fashion-MNIST is read from the IDX files that Debian's
``dataset-fashion-mnist`` package installs (or from ``$ACTIVEMINE_FASHION_MNIST``).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from activemine.errors import InputError

__all__ = ["DATASETS", "Dataset", "fashion_mnist_available", "load_dataset"]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


@dataclass(frozen=True)
class Dataset:
    """Features ``(n, d)`` and integer labels ``(n,)`` for train and test, and class names;
    ``image_shape`` ``(C, H, W)`` when each row is an image flattened channel-first."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int] | None = None
    embedding_train: np.ndarray | None = None  # (n_train, e): embeddings a user's file brings for its train rows


def _fashion_dir() -> Path:
    return Path(os.environ.get("ACTIVEMINE_FASHION_MNIST", FASHION_MNIST_DIR))


def fashion_mnist_available() -> bool:
    """Whether the Fashion-MNIST IDX files are on this machine."""
    d = _fashion_dir()
    return all((d / f).exists() for pair in _FILES.values() for f in pair)


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise InputError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _load_fashion_mnist() -> Dataset:
    d = _fashion_dir()
    if not fashion_mnist_available():
        raise InputError(
            f"Fashion-MNIST files not found in {d}; install Debian's dataset-fashion-mnist "
            "or set ACTIVEMINE_FASHION_MNIST to a folder holding the four IDX .gz files"
        )
    arrays = {}
    for split, (images, labels) in _FILES.items():
        X = _read_idx(d / images)
        arrays[split] = (X.reshape(X.shape[0], -1).astype(np.float32) / 255.0, _read_idx(d / labels).astype(np.int64))
    return Dataset("fashion-mnist", *arrays["train"], *arrays["test"], FASHION_MNIST_CLASSES, (1, 28, 28))


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(y.size)
    X, y = X[order].astype(np.float32) / 16.0, y[order].astype(np.int64)
    cut = int(0.75 * y.size)  # digits has no official split; a fixed seeded one
    return Dataset("digits", X[:cut], y[:cut], X[cut:], y[cut:], tuple(str(i) for i in range(10)), (1, 8, 8))


DATASETS = {"fashion-mnist": _load_fashion_mnist, "digits": _load_digits}


def load_dataset(name: str) -> Dataset:
    """Load a built-in dataset by name (see :data:`DATASETS`)."""
    if name not in DATASETS:
        raise InputError(f"unknown dataset {name!r}; expected one of {sorted(DATASETS)}")
    return DATASETS[name]()

"""Creating a campaign from L and U, and reading its samples back: features, labels and views.

A sample is shown to people in one of three *views*, chosen at init:

* ``image``: the features are pixels named ``px0..px{n-1}`` with ``n`` a square
  (Fashion-MNIST's 784 give 28x28), rendered as a grayscale PNG;
* ``text``: a string column of the pool (``text_col``) is shown as text;
* ``table``: the first fields of the row are shown as a table.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.campaign.store import CampaignStore
from activemine.errors import CampaignError, InputError, SingleClassError
from activemine.selection import check_ids
from activemine.tables import read_table, require_columns

__all__ = ["PoolRows", "detect_view", "encode_png", "init_campaign", "labeled_rows", "labeled_training_set", "pixels_to_png"]

_PIXEL = re.compile(r"px(\d+)$")
TABLE_VIEW_FIELDS = 30


def detect_view(features: list[str], pool_columns: list[str], text_col: str | None) -> dict:
    """The view of a campaign's samples: ``{"kind": "image", "shape": [h, w]}``, text or table."""
    if text_col is not None:
        require_columns(pool_columns, [text_col], where="the pool")
        return {"kind": "text", "column": text_col}
    numbers = [int(m.group(1)) for m in map(_PIXEL.match, features) if m]
    side = math.isqrt(len(features))
    if features and len(numbers) == len(features) and sorted(numbers) == list(range(len(features))) and side * side == len(features):
        return {"kind": "image", "shape": [side, side], "columns": [f"px{i}" for i in range(len(features))]}
    if "text" in pool_columns and "text" not in features:
        return {"kind": "text", "column": "text"}
    return {"kind": "table", "columns": features[:TABLE_VIEW_FIELDS]}


def _copy_as_parquet(src: Path, dst: Path) -> pa.Table:
    table = read_table(src)
    if src.suffix.lower() in (".parquet", ".pq"):
        shutil.copyfile(src, dst)
    else:
        pq.write_table(table, dst)
    return table


def _id_kind(ids: np.ndarray) -> str:
    return "int" if ids.dtype.kind == "i" else "str"


def init_campaign(folder, *, pool, labeled, label_col: str = "y", id_col: str = "id",
                  text_col: str | None = None, classes=None) -> CampaignStore:  # fmt: skip
    """Create a campaign in ``folder`` from the pool ``pool`` and the labeled set ``labeled`` (Parquet or CSV).

    Both tables are copied into ``folder/data`` as Parquet; the features are
    L's columns other than the id and the label, and U must have them all.
    ``classes`` fixes the class list (default: the labels present in L).
    """
    folder = Path(folder)
    if (folder / "campaign.db").exists():
        raise CampaignError(f"{str(folder)!r} already holds a campaign; choose another folder")
    data = folder / "data"
    if data.exists() and any(data.iterdir()):
        raise CampaignError(f"{str(data)!r} already exists and is not empty; choose a new campaign folder")
    data.mkdir(parents=True, exist_ok=True)
    try:
        L = _copy_as_parquet(Path(labeled), data / "labeled.parquet")
        U = _copy_as_parquet(Path(pool), data / "pool.parquet")
        require_columns(L.column_names, [id_col, label_col], where=str(labeled))
        features = [c for c in L.column_names if c not in (id_col, label_col)]
        if not features:
            raise InputError(f"{labeled} has no feature columns besides {id_col!r} and {label_col!r}")
        require_columns(U.column_names, [id_col, *features], where=str(pool))
        pool_ids = check_ids(U.column(id_col).to_numpy(zero_copy_only=False), name=f"{pool} column {id_col!r}")
        l_ids = check_ids(L.column(id_col).to_numpy(zero_copy_only=False), name=f"{labeled} column {id_col!r}")
        if _id_kind(pool_ids) != _id_kind(l_ids):
            raise InputError(f"ids of {pool} are {pool_ids.dtype} but ids of {labeled} are {l_ids.dtype}; they must be of one kind")
        both = np.intersect1d(pool_ids, l_ids)
        if both.size:
            raise InputError(f"{both.size} ids are both in the pool and in the labeled set, e.g. {both[:5].tolist()}")
        y = np.asarray(L.column(label_col).to_pylist(), dtype=object)
        if any(v is None for v in y):
            raise InputError(f"column {label_col!r} of {labeled} has missing labels")
        found = sorted(set(y.tolist()))
        class_list = list(classes) if classes is not None else found
        unknown = sorted(set(found) - set(class_list))
        if unknown:
            raise InputError(f"labels {unknown[:10]} of {labeled} are not among the given classes {class_list}")
        if len(class_list) < 2:
            raise SingleClassError(f"a campaign needs at least two classes, got {class_list}")
        if len({str(c) for c in class_list}) != len(class_list):
            raise InputError(f"classes {class_list} are not distinct as text")
        meta = {
            "id_col": id_col, "label_col": label_col, "id_kind": _id_kind(pool_ids),
            "classes": [c.item() if isinstance(c, np.generic) else c for c in class_list],
            "features": features, "view": detect_view(features, U.column_names, text_col),
        }  # fmt: skip
        samples = [(str(s), "pool", i) for i, s in enumerate(pool_ids.tolist())]
        samples += [(str(s), "labeled", i) for i, s in enumerate(l_ids.tolist())]
        initial = [(str(s), str(v)) for s, v in zip(l_ids.tolist(), y.tolist())]
        return CampaignStore.create(folder, meta=meta, samples=samples, initial_labels=initial)
    except BaseException:
        if not (folder / "campaign.db").exists():
            shutil.rmtree(data, ignore_errors=True)
        raise


def _feature_matrix(table: pa.Table, features: list[str]) -> np.ndarray:
    out = np.empty((table.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        out[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    return out


class PoolRows:
    """The campaign's pool (or labeled) table in memory: ids, features and single rows for views."""

    def __init__(self, store: CampaignStore, origin: str = "pool", *, features: bool = True):
        meta = store.meta
        self.store = store
        self.table = pq.read_table(store.data_path(origin))
        self.sids = [str(s) for s in self.table.column(meta["id_col"]).to_pylist()]
        self.ids = check_ids(np.asarray(store.typed_ids(self.sids)), name=f"{origin} ids")
        self.X = _feature_matrix(self.table, meta["features"]) if features else None

    def row(self, index: int) -> dict:
        """One row as a plain dict of column -> value."""
        return {k: v[0] for k, v in self.table.slice(index, 1).to_pydict().items()}


def labeled_rows(store: CampaignStore, pool: PoolRows, labeled: PoolRows, current: dict | None = None):
    """Row indices into L ``(a,)`` and into U ``(b,)`` of every labeled, unflagged sample, and their typed labels ``(a + b,)``.

    ``current`` (sid -> label text) replaces the store's unflagged labels, e.g. with consensus labels.
    """
    current = store.current_labels() if current is None else current
    index = {"pool": {s: i for i, s in enumerate(pool.sids)}, "labeled": {s: i for i, s in enumerate(labeled.sids)}}
    rows = {"pool": [], "labeled": []}
    labels = {"pool": [], "labeled": []}
    for sid, origin in store.read("SELECT sid, origin FROM samples ORDER BY origin, row"):
        if sid in current:
            rows[origin].append(index[origin][sid])
            labels[origin].append(store.typed_label(current[sid]))
    as_index = lambda r: np.asarray(r, dtype=np.int64)  # noqa: E731
    return as_index(rows["labeled"]), as_index(rows["pool"]), np.asarray(labels["labeled"] + labels["pool"])


def labeled_training_set(store: CampaignStore, pool: PoolRows, labeled: PoolRows):
    """Features ``(n, d)``, typed labels ``(n,)`` and typed ids ``(n,)`` of every labeled, unflagged sample."""
    l_rows, p_rows, y = labeled_rows(store, pool, labeled)
    X = np.concatenate([labeled.X[l_rows], pool.X[p_rows]])
    ids = np.concatenate([labeled.ids[l_rows], pool.ids[p_rows]])
    return X, y, ids


def encode_png(gray: np.ndarray) -> bytes:
    """A grayscale ``(h, w)`` uint8 image as PNG bytes (no imaging library needed)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))  # filter type 0 per scanline

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pixels_to_png(pixels, shape, *, scale: int = 1) -> bytes:
    """Pixel values (0..1 or 0..255) as a PNG of ``shape``, each pixel repeated ``scale`` times per side."""
    arr = np.asarray(pixels, dtype=np.float64).reshape(shape)
    if arr.size and np.nanmax(arr) <= 1.0:
        arr = arr * 255.0
    gray = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if scale > 1:
        gray = np.repeat(np.repeat(gray, scale, axis=0), scale, axis=1)
    return encode_png(np.ascontiguousarray(gray))

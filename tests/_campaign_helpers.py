"""Shared builders for the campaign tests: small pools with image-like pixel columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from activemine.campaign import CampaignStore, init_campaign, mine_round
from activemine.selection.strategies import make_strategy


def pixel_table(X, ids, y=None) -> pa.Table:
    cols = {"id": pa.array(ids)}
    for j in range(X.shape[1]):
        cols[f"px{j}"] = pa.array(X[:, j])
    if y is not None:
        cols["y"] = pa.array(y)
    return pa.table(cols)


def digits_files(tmp_path, n_labeled: int = 150, n_pool: int | None = None):
    """L and U Parquet files from scikit-learn's digits (8x8 pixels, 10 classes); returns (L, U, truth)."""
    from activemine.data.datasets import load_dataset

    d = load_dataset("digits")
    n_pool = n_pool or d.y_train.size - n_labeled
    X, y = d.X_train, d.y_train
    ids = np.arange(10_000, 10_000 + n_labeled + n_pool)
    L, U = tmp_path / "L.parquet", tmp_path / "U.parquet"
    pq.write_table(pixel_table(X[:n_labeled], ids[:n_labeled], y[:n_labeled]), L)
    pq.write_table(pixel_table(X[n_labeled : n_labeled + n_pool], ids[n_labeled:]), U)
    truth = dict(zip(ids[n_labeled:].tolist(), y[n_labeled : n_labeled + n_pool].tolist()))
    return L, U, truth


def digits_campaign(tmp_path, *, budget: int = 40, strategy: str = "lc", n_pool: int | None = None):
    """A campaign over digits with one mined round; returns (store, truth)."""
    L, U, truth = digits_files(tmp_path, n_pool=n_pool)
    store = init_campaign(tmp_path / "camp", pool=U, labeled=L, label_col="y", id_col="id")
    if budget:
        mine_round(store, make_strategy(strategy, model="logreg", random_state=0), budget=budget)
    return store, truth


def synthetic_campaign(tmp_path, n_pool: int, *, n_labeled: int = 40, n_classes: int = 3) -> CampaignStore:
    """A campaign with ``n_pool`` pool samples of two features, fast to build at any size."""
    rng = np.random.default_rng(0)
    n = n_pool + n_labeled
    cols = {"id": np.arange(n), "f0": rng.normal(size=n), "f1": rng.normal(size=n)}
    y = np.arange(n_labeled) % n_classes
    tmp_path.mkdir(parents=True, exist_ok=True)
    L, U = tmp_path / "L.parquet", tmp_path / "U.parquet"
    pq.write_table(pa.table({k: v[:n_labeled] for k, v in cols.items()} | {"y": y}), L)
    pq.write_table(pa.table({k: v[n_labeled:] for k, v in cols.items()}), U)
    return init_campaign(tmp_path / "camp", pool=U, labeled=L)


def proba_pool(n_pool: int, *, seed: int = 0, id_type=None, prefix: str = "s") -> pa.Table:
    """A pool of binary probabilities (a business model ``p0,p1``, a weak one ``w0,w1``) with string ids."""
    rng = np.random.default_rng(seed)
    p = rng.random(n_pool).astype(np.float32)
    w = np.clip(p + rng.normal(0, 0.15, n_pool), 0, 1).astype(np.float32)
    ids = pa.array([f"{prefix}{i:07d}" for i in rng.permutation(n_pool)], type=id_type or pa.string())
    return pa.table({"id": ids, "p0": 1 - p, "p1": p, "w0": 1 - w, "w1": w})


def proba_campaign(tmp_path, n_pool: int, *, n_labeled: int = 100, id_type=None) -> CampaignStore:
    """A campaign over a probability pool (string ids, ``--proba-cols p0,p1 --weak-proba-cols w0,w1``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    U, L = tmp_path / "U.parquet", tmp_path / "L.parquet"
    pq.write_table(proba_pool(n_pool, id_type=id_type), U, row_group_size=1 << 16)
    pq.write_table(pa.table({"id": [f"L{i}" for i in range(n_labeled)], "y": np.arange(n_labeled) % 2}), L)
    return init_campaign(tmp_path / "camp", pool=U, labeled=L, proba_cols=[["p0", "p1"]], weak_proba_cols=["w0", "w1"])


def snapshot(store: CampaignStore) -> dict:
    """Every row of every table, to compare the store before and after."""
    tables = ["meta", "samples", "rounds", "batches", "assignments", "skips", "imports", "labels"]
    return {t: sorted(store.read(f"SELECT * FROM {t}"), key=repr) for t in tables}

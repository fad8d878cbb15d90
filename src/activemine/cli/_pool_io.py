"""Turning tables into a labeled set and a pool for the CLI commands."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from activemine.data import LabeledSet, PoolChunk
from activemine.errors import InputError
from activemine.selection import check_ids
from activemine.tables import read_table, require_columns


def split_columns(spec: str | None) -> list[list[str]]:
    """``"a0,a1;b0,b1"`` -> ``[["a0", "a1"], ["b0", "b1"]]`` (groups per committee member)."""
    if not spec:
        return []
    return [[c.strip() for c in group.split(",") if c.strip()] for group in spec.split(";") if group.strip()]


def numeric_matrix(table: pa.Table, columns: list[str], *, where: str) -> np.ndarray:
    """The given columns as a float ``(n, len(columns))`` array; non-numeric columns are an error."""
    require_columns(table.column_names, columns, where=where)
    out = np.empty((table.num_rows, len(columns)), dtype=np.float64)
    for j, name in enumerate(columns):
        col = table.column(name)
        if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type)):
            raise InputError(f"column {name!r} of {where} must be numeric, got {col.type}")
        out[:, j] = col.to_numpy(zero_copy_only=False)
    return out


@dataclass
class MiningInputs:
    labeled: LabeledSet | None
    pool: PoolChunk
    feature_columns: list[str]


def load_mining_inputs(*, labeled_path, pool_path, label_col: str, id_col: str,
                       proba_cols: str | None, weak_proba_cols: str | None) -> MiningInputs:  # fmt: skip
    """Read L and U and build the labeled set and the pool for :func:`activemine.mining.mine`.

    With probability columns the pool's features are not read and L is
    optional; otherwise the features are L's columns other than the id and
    label, and U must have them all.
    """
    groups = split_columns(proba_cols)
    weak = split_columns(weak_proba_cols)
    if len(weak) > 1:
        raise InputError(f"--weak-proba-cols takes one group of columns, got {len(weak)}")
    use_proba = bool(groups or weak)
    labeled_table = None
    if labeled_path is not None:
        labeled_table = read_table(labeled_path)
        require_columns(labeled_table.column_names, [id_col, label_col], where=str(labeled_path))
    elif not use_proba:
        raise InputError("--labeled is required unless the pool brings probabilities (--proba-cols / --weak-proba-cols)")

    features: list[str] = []
    if labeled_table is not None and not use_proba:
        features = [c for c in labeled_table.column_names if c not in (id_col, label_col)]
        if not features:
            raise InputError(f"{labeled_path} has no feature columns besides {id_col!r} and {label_col!r}")
    needed = [id_col] + features + [c for g in groups + weak for c in g]
    pool_table = read_table(pool_path, columns=list(dict.fromkeys(needed)))
    if pool_table.num_rows == 0:
        from activemine.errors import EmptyPoolError

        raise EmptyPoolError(f"the pool {str(pool_path)!r} has no rows")
    where = str(pool_path)
    pool_ids = check_ids(pool_table.column(id_col).to_numpy(zero_copy_only=False), name=f"{where} column {id_col!r}")

    proba = member = weak_proba = None
    if len(groups) == 1:
        proba = numeric_matrix(pool_table, groups[0], where=where)
    elif len(groups) > 1:
        widths = {len(g) for g in groups}
        if len(widths) != 1:
            raise InputError(f"every member's probability columns must have the same count, got {[len(g) for g in groups]}")
        member = np.stack([numeric_matrix(pool_table, g, where=where) for g in groups])
        proba = member.mean(axis=0)
    if weak:
        weak_proba = numeric_matrix(pool_table, weak[0], where=where)
    X = numeric_matrix(pool_table, features, where=where) if features else None
    pool = PoolChunk(pool_ids, X=X, proba=proba, weak_proba=weak_proba, member_proba=member)

    labeled = None
    if labeled_table is not None:
        y = labeled_table.column(label_col).to_numpy(zero_copy_only=False)
        ids = labeled_table.column(id_col).to_numpy(zero_copy_only=False)
        Xl = numeric_matrix(labeled_table, features, where=str(labeled_path)) if features else None
        labeled = LabeledSet(Xl, y, ids)
    return MiningInputs(labeled, pool, features)


def load_streaming_inputs(*, labeled_path, pool_path, label_col: str, id_col: str,
                          proba_cols: str | None, weak_proba_cols: str | None):  # fmt: skip
    """Like :func:`load_mining_inputs`, but the pool is opened as a stream
    (:class:`activemine.sources.PoolSource`) instead of being read whole."""
    from activemine.sources import PoolColumns, open_pool

    groups = split_columns(proba_cols)
    weak = split_columns(weak_proba_cols)
    if len(weak) > 1:
        raise InputError(f"--weak-proba-cols takes one group of columns, got {len(weak)}")
    use_proba = bool(groups or weak)
    labeled_table = None
    if labeled_path is not None:
        labeled_table = read_table(labeled_path)
        require_columns(labeled_table.column_names, [id_col, label_col], where=str(labeled_path))
    elif not use_proba:
        raise InputError("--labeled is required unless the pool brings probabilities (--proba-cols / --weak-proba-cols)")
    features: list[str] = []
    if labeled_table is not None and not use_proba:
        features = [c for c in labeled_table.column_names if c not in (id_col, label_col)]
        if not features:
            raise InputError(f"{labeled_path} has no feature columns besides {id_col!r} and {label_col!r}")
    columns = PoolColumns(id=id_col, features=tuple(features), proba=tuple(tuple(g) for g in groups),
                          weak_proba=tuple(weak[0]) if weak else ())  # fmt: skip
    source = open_pool(pool_path, columns)
    labeled = None
    if labeled_table is not None:
        y = labeled_table.column(label_col).to_numpy(zero_copy_only=False)
        ids = labeled_table.column(id_col).to_numpy(zero_copy_only=False)
        Xl = numeric_matrix(labeled_table, features, where=str(labeled_path)) if features else None
        labeled = LabeledSet(Xl, y, ids)
    return labeled, source

"""Turning tables into a labeled set and a pool for the CLI commands."""

from __future__ import annotations

from activemine.data.chunks import LabeledSet
from activemine.data.tables import numeric_matrix, read_table, require_columns
from activemine.errors import InputError


def split_columns(spec: str | None) -> list[list[str]]:
    """``"a0,a1;b0,b1"`` -> ``[["a0", "a1"], ["b0", "b1"]]`` (groups per committee member)."""
    if not spec:
        return []
    return [[c.strip() for c in group.split(",") if c.strip()] for group in spec.split(";") if group.strip()]


def load_streaming_inputs(
    *,
    labeled_path,
    pool_path,
    label_col: str,
    id_col: str,
    proba_cols: str | None,
    weak_proba_cols: str | None,
    embedding: tuple = (),
    dedup_col: str | None = None,
):
    """Read L and open U as a stream (:class:`activemine.data.sources.PoolSource`) for ``mine``.

    With probability columns the pool's features are not read and L is
    optional; otherwise the features are L's columns other than the id and
    label, and U must have them all. Returns ``(labeled or None, source)``.
    """
    from activemine.data.sources import PoolColumns, open_pool

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
        raise InputError(
            "--labeled is required unless the pool brings probabilities (--proba-cols / --weak-proba-cols)"
        )
    features: list[str] = []
    if labeled_table is not None and not use_proba:
        features = [c for c in labeled_table.column_names if c not in (id_col, label_col, dedup_col)]
        if not features:
            raise InputError(f"{labeled_path} has no feature columns besides {id_col!r} and {label_col!r}")
    columns = PoolColumns(
        id=id_col,
        features=tuple(features),
        proba=tuple(tuple(g) for g in groups),
        weak_proba=tuple(weak[0]) if weak else (),
        embedding=tuple(embedding),
        dedup=dedup_col,
    )
    source = open_pool(pool_path, columns)
    labeled = None
    if labeled_table is not None:
        y = labeled_table.column(label_col).to_numpy(zero_copy_only=False)
        ids = labeled_table.column(id_col).to_numpy(zero_copy_only=False)
        Xl = numeric_matrix(labeled_table, features, where=str(labeled_path)) if features else None
        labeled = LabeledSet(Xl, y, ids)
    return labeled, source

"""Label and probability checks shared by the dirty-data modules and noise simulation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from activemine.errors import InputError, ProbabilityError, UnknownLabelError
from activemine.selection.scores import check_proba


def label_indices(labels, classes: Sequence | None, *, k: int | None = None, name: str = "labels") -> np.ndarray:
    """Labels ``(n,)`` -> column indices ``(n,)`` int64 into ``classes`` (or ``0..k-1`` when None)."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {labels.shape}")
    if classes is None:
        if labels.size and labels.dtype.kind not in "iu":
            raise UnknownLabelError(
                f"{name} must be column indices 0..{'k-1' if k is None else k - 1} when classes is not given, "
                f"got dtype {labels.dtype} (e.g. {labels[:3].tolist()}); pass classes="
            )
        classes = range(k if k is not None else int(labels.max(initial=-1)) + 1)
    classes = list(np.asarray(classes).tolist())
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != len(classes):
        raise InputError(f"classes must be unique, got {classes}")
    if k is not None and len(classes) != k:
        raise ProbabilityError(f"proba has {k} columns but there are {len(classes)} classes {classes[:20]}")
    out = np.fromiter((index.get(v, -1) for v in labels.tolist()), dtype=np.int64, count=labels.size)
    if (out < 0).any():
        bad = np.unique(labels[out < 0])
        raise UnknownLabelError(f"{name} hold values {bad[:10].tolist()} that are not among the classes {classes[:20]}")
    return out


def labels_and_proba(labels, proba, classes, *, name: str = "proba") -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(indices (n,), proba (n, k))``, aligned."""
    p = check_proba(proba, name=name)
    idx = label_indices(labels, classes, k=p.shape[1])
    if idx.size != p.shape[0]:
        raise InputError(f"labels and {name} must be aligned: got {idx.size} labels and {p.shape[0]} probability rows")
    return idx, p


def row_ids(ids, n: int) -> np.ndarray:
    """``ids`` checked and aligned with ``n`` rows; row indices when None."""
    if ids is None:
        return np.arange(n)
    from activemine.selection.batch import check_ids

    ids = check_ids(ids)
    if ids.size != n:
        raise InputError(f"ids and labels must be aligned: got {ids.size} ids and {n} labels")
    return ids

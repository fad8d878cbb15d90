"""The settings and the report of a diversity step, and the check of the embeddings it reads.

:class:`DiversityOptions` says how to keep copies out of a batch (a radius or
``auto`` for near-duplicates, content hashes, Cluster-Margin clusters) and is
checked when built; :class:`DiversityReport` says what the step did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from activemine.errors import InputError

__all__ = [
    "AUTO_FACTOR",
    "DEFAULT_FACTOR",
    "SAMPLE_SIZE",
    "DiversityOptions",
    "DiversityReport",
    "InsufficientCandidates",
    "check_embeddings",
]

#: Rows of the seeded pool sample used for the ``auto`` radius and the k-means centroids.
SAMPLE_SIZE = 10_000
#: ``auto`` radius = this factor times the median nearest-neighbour distance in the sample.
AUTO_FACTOR = 0.25
#: Default candidate factors: suppression needs few spares, Cluster-Margin takes the top 5x budget by score.
DEFAULT_FACTOR = {"near-duplicates": 2.0, "clusters": 5.0}


class InsufficientCandidates(InputError):
    """The candidates a streaming engine kept do not decide the batch; scan again with a larger factor."""


@dataclass(frozen=True)
class DiversityOptions:
    """How to keep copies out of a batch.

    ``near_duplicates``: a radius ``>= 0`` in embedding space, ``"auto"``, or
    None (off). ``dedup``: rows carry a content hash and equal hashes are
    duplicates. ``clusters``: Cluster-Margin with this many k-means clusters
    (not combinable with suppression). ``candidate_factor``: candidates kept
    per unit of quota (>= 1; default 2 for suppression, 5 for clusters).
    """

    near_duplicates: float | str | None = None
    dedup: bool = False
    clusters: int | None = None
    candidate_factor: float | None = None
    sample_size: int = SAMPLE_SIZE

    def __post_init__(self):
        nd = self.near_duplicates
        if isinstance(nd, str):
            if nd == "off":
                object.__setattr__(self, "near_duplicates", None)
            elif nd != "auto":
                try:
                    object.__setattr__(self, "near_duplicates", float(nd))
                except ValueError:
                    raise InputError(f"near-duplicates must be a radius, 'auto' or 'off', got {nd!r}") from None
        nd = self.near_duplicates
        if nd is not None and nd != "auto":
            if not math.isfinite(float(nd)) or float(nd) < 0:
                raise InputError(f"the near-duplicate radius must be a finite number >= 0, got {nd}")
            object.__setattr__(self, "near_duplicates", float(nd))
        if self.clusters is not None:
            if int(self.clusters) != self.clusters or self.clusters < 1:
                raise InputError(f"clusters must be a positive integer, got {self.clusters}")
            if self.suppress:
                raise InputError(
                    "choose one of near-duplicate suppression (--near-duplicates/--dedup-col) and --diversity clusters"
                )
        f = self.candidate_factor
        if f is not None and (not math.isfinite(float(f)) or float(f) < 1):
            raise InputError(f"the candidate factor must be a number >= 1, got {f}")
        if int(self.sample_size) != self.sample_size or self.sample_size < 2:
            raise InputError(f"the diversity sample size must be an integer >= 2, got {self.sample_size}")

    @classmethod
    def from_cli(
        cls,
        *,
        near_duplicates: str | None = None,
        dedup_col: str | None = None,
        diversity: str | None = None,
        clusters: int | None = None,
        candidate_factor: float | None = None,
    ) -> DiversityOptions | None:
        """The options of the CLI flags, or None when none is on."""
        if diversity not in (None, "none", "clusters"):
            raise InputError(f"--diversity must be clusters or none, got {diversity!r}")
        if clusters is not None and diversity != "clusters":
            raise InputError("--clusters needs --diversity clusters")
        k = (clusters if clusters is not None else 1000) if diversity == "clusters" else None
        opts = cls(
            near_duplicates=near_duplicates, dedup=dedup_col is not None, clusters=k, candidate_factor=candidate_factor
        )
        if not opts.active:
            if candidate_factor is not None:
                raise InputError("--candidate-factor needs --near-duplicates, --dedup-col or --diversity clusters")
            return None
        return opts

    @property
    def suppress(self) -> bool:
        return self.near_duplicates is not None or self.dedup

    @property
    def active(self) -> bool:
        return self.suppress or self.clusters is not None

    @property
    def needs_embeddings(self) -> bool:
        return self.near_duplicates is not None or self.clusters is not None

    @property
    def method(self) -> str:
        return "clusters" if self.clusters is not None else "near-duplicates"

    @property
    def factor(self) -> float:
        return float(self.candidate_factor) if self.candidate_factor is not None else DEFAULT_FACTOR[self.method]

    def widened(self) -> DiversityOptions:
        """The same options with twice the candidate factor (the fallback of an insufficient scan)."""
        return replace(self, candidate_factor=2.0 * self.factor)

    def check_pool_rows(self, n_rows: int | None) -> None:
        """Raise when the pool has fewer rows than clusters (before any model is fitted)."""
        if self.clusters is not None and n_rows is not None and self.clusters > n_rows:
            raise InputError(f"--clusters {self.clusters} is more than the {n_rows} rows of the pool")


@dataclass(frozen=True)
class DiversityReport:
    """What a diverse selection did: the radius used (and whether ``auto`` chose it), the rows
    skipped as duplicates, rows taken from suppressed ones because a group ran out, clusters."""

    method: str
    radius: float | None = None
    auto: bool = False
    suppressed: int = 0
    filled_with_duplicates: int = 0
    clusters: int | None = None
    candidate_factor: float = 1.0
    embedding: str = ""
    rescans: int = 0

    def describe(self) -> str:
        if self.method == "clusters":
            return (
                f"Cluster-Margin: {self.clusters} clusters, top {self.candidate_factor:g}x quota by score, round-robin"
            )
        parts = []
        if self.radius is not None:
            parts.append(
                f"radius {self.radius:.6g}"
                + (
                    f" (auto: {AUTO_FACTOR:g} x median nearest-neighbour distance of a seeded sample)"
                    if self.auto
                    else ""
                )
            )
        text = f"near-duplicates: {', '.join(parts) or 'exact hashes only'}; {self.suppressed} rows skipped"
        if self.filled_with_duplicates:
            text += f"; {self.filled_with_duplicates} near-duplicates taken because a class ran out of distinct rows"
        return text


def check_embeddings(
    emb, *, n_rows: int | None = None, width: int | None = None, where: str = "embeddings"
) -> np.ndarray:
    """Embeddings as a finite float ``(n, d)`` array; raise naming NaN rows or a wrong width."""
    arr = np.asarray(emb)
    if arr.ndim != 2:
        raise InputError(f"{where} must be a 2-d array (rows, dims), got shape {arr.shape}")
    if arr.dtype.kind not in "fiu":
        raise InputError(f"{where} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise InputError(f"{where} has {arr.shape[0]} rows but there are {n_rows} ids")
    if width is not None and arr.shape[1] != width:
        raise InputError(f"{where} has width {arr.shape[1]}, expected {width}")
    if arr.shape[1] == 0:
        raise InputError(f"{where} has no dimensions")
    # a float64 sum is finite when every value is (NaN and infinity propagate; float32 values cannot
    # overflow it): one pass and no (n, d) mask; otherwise the rows decide (huge float64 values overflow)
    if np.isfinite(arr.sum(dtype=np.float64)):
        return arr
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise InputError(
            f"{where} holds NaN or infinite values in {int(bad.sum())} rows, e.g. row {int(np.flatnonzero(bad)[0])}"
        )
    return arr

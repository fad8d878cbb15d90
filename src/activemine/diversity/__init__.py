"""Diversity: batches without copies (near-duplicate suppression) and Cluster-Margin batch diversity.

select.py      DiversityOptions and select_diverse: the walk that suppresses near-duplicates, k-means clusters
"""

from __future__ import annotations

import importlib

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "AUTO_FACTOR": "select",
    "auto_radius": "select",
    "check_embeddings": "select",
    "DiversityOptions": "select",
    "DiversityReport": "select",
    "duplicate_stats": "select",
    "fit_centroids": "select",
    "fit_projection": "select",
    "InsufficientCandidates": "select",
    "nearest_centroid": "select",
    "plant_duplicates": "select",
    "Projection": "select",
    "sample_keys": "select",
    "sample_rows": "select",
    "SAMPLE_SIZE": "select",
    "select_diverse": "select",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'activemine.diversity' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"activemine.diversity.{module}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

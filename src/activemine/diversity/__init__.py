"""Diversity: batches without copies (near-duplicate suppression) and Cluster-Margin batch diversity.

options.py     DiversityOptions (radius or auto, content hashes, clusters), DiversityReport, the embeddings check
geometry.py    projections (PCA), the seeded sample, the auto radius, k-means centroids (scikit-learn, imported on use)
select.py      select_diverse: the walk that suppresses near-duplicates, and Cluster-Margin's round-robin
"""

from __future__ import annotations

from activemine import lazy_exports

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "AUTO_FACTOR": "options",
    "auto_radius": "geometry",
    "check_embeddings": "options",
    "DEFAULT_FACTOR": "options",
    "DiversityOptions": "options",
    "DiversityReport": "options",
    "fit_centroids": "geometry",
    "fit_projection": "geometry",
    "InsufficientCandidates": "options",
    "nearest_centroid": "geometry",
    "principal_directions": "geometry",
    "Projection": "geometry",
    "sample_keys": "geometry",
    "sample_rows": "geometry",
    "SAMPLE_SIZE": "options",
    "select_diverse": "select",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

"""Data: pool sources, pool chunks and the labeled set, tables, the id index, images and built-in datasets.

chunks.py      PoolChunk and LabeledSet, the in-memory containers strategies score and fit on
sources.py     one chunk iterator over arrays, DataFrames, Parquet, CSV and image folders (open_pool)
images.py      folders of image files (and image path or bytes columns) as pools and labeled sets
tables.py      reading and writing Parquet or CSV tables, atomically
outputs.py     where an output may go: never onto a command's input or a campaign's store and data
files.py       atomic file writes (a temporary file, then a rename) with the mode of any new file
idindex.py     find ids in a fixed set of ids fast (a hash table in numpy arrays)
datasets.py    built-in datasets: Fashion-MNIST from local files, scikit-learn's digits
"""

from __future__ import annotations

from activemine import lazy_exports

# public name -> the module of this package that defines it; imported on first use, so importing one
# module of the package does not import the others
_EXPORTS = {
    "arrow_ids": "sources",
    "atomic_path": "files",
    "BadImages": "images",
    "batch_to_table": "tables",
    "check_images": "images",
    "check_pool_schema": "sources",
    "Dataset": "datasets",
    "DATASETS": "datasets",
    "decode_images": "images",
    "DEFAULT_CHUNK_SIZE": "sources",
    "fashion_mnist_available": "datasets",
    "id_hash": "idindex",
    "IdIndex": "idindex",
    "IMAGE_CHUNK_BYTES": "images",
    "IMAGE_MODES": "images",
    "IMAGE_SUFFIXES": "images",
    "ImageFolderSource": "sources",
    "ImageSpec": "images",
    "is_image_folder": "images",
    "LabeledSet": "chunks",
    "list_images": "images",
    "list_labeled_images": "images",
    "load_dataset": "datasets",
    "numeric_matrix": "tables",
    "open_pool": "sources",
    "parse_image_size": "images",
    "PoolChunk": "chunks",
    "PoolColumns": "sources",
    "PoolSource": "sources",
    "read_table": "tables",
    "require_columns": "tables",
    "table_format": "tables",
    "write_table": "tables",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

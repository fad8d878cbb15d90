"""The campaign's pool: Parquet files read as streams, never whole.

A campaign's pool is a list of Parquet files (``meta["pool_files"]``) holding
the id column and either the features or precomputed probabilities
(``meta["proba_cols"]``, ``meta["weak_proba_cols"]``). Three ways to read it:

* :meth:`CampaignPool.source`: the :class:`~activemine.data.sources.PoolSource` the
  engines stream (local or Ray);
* :meth:`CampaignPool.locate`: one pass over the pool that finds given ids and
  returns their row numbers and the columns asked for, ``O(chunk + found)`` memory;
* :meth:`CampaignPool.rows_at`: given row numbers, read only the row groups that hold them.

Row numbers count from 0 over the files in order, as the rows are streamed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activemine.campaign.store import CampaignStore
from activemine.errors import CampaignError, InputError

__all__ = ["CampaignPool", "arrow_ids", "id_kind_of_type", "image_spec_of"]

# rows per batch of a locating pass: Arrow's is_in builds its hash set of the wanted ids once per batch
SCAN_ROWS = 1 << 21


def id_kind_of_type(t: pa.DataType, *, where: str) -> str:
    """``"int"`` or ``"str"`` for an Arrow id column type (strings of any Arrow kind, dictionary included)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _: False)(t):
        return "str"
    raise InputError(f"ids of {where} must be integers or strings, got Arrow type {t}")


def arrow_ids(column, kind: str) -> pa.Array:
    """An id column as a plain ``int64`` or ``string`` Arrow array (dictionary and large strings cast)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    target = pa.int64() if kind == "int" else pa.string()
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column if column.type == target else column.cast(target)


def image_spec_of(meta: dict, *, labeled: bool = False, n_jobs: int | None = None):
    """The :class:`~activemine.data.images.ImageSpec` of a campaign's pool (or of L), or None without images."""
    if not meta.get("image"):
        return None
    from activemine.data.images import ImageSpec
    from activemine.models import check_n_jobs

    d = dict(meta["image"])
    d["root"] = d["labeled_root"] if labeled else d["root"]
    return ImageSpec.from_dict(d, n_jobs=check_n_jobs(n_jobs))


class CampaignPool:
    """The pool of ``store`` as files; cheap to create (reads only the files' footers)."""

    def __init__(self, store: CampaignStore):
        self.store = store
        meta = store.meta
        self.files = store.pool_files()
        missing = [str(f) for f in self.files if not f.is_file()]
        if missing:
            raise CampaignError(f"the campaign's pool file(s) {missing[:3]} are missing; they were recorded at init")
        self.id_col = meta["id_col"]
        self.id_kind = meta["id_kind"]
        self.features = list(meta.get("features") or [])
        self.proba = [list(g) for g in meta.get("proba_cols") or []]
        self.weak_proba = list(meta.get("weak_proba_cols") or [])
        self.image = (meta.get("image") or {}).get("column")
        self._layout = None

    @property
    def has_features(self) -> bool:
        """Whether a model scores the pool: it brings features (columns or images), not probabilities."""
        return (bool(self.features) or self.image is not None) and not (self.proba or self.weak_proba)

    def pool_columns(self):
        """The :class:`~activemine.data.sources.PoolColumns` a round streams."""
        from activemine.data.sources import PoolColumns

        emb = tuple(self.store.meta.get("embedding_cols") or ())
        if self.image is not None:
            return PoolColumns(
                id=self.id_col, image=self.image, image_spec=image_spec_of(self.store.meta), embedding=emb
            )
        if self.has_features:
            return PoolColumns(id=self.id_col, features=tuple(self.features), embedding=emb)
        return PoolColumns(
            id=self.id_col, proba=tuple(tuple(g) for g in self.proba), weak_proba=tuple(self.weak_proba), embedding=emb
        )

    def source(self):
        """The pool as a :class:`~activemine.data.sources.PoolSource` for the engines."""
        from activemine.data.sources import open_pool

        files = [str(f) for f in self.files]
        return open_pool(files if len(files) > 1 else files[0], self.pool_columns())

    @property
    def layout(self) -> list[tuple[Path, int, int]]:
        """``(file, row group, first row)`` of every row group, in row order."""
        if self._layout is None:
            out, start = [], 0
            for f in self.files:
                md = pq.ParquetFile(f).metadata
                for g in range(md.num_row_groups):
                    out.append((f, g, start))
                    start += md.row_group(g).num_rows
            self._layout = out
            self._num_rows = start
        return self._layout

    @property
    def num_rows(self) -> int:
        _ = self.layout  # computes _num_rows on first use
        return self._num_rows

    def batches(self, columns: list[str], *, batch_size: int = SCAN_ROWS) -> Iterator[tuple[int, pa.RecordBatch]]:
        """``(first row, record batch)`` over the whole pool, ``columns`` only, in row order."""
        start = 0
        for f in self.files:
            # without pre_buffer: pyarrow's default keeps every column chunk read until the file is closed
            with pq.ParquetFile(f, pre_buffer=False) as reader:
                for batch in reader.iter_batches(batch_size=batch_size, columns=columns):
                    yield start, batch
                    start += batch.num_rows

    def locate(
        self, ids: np.ndarray, columns: list[str] = (), *, progress: Callable[[int], None] | None = None
    ) -> tuple[np.ndarray, pa.Table]:
        """Find ``ids`` ``(n,)`` (stored text or typed) in one pass over the pool.

        Returns the row numbers ``(m,)`` of the rows found, in pool order, and a
        table of those rows with the id column (as ``int64`` or ``string``) and
        ``columns``. Ids not in the pool are simply not found (``m < n``).
        """
        wanted = pa.array(np.asarray(ids).astype(np.int64) if self.id_kind == "int" else np.asarray(ids, dtype=str))
        names = list(dict.fromkeys([self.id_col, *columns]))
        rows, parts = [], []
        for start, batch in self.batches(names):
            col = arrow_ids(batch.column(self.id_col), self.id_kind)
            hit = pc.is_in(col, value_set=wanted)
            found = np.flatnonzero(hit.to_numpy(zero_copy_only=False))
            if found.size:
                rows.append(found + start)
                part = batch.filter(hit)
                parts.append(
                    part.set_column(
                        part.schema.get_field_index(self.id_col),
                        self.id_col,
                        arrow_ids(part.column(self.id_col), self.id_kind),
                    )
                )
            if progress is not None:
                progress(batch.num_rows)
        if not parts:
            empty = pa.table({self.id_col: pa.array([], type=pa.int64() if self.id_kind == "int" else pa.string())})
            return np.empty(0, np.int64), empty
        return np.concatenate(rows), pa.Table.from_batches(parts)

    def rows_at(self, rows, columns: list[str]) -> pa.Table:
        """The pool rows numbered ``rows`` ``(n,)``, ``columns`` only, in the order of ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = np.array([s for _, _, s in self.layout] + [self.num_rows], dtype=np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= self.num_rows):
            raise InputError(f"pool rows must lie in [0, {self.num_rows}), got {rows.min()}..{rows.max()}")
        group = np.searchsorted(starts, rows, side="right") - 1
        pieces, order = [], []
        for g in np.unique(group):
            f, rg, first = self.layout[g]
            at = np.flatnonzero(group == g)
            table = pq.ParquetFile(f).read_row_group(rg, columns=columns)
            pieces.append(table.take(pa.array(rows[at] - first)))
            order.append(at)
        if not pieces:
            return pq.read_schema(self.files[0]).empty_table().select(columns)
        table = pa.concat_tables(pieces)
        inverse = np.empty(rows.size, dtype=np.int64)
        inverse[np.concatenate(order)] = np.arange(rows.size)
        return table.take(pa.array(inverse))

"""A campaign's embeddings: columns of its pool, or a file of ids and embeddings joined to the pool at init.

Near-duplicate suppression and cluster diversity (:mod:`activemine.diversity`)
need one embedding per pool row. A team that scores its pool on its own
machines brings them as columns of the pool files (``embedding_cols``), or as
a separate Parquet/CSV file of ids and embeddings: :class:`EmbeddingFile`
reads that file whole (``n x e`` float32, plus its ids), checks that it covers
every pool id, and appends the embedding columns, in pool row order, to the
pool files the campaign writes. Either way the campaign's meta names the
columns (``meta["embedding_cols"]``) and every round streams them.

``mine --embeddings FILE`` joins the same file to a pool it streams
(:class:`JoinedEmbeddings`), chunk by chunk, without copying the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from activemine.data.sources import PoolSource
from activemine.errors import InputError

__all__ = ["EmbeddingFile", "JoinedEmbeddings", "check_embedding_values"]


def _matrix(table: pa.Table, names: list[str], *, where: str) -> np.ndarray:
    from activemine.data.sources import PoolColumns, check_pool_schema, embedding_matrix

    check_pool_schema(table.schema, PoolColumns(id=table.column_names[0], embedding=tuple(names)), where=where)
    return embedding_matrix(table, tuple(names), where=where)


def check_embedding_values(
    batches: Iterable[pa.Table], names: list[str], *, where: str, progress: Callable[[int], None] | None = None
) -> None:
    """One pass over a pool's embedding columns: numeric, finite, no missing values (errors name the row)."""
    first = 0
    for table in batches:
        try:
            _matrix(table, names, where=where)
        except InputError as exc:
            raise InputError(f"{exc} (counted from pool row {first})") from None
        first += table.num_rows
        if progress is not None:
            progress(table.num_rows)


class EmbeddingFile:
    """A file of ids and embeddings, read whole and checked, joined to pool rows by id.

    ``names``: its embedding columns (numeric columns, or one fixed-size-list
    column); ``kind``: the pool's id kind (``"int"`` or ``"str"``).
    """

    def __init__(self, path, *, id_col: str, kind: str, cols: str | None = None, prefix: str | None = None):
        from activemine.campaign.pool import arrow_ids
        from activemine.data.tables import read_table

        self.path = Path(path)
        table = read_table(self.path)
        where = str(self.path)
        if id_col not in table.column_names:
            raise InputError(f"the embedding file {where!r} has no id column {id_col!r}")
        from activemine.data.sources import embedding_names

        self.names = embedding_names(table.column_names, cols=cols, prefix=prefix, exclude=(id_col,), where=where)
        table = table.select([id_col, *self.names])
        self.values = _matrix(table, self.names, where=where)  # (n, e) float32, finite
        column = table.column(id_col)
        if column.null_count:
            raise InputError(f"column {id_col!r} of {where} has {column.null_count} missing ids")
        self.ids = arrow_ids(column, kind)
        if pc.count_distinct(self.ids).as_py() != len(self.ids):
            raise InputError(f"ids of the embedding file {where!r} must be unique")
        self.width = self.values.shape[1]

    @property
    def columns(self) -> list[str]:
        """The columns the campaign's pool files get: ``emb_0 .. emb_{e-1}``."""
        return [f"emb_{j}" for j in range(self.width)]

    def rows_of(self, ids, kind: str) -> np.ndarray:
        """Rows of the file ``(n,)`` holding ``ids`` (an Arrow id column); an id not in the file is an error."""
        from activemine.campaign.pool import arrow_ids

        ids = arrow_ids(ids, kind)
        at = pc.index_in(ids, value_set=self.ids)
        if at.null_count:
            missing = ids.filter(pc.is_null(at)).to_pylist()
            raise InputError(
                f"{at.null_count} pool ids have no embedding in {str(self.path)!r}, e.g. {missing[:5]}; "
                "the file needs one row per pool id"
            )
        return at.to_numpy(zero_copy_only=False)

    def attach(self, table: pa.Table, id_col: str, kind: str) -> pa.Table:
        """``table`` with the embedding of each of its rows appended as columns :attr:`columns`."""
        values = self.values[self.rows_of(table.column(id_col), kind)]
        for j, name in enumerate(self.columns):
            table = table.append_column(name, pa.array(values[:, j]))
        return table


class JoinedEmbeddings(PoolSource):
    """A pool source (:class:`activemine.data.sources.PoolSource`) whose every table gets, by id, the
    embedding of its rows from an :class:`EmbeddingFile`, as the columns :attr:`EmbeddingFile.columns`.

    ``JoinedEmbeddings.open(source, path, ...)`` reads the file (whole) with the pool's id kind and
    checks, in one pass over the pool's tables, that it holds every pool id; errors name the file
    and the missing ids. The pool itself is streamed as before, never copied.
    """

    def __init__(self, source, embeddings: EmbeddingFile, kind: str):
        from dataclasses import replace

        self.source, self.file, self.kind = source, embeddings, kind
        self.columns = replace(source.columns, embedding=tuple(embeddings.columns))
        self.num_rows, self.where, self.skip_ids = source.num_rows, source.where, source.skip_ids

    @classmethod
    def open(cls, source, path, *, cols: str | None = None, prefix: str | None = None, chunk_size: int = 65_536):
        """``source`` joined with the embedding file ``path`` (its id column is the pool's), checked."""
        from activemine.campaign.pool import id_kind_of_type

        id_col = source.columns.id
        first = next(iter(source.tables(1)), None)
        kind = "int" if first is None else id_kind_of_type(first.schema.field(id_col).type, where=source.where)
        joined = cls(source, EmbeddingFile(path, id_col=id_col, kind=kind, cols=cols, prefix=prefix), kind)
        for table in source.tables(chunk_size):
            joined.file.rows_of(joined._kept(table).column(id_col), kind)  # every pool id has a row in the file
        return joined

    def _kept(self, table: pa.Table) -> pa.Table:
        if self.skip_ids is None or not len(self.skip_ids):
            return table
        return table.filter(pc.invert(pc.is_in(table.column(self.columns.id), value_set=self.skip_ids)))

    def tables(self, chunk_size: int):
        for table in self.source.tables(chunk_size):
            yield self.file.attach(self._kept(table), self.columns.id, self.kind)

    def carry_fields(self):
        return self.source.carry_fields()  # the pool's own columns; the joined embedding is not carried

    def _read(self, columns, chunk_size):
        return self.source._read(columns, chunk_size)

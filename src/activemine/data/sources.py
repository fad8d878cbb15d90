"""Pool sources: one chunk iterator over in-memory arrays, DataFrames, Parquet and CSV.

A pool is read as a stream of :class:`~activemine.data.chunks.PoolChunk` objects of at
most ``chunk_size`` rows, each holding the ids and only the columns a strategy
needs (:class:`PoolColumns`); Parquet is read with column projection, so unused
columns never leave the disk. Sources are re-iterable: every call of
:meth:`PoolSource.chunks` starts from the first row.

Accepted sources (:func:`open_pool`):

* a :class:`~activemine.data.chunks.PoolChunk` (arrays already split into ids, X, proba);
* a mapping column name -> 1-d numpy array, a :class:`pyarrow.Table`, or a
  pandas DataFrame (duck-typed: never imported here);
* a path to a ``.parquet``/``.pq`` file, a folder of Parquet files, a list of
  Parquet files, or a ``.csv`` file;
* a folder of image files (:class:`ImageFolderSource`; ids are the files' relative paths).

A table may name an image column (``PoolColumns.image``: paths or encoded
bytes); its images are decoded into the chunk's features ``X`` as the chunk is
read (:mod:`activemine.data.images`), and a chunk then holds at most
:data:`~activemine.data.images.IMAGE_CHUNK_BYTES` of pixels, whatever ``chunk_size`` asks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from activemine.data.chunks import PoolChunk
from activemine.data.tables import numeric_matrix, require_columns
from activemine.errors import InputError, MissingColumnError, SchemaMismatchError
from activemine.selection.batch import check_ids

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ImageFolderSource",
    "PoolColumns",
    "PoolSource",
    "arrow_ids",
    "carried_columns",
    "check_pool_schema",
    "embedding_names",
    "open_pool",
]

#: Pool rows scored at a time, by every engine and the in-memory path (the one definition).
DEFAULT_CHUNK_SIZE = 65_536


@dataclass(frozen=True)
class PoolColumns:
    """Which columns of a table make up the pool.

    ``proba`` groups: one group is the strong/only model's probabilities
    ``(n, k)``; several groups are committee members ``(m, n, k)`` and their
    mean becomes ``proba``. ``weak_proba`` is HW's weak model ``(n, k)``.
    ``embedding``: numeric columns, or one fixed-size-list column, holding
    each row's embedding; ``dedup``: a content-hash column
    (:mod:`activemine.diversity.select`). ``image``: a column of image paths or
    bytes decoded into the features as specified by ``image_spec``
    (:class:`~activemine.data.images.ImageSpec`).
    """

    id: str = "id"
    features: tuple[str, ...] = ()
    proba: tuple[tuple[str, ...], ...] = ()
    weak_proba: tuple[str, ...] = ()
    embedding: tuple[str, ...] = ()
    dedup: str | None = None
    image: str | None = None
    image_spec: object | None = None

    def __post_init__(self):
        widths = {len(g) for g in self.proba}
        if len(widths) > 1:
            raise InputError(
                f"every member's probability columns must have the same count, got {[len(g) for g in self.proba]}"
            )

    @property
    def needed(self) -> list[str]:
        """Every column to read, id first, without repeats."""
        cols = [self.id, *self.features, *(c for g in self.proba for c in g), *self.weak_proba, *self.embedding]
        if self.dedup is not None:
            cols.append(self.dedup)
        if self.image is not None:
            cols.append(self.image)
        return list(dict.fromkeys(cols))

    @property
    def has_features(self) -> bool:
        """Whether a model must score the pool: it brings feature columns or images."""
        return bool(self.features) or self.image is not None

    @property
    def n_proba_columns(self) -> int | None:
        """Class count of the probability columns, or None when the pool brings features."""
        if self.has_features:
            return None
        if self.proba:
            return len(self.proba[0])
        return len(self.weak_proba) or None


def is_id_type(t: pa.DataType) -> bool:
    """Whether an Arrow type can hold ids: integers, or strings (string, large_string,
    string_view, or a dictionary of them)."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_integer(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or (hasattr(pa.types, "is_string_view") and pa.types.is_string_view(t))
    )


def arrow_ids(column, *, where: str = "pool") -> np.ndarray:
    """An Arrow id column (any integer or string type, dictionaries included) as an
    ``(n,)`` int64 or fixed-width str array; nulls and other types are an error.

    Strings become numpy ``U`` (never object) arrays, so every executor hands
    the same dtype kind to the selection, whatever Arrow type the file used.
    """
    if isinstance(column, np.ndarray):
        return column
    t = column.type
    if column.null_count:
        raise InputError(f"{where} has {column.null_count} missing ids")
    if not is_id_type(t):
        raise InputError(f"{where} must hold integer or string ids, got Arrow type {t}")
    if pa.types.is_dictionary(t):
        column = column.cast(t.value_type) if isinstance(column, pa.ChunkedArray) else column.dictionary_decode()
        t = column.type
    if pa.types.is_integer(t):
        if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
            return column.to_numpy(zero_copy_only=False)  # check_ids rejects values beyond int64
        return column.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts = [_strings_to_numpy(c) for c in chunks if len(c)]
    if not parts:
        return np.empty(0, dtype="<U1")
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _strings_to_numpy(array: pa.Array) -> np.ndarray:
    """A string Arrow array ``(n,)`` as numpy ``U``; ASCII text is copied from Arrow's buffers
    straight into the code points (no Python string per row, ~50x faster for ids of one length)."""
    n = len(array)
    buffers = array.buffers()
    large = pa.types.is_large_string(array.type)
    if len(buffers) != 3 or buffers[1] is None:  # string_view and the like: the general path
        return array.to_numpy(zero_copy_only=False).astype(str)
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if large else np.int32, count=array.offset + n + 1)
    offsets = offsets[array.offset :].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.empty(0, np.uint8)
    lengths = np.diff(offsets)
    width = int(lengths.max())
    if width == 0:
        return np.full(n, "", dtype="<U1")
    segment = data[offsets[0] : offsets[-1]]
    distinct = np.unique(lengths) if lengths.min() != width else np.array([width])
    if segment.max() >= 128 or distinct.size > 64:  # non-ASCII text, or lengths too varied to group
        return array.to_numpy(zero_copy_only=False).astype(str)
    codes = np.zeros((n, width), dtype=np.uint32)  # (n, width) code points, zero-padded like numpy's U
    if distinct.size == 1:
        codes[:] = segment.reshape(n, width)
    else:
        for length in distinct[distinct > 0]:
            rows = np.flatnonzero(lengths == length)
            codes[rows, :length] = data[offsets[rows][:, None] + np.arange(length)]
    return codes.view(f"<U{width}").reshape(n)


def chunk_from_table(table: pa.Table | pa.RecordBatch, columns: PoolColumns, *, where: str = "pool") -> PoolChunk:
    """Build a :class:`PoolChunk` from a table holding ``columns.needed``."""
    require_columns(table.column_names, columns.needed, where=where)
    name = f"column {columns.id!r} of {where}"
    ids = check_ids(arrow_ids(table.column(columns.id), where=name), name=name)
    if columns.image is not None:
        from activemine.data.images import decode_images

        X = decode_images(table.column(columns.image), columns.image_spec, where=where)
    else:
        X = numeric_matrix(table, columns.features, where=where, nulls="nan") if columns.features else None
    proba = member = None
    if len(columns.proba) == 1:
        proba = numeric_matrix(table, columns.proba[0], where=where)
    elif columns.proba:
        member = np.stack([numeric_matrix(table, g, where=where) for g in columns.proba])
        proba = member.mean(axis=0)
    weak = numeric_matrix(table, columns.weak_proba, where=where) if columns.weak_proba else None
    emb = embedding_matrix(table, columns.embedding, where=where) if columns.embedding else None
    hashes = None
    if columns.dedup is not None:
        col = table.column(columns.dedup)
        if col.null_count:
            raise InputError(f"the dedup column {columns.dedup!r} of {where} has {col.null_count} missing values")
        hashes = col.to_numpy(zero_copy_only=False)
        if hashes.dtype.kind == "O":
            hashes = hashes.astype(str)
    return PoolChunk(ids, X=X, proba=proba, weak_proba=weak, member_proba=member, embedding=emb, hashes=hashes)


def embedding_names(names: list[str], *, cols: str | None, prefix: str | None, exclude=(), where: str) -> list[str]:
    """The embedding columns of a table with columns ``names``: ``cols`` (``e0,e1,...`` or one
    fixed-size-list column), or every column starting with ``prefix``; neither: every column not in ``exclude``."""
    if cols and prefix:
        raise InputError("give --embedding-cols or --embedding-prefix, not both")
    if cols:
        wanted = [c.strip() for c in cols.split(",") if c.strip()]
        missing = [c for c in wanted if c not in names]
        if missing:
            raise InputError(f"--embedding-cols names columns {missing[:5]} that {where} does not have")
        return wanted
    found = [c for c in names if c.startswith(prefix)] if prefix else [c for c in names if c not in exclude]
    if not found:
        what = f"starts with --embedding-prefix {prefix!r}" if prefix else "holds embeddings"
        raise InputError(f"no column of {where} {what}")
    return found


def embedding_matrix(table, names: tuple[str, ...], *, where: str) -> np.ndarray:
    """Embeddings ``(n, e)`` float32 from numeric columns or one fixed-size-list column;
    NaN, infinity and missing values are an error naming the row."""
    from activemine.diversity.options import check_embeddings

    if len(names) == 1 and _is_list(table.schema.field(names[0]).type):
        col = table.column(names[0])
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        t = col.type
        if not pa.types.is_fixed_size_list(t):
            raise InputError(f"embedding column {names[0]!r} of {where} must be a fixed-size list, got {t}")
        if col.null_count:
            raise InputError(f"embedding column {names[0]!r} of {where} has {col.null_count} missing rows")
        values = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        emb = values.reshape(len(col), t.list_size)
    else:
        emb = numeric_matrix(table, names, where=where, nulls="nan", dtype=np.float32)
    return check_embeddings(emb, where=f"the embedding of {where}")


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)


def check_pool_schema(schema: pa.Schema, columns: PoolColumns, *, where: str) -> None:
    """Check column types before any data is read: the id column integer or string
    (any Arrow string type), every feature and probability column numeric."""
    require_columns(schema.names, columns.needed, where=where)
    t = schema.field(columns.id).type
    if not is_id_type(t):
        raise InputError(f"column {columns.id!r} of {where} must hold integer or string ids, got {t}")
    numeric = [*columns.features, *(c for g in columns.proba for c in g), *columns.weak_proba]
    if len(columns.embedding) == 1 and _is_list(schema.field(columns.embedding[0]).type):
        t = schema.field(columns.embedding[0]).type
        if not pa.types.is_fixed_size_list(t) or not _is_numeric(t.value_type):
            raise InputError(
                f"embedding column {columns.embedding[0]!r} of {where} must be a fixed-size list of "
                f"numbers (one width for every row), got {t}"
            )
    else:
        numeric += list(columns.embedding)
    if columns.image is not None:
        t = schema.field(columns.image).type
        if not (_is_text(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)):
            raise InputError(f"image column {columns.image!r} of {where} must hold paths (text) or bytes, got {t}")
    for name in numeric:
        t = schema.field(name).type
        if not _is_numeric(t):
            raise InputError(f"column {name!r} of {where} must be numeric, got {t}")


def _parquet_null_ids(path, column: str) -> int:
    """Null ids of one Parquet file: from the footer's statistics when every row group has
    them, else from one pass over the id column alone."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    meta = f.metadata
    j = f.schema_arrow.get_field_index(column)
    # the footer's column index follows the Parquet schema's leaves; ids are a flat column
    leaf = [meta.schema.column(i).path for i in range(meta.num_columns)].index(column) if j >= 0 else -1
    total = 0
    for g in range(meta.num_row_groups):
        stats = meta.row_group(g).column(leaf).statistics if leaf >= 0 else None
        if stats is None or not stats.has_null_count:
            return sum(batch.column(0).null_count for batch in f.iter_batches(columns=[column], batch_size=1 << 20))
        total += stats.null_count
    return total


class PoolSource:
    """A re-iterable pool: :meth:`chunks` yields :class:`PoolChunk` objects in row order.

    ``num_rows`` is the row count when known without reading the data (None for CSV).
    """

    columns: PoolColumns
    num_rows: int | None = None
    where: str = "pool"
    #: ids left out of every chunk (images found bad by :meth:`check_images` with ``skip_bad``)
    skip_ids: pa.Array | None = None

    def tables(self, chunk_size: int) -> Iterator[pa.Table]:
        """The needed columns, at most ``chunk_size`` rows at a time."""
        return self._read(self.columns.needed, chunk_size)

    def _read(self, columns: list[str], chunk_size: int) -> Iterator[pa.Table]:
        """The pool's ``columns``, in that order, at most ``chunk_size`` rows at a time."""
        raise NotImplementedError

    def carry_fields(self) -> list[pa.Field]:
        """The pool's columns but the id, in file order: what a batch can carry (:meth:`rows_of`)."""
        return []

    def rows_of(self, ids, names, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> pa.Table:
        """The ``names`` columns of the pool rows with ``ids``, in the order of ``ids``: one more pass over
        the pool reading only the id column and those columns, keeping the rows asked for (memory: those
        rows). ``names`` must be among :meth:`carry_fields`; an id the pool does not hold is an error."""
        import pyarrow.compute as pc

        names = list(dict.fromkeys(names))
        have = {f.name: f for f in self.carry_fields()}
        unknown = [n for n in names if n not in have]
        if unknown:
            raise MissingColumnError(f"{self.where} has no column {unknown[0]!r}; it has: {sorted(have) or 'none'}")
        if not names:
            return pa.table({})
        wanted = pa.array(ids)
        parts = []
        for table in self._read([self.columns.id, *names], chunk_size):
            key = table.column(self.columns.id)
            if key.type != wanted.type:
                key = key.cast(wanted.type)
            hit = pc.is_in(key, value_set=wanted)
            if pc.any(hit).as_py():
                parts.append(table.filter(hit).set_column(0, self.columns.id, key.filter(hit)))
        found = (
            pa.concat_tables(parts)
            if parts
            else pa.table(
                {self.columns.id: pa.array([], wanted.type), **{n: pa.array([], have[n].type) for n in names}}
            )
        )
        at = pc.index_in(wanted, value_set=found.column(self.columns.id))
        if at.null_count:
            missing = wanted.filter(pc.is_null(at))[0].as_py()
            raise InputError(f"id {missing!r} of the batch is not in {self.where}")
        return found.select(names).take(at)

    @property
    def image_shape(self) -> tuple[int, int, int] | None:
        """``(C, H, W)`` of the pool's images, None for a pool without images."""
        return self.columns.image_spec.shape if self.columns.image is not None else None

    def chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[PoolChunk]:
        """The pool as chunks of at most ``chunk_size`` rows (the last one smaller; images: also at most
        :attr:`~activemine.data.images.ImageSpec.chunk_rows`)."""
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
        chunk_size = int(chunk_size)
        if self.columns.image is not None:
            chunk_size = min(chunk_size, self.columns.image_spec.chunk_rows)
        for table in self.tables(chunk_size):
            if self.skip_ids is not None and len(self.skip_ids):
                import pyarrow.compute as pc

                table = table.filter(pc.invert(pc.is_in(table.column(self.columns.id), value_set=self.skip_ids)))
            if table.num_rows:
                yield chunk_from_table(table, self.columns, where=self.where)

    def _resolve_images(self, root: str | None) -> None:
        """Fix the image spec's root (``root`` unless given) and, from the first image, its size and mode."""
        if self.columns.image is None:
            return
        from activemine.data.images import ImageSpec

        spec = self.columns.image_spec or ImageSpec()
        if spec.root is None and root is not None:
            spec = replace(spec, root=str(root))
        if not spec.is_resolved:
            spec = self._first_readable(spec)
        self.columns = replace(self.columns, image_spec=spec)

    def _first_readable(self, spec):
        """``spec`` resolved from the first image that opens (bad ones are found by :meth:`check_images`)."""
        from activemine.errors import ImageError

        first_error = None
        for table in self.tables(64):
            for item in table.column(self.columns.image).to_pylist():
                try:
                    return spec.resolved(item, where=self.where)
                except ImageError as exc:
                    first_error = first_error or exc
        if first_error is not None:
            raise first_error
        raise InputError(f"the pool {self.where!r} has no rows")

    def check_images(self, *, skip_bad: bool = False, progress=None, block: int = 4096):
        """Open and verify every image of the pool before any model is fitted (see
        :func:`activemine.data.images.check_images`); None for a pool without images.

        A bad image raises :class:`~activemine.errors.ImageError` naming it;
        with ``skip_bad`` the bad rows are left out of every later chunk and
        returned as :class:`~activemine.data.images.BadImages` (``reasons`` name the files).
        """
        if self.columns.image is None:
            return None
        from activemine.data.images import BadImages, check_images

        spec = self.columns.image_spec
        rows, reasons, bad_ids, start = [], [], [], 0
        for table in self.tables(block):
            found = check_images(
                table.column(self.columns.image),
                root=spec.root,
                where=self.where,
                n_jobs=spec.n_jobs,
                skip_bad=skip_bad,
                progress=progress,
                block=block,
            )
            if len(found):
                rows.append(found.rows + start)
                reasons.extend(found.reasons)
                bad_ids.append(table.column(self.columns.id).take(pa.array(found.rows)))
            start += table.num_rows
        bad = BadImages(np.concatenate(rows) if rows else np.empty(0, np.int64), reasons)
        if len(bad):
            self.skip_ids = pa.chunked_array(bad_ids).combine_chunks()
            if self.num_rows is not None:
                self.num_rows -= len(bad)
        return bad


class ChunkSource(PoolSource):
    """A pool already held as one :class:`PoolChunk`; chunks are views."""

    def __init__(self, pool: PoolChunk):
        self.pool = pool
        self.num_rows = len(pool)
        k = None
        for arr in (pool.proba, pool.weak_proba, pool.member_proba):
            if arr is not None:
                k = int(np.shape(arr)[-1])
                break
        # only n_proba_columns (and whether there are embeddings) is consulted for in-memory chunks;
        # names are placeholders
        self.columns = PoolColumns(
            features=("X",) if pool.X is not None else (),
            weak_proba=tuple(f"p{j}" for j in range(k or 0)),
            embedding=("embedding",) if pool.embedding is not None else (),
            dedup="hashes" if pool.hashes is not None else None,
        )

    def chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[PoolChunk]:
        if int(chunk_size) != chunk_size or chunk_size < 1:
            raise InputError(f"chunk_size must be a positive integer, got {chunk_size}")
        for start in range(0, self.num_rows, int(chunk_size)):
            yield self.pool.rows(start, min(self.num_rows, start + int(chunk_size)))


class TableSource(PoolSource):
    """An in-memory table: a pyarrow Table, or anything :func:`_as_sliceable` turns into slices."""

    def __init__(self, table, columns: PoolColumns, *, where: str = "pool"):
        self.columns = columns
        self.where = where
        self._table = table
        names = _column_names(table)
        require_columns(names, columns.needed, where=where)
        if isinstance(table, pa.Table):
            check_pool_schema(table.schema, columns, where=where)
            if table.column(columns.id).null_count:
                raise InputError(
                    f"column {columns.id!r} of {where} has {table.column(columns.id).null_count} missing ids"
                )
        self.num_rows = _length(table)
        self._resolve_images(None)

    def _read(self, columns, chunk_size):
        for start in range(0, self.num_rows, chunk_size):
            yield _slice_to_arrow(self._table, start, min(self.num_rows, start + chunk_size), columns)

    def carry_fields(self):
        if not isinstance(self._table, pa.Table):
            return []
        return [f for f in self._table.schema if f.name != self.columns.id]


class ImageFolderSource(PoolSource):
    """Every image file below ``folder`` (see :func:`activemine.data.images.list_images`), read as a
    table of the id column (the relative path) and the image column (the same path), decoded per chunk.

    Listing holds the paths only (Arrow strings); ``spec`` (an
    :class:`~activemine.data.images.ImageSpec`) without a size or mode takes them
    from the first image listed.
    """

    def __init__(self, folder, spec=None, *, id_col: str = "id", image_col: str = "image"):
        from activemine.data.images import ImageSpec, list_images

        spec = spec or ImageSpec()
        self.folder = Path(folder)
        self.where = str(folder)
        self.paths = list_images(self.folder)
        self.num_rows = len(self.paths)
        self.columns = PoolColumns(id=id_col, image=image_col, image_spec=spec)
        self._resolve_images(self.folder)

    def tables(self, chunk_size):
        id_col, image_col = self.columns.id, self.columns.image
        for start in range(0, len(self.paths), chunk_size):
            part = self.paths.slice(start, chunk_size)
            yield pa.table({id_col: part} if id_col == image_col else {id_col: part, image_col: part})

    def check_images(self, *, skip_bad: bool = False, progress=None, block: int = 4096):
        """As :meth:`PoolSource.check_images`; skipped files also leave the listing."""
        from activemine.data.images import take_good

        bad = super().check_images(skip_bad=skip_bad, progress=progress, block=block)
        if bad is not None and len(bad):
            self.paths, self.skip_ids = take_good(self.paths, bad), None
            self.num_rows = len(self.paths)
        return bad


class ParquetSource(PoolSource):
    """One Parquet file, a folder of them, or a list of files, read with column projection.

    Every file must hold the needed columns with the same types; this is
    checked from the files' footers before any data is read.
    """

    def __init__(self, paths, columns: PoolColumns):
        # pyarrow.parquet only: pyarrow.dataset costs seconds of imports on a small machine
        import pyarrow.parquet as pq

        self.columns = columns
        files = _parquet_files(paths)
        self.where = str(paths) if isinstance(paths, (str, Path)) else f"{len(files)} Parquet files"
        first = None
        for f in files:
            try:
                schema = pq.read_schema(f)
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(f"cannot read {str(f)!r} as parquet: {exc}") from exc
            require_columns(schema.names, columns.needed, where=str(f))
            types = {c: schema.field(c).type for c in columns.needed}
            if first is None:
                first = (f, types)
            else:
                diff = [c for c in columns.needed if types[c] != first[1][c]]
                if diff:
                    c = diff[0]
                    raise SchemaMismatchError(
                        f"Parquet files disagree on column {c!r}: {str(first[0])!r} has {first[1][c]}, "
                        f"{str(f)!r} has {types[c]}; every file of a pool must have the same column types"
                    )
        self._file_schema = pq.read_schema(first[0])
        schema = pa.schema([(c, first[1][c]) for c in columns.needed])
        check_pool_schema(schema, columns, where=self.where)
        for f in files:
            nulls = _parquet_null_ids(f, columns.id)
            if nulls:
                raise InputError(f"column {columns.id!r} of {str(f)!r} has {nulls} missing ids")
        self.files = [str(f) for f in files]
        self.schema = schema
        self.num_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        base = Path(paths) if isinstance(paths, (str, Path)) else Path(self.files[0]).parent
        self._resolve_images(base if base.is_dir() else base.parent)

    def _read(self, columns, chunk_size):
        import pyarrow.parquet as pq

        try:
            for f in self.files:
                # pre_buffer (pyarrow's default) keeps every column chunk read until the file is closed:
                # 2 GB of a 10M-row pool with 35 columns, and slower
                with pq.ParquetFile(f, pre_buffer=False) as reader:
                    for batch in reader.iter_batches(batch_size=chunk_size, columns=columns):
                        yield pa.Table.from_batches([batch]).select(columns)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read {self.where!r} as parquet: {exc}") from exc

    def carry_fields(self):
        return [f for f in self._file_schema if f.name != self.columns.id]


class CsvSource(PoolSource):
    """A CSV file read as a stream of blocks with only the needed columns."""

    def __init__(self, path, columns: PoolColumns):
        import pyarrow.csv as pcsv

        self.columns = columns
        self.path = Path(path)
        self.where = str(path)
        try:
            with pcsv.open_csv(self.path) as reader:
                schema = reader.schema  # types inferred from the first block
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {self.where!r} as csv: {exc}") from exc
        self._file_schema = schema
        check_pool_schema(schema, columns, where=self.where)
        self._resolve_images(self.path.parent)

    def _read(self, columns, chunk_size):
        import pyarrow.csv as pcsv

        convert = pcsv.ConvertOptions(include_columns=columns)
        # the type of every column is fixed from the first block, so later blocks cannot change it
        try:
            with pcsv.open_csv(
                self.path, convert_options=convert, read_options=pcsv.ReadOptions(block_size=1 << 22)
            ) as reader:
                for batch in reader:
                    for start in range(0, batch.num_rows, chunk_size):
                        yield pa.Table.from_batches([batch.slice(start, chunk_size)])
        except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {self.where!r} as csv: {exc}") from exc

    def carry_fields(self):
        return [f for f in self._file_schema if f.name != self.columns.id]


def _parquet_files(paths) -> list[Path]:
    if isinstance(paths, (str, Path)):
        path = Path(paths)
        if not path.exists():
            raise InputError(f"file not found: {str(path)!r}")
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq"))
            if not files:
                raise InputError(f"folder {str(path)!r} holds no .parquet or .pq files")
            return files
        return [path]
    files = [Path(p) for p in paths]
    if not files:
        raise InputError("the list of Parquet files is empty")
    for f in files:
        if not f.is_file():
            raise InputError(f"file not found: {str(f)!r}")
    return files


def _column_names(table) -> list[str]:
    if isinstance(table, pa.Table):
        return table.column_names
    if isinstance(table, Mapping):
        return list(table)
    return [str(c) for c in table.columns]  # a DataFrame


def _length(table) -> int:
    if isinstance(table, pa.Table):
        return table.num_rows
    if isinstance(table, Mapping):
        lengths = {k: len(v) for k, v in table.items()}
        if len(set(lengths.values())) > 1:
            raise InputError(f"pool columns must have the same length, got {lengths}")
        return next(iter(lengths.values()), 0)
    return len(table)


def _slice_to_arrow(table, start: int, stop: int, columns: list[str]) -> pa.Table:
    if isinstance(table, pa.Table):
        return table.select(columns).slice(start, stop - start)
    if isinstance(table, Mapping):
        return pa.table({c: np.asarray(table[c])[start:stop] for c in columns})
    part = table.iloc[start:stop][columns]  # a DataFrame
    return pa.Table.from_pandas(part, preserve_index=False)


def _text_like(t: pa.DataType) -> bool:
    """What ``carry="auto"`` copies into a batch: text (strings, or a dictionary of them), dates and times,
    such as a URL, a caption, an image's path or a capture date; numeric, binary and list columns (features,
    embeddings, probabilities, image bytes) can be wide and are copied only when named."""
    return _is_text(t) or pa.types.is_temporal(t) or (pa.types.is_dictionary(t) and _is_text(t.value_type))


def carried_columns(source: PoolSource, carry: str | None, *, taken=()) -> list[str]:
    """The pool columns a batch carries: ``carry`` is ``"auto"`` (the text-like columns, skipping names in
    ``taken``), ``"none"`` or ``None`` (nothing), or comma-separated names (each a pool column other than
    the id, and not in ``taken``)."""
    if carry is None or carry.strip().lower() == "none":
        return []
    fields = source.carry_fields()
    if carry.strip().lower() == "auto":
        return [f.name for f in fields if _text_like(f.type) and f.name not in taken]
    names = [c.strip() for c in carry.split(",") if c.strip()]
    have = {f.name for f in fields}
    for name in names:
        if name in taken:
            raise InputError(
                f"--carry-cols {name!r}: the batch already has a column {name!r}; carry it under another name"
            )
        if name not in have:
            shown = sorted(have)
            raise MissingColumnError(
                f"--carry-cols {name!r}: {source.where} has no such column (the id is always in the batch); "
                f"its columns: {shown[:20] + ['...'] if len(shown) > 20 else shown}"
            )
    return list(dict.fromkeys(names))


def open_pool(source, columns: PoolColumns | None = None) -> PoolSource:
    """A :class:`PoolSource` for ``source`` (see the module docstring), reading ``columns``.

    ``columns`` is required for everything but a :class:`PoolChunk`.
    """
    if isinstance(source, PoolSource):
        return source
    if isinstance(source, PoolChunk):
        return ChunkSource(source)
    if columns is None and isinstance(source, (str, Path)) and Path(source).is_dir():
        columns = PoolColumns(image="image")  # an image folder needs no column names
    if columns is None:
        raise InputError(f"columns (a PoolColumns) are required to read a pool from {type(source).__name__}")
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        from activemine.data.images import is_image_folder

        if is_image_folder(source):
            return ImageFolderSource(source, columns.image_spec, id_col=columns.id, image_col=columns.image or "image")
    if not columns.has_features and not columns.proba and not columns.weak_proba:
        raise MissingColumnError("the pool needs feature columns or probability columns; none were named")
    if isinstance(source, (str, Path)):
        suffix = Path(source).suffix.lower()
        if suffix == ".csv":
            if not Path(source).is_file():
                raise InputError(f"file not found: {str(source)!r}")
            return CsvSource(source, columns)
        if suffix in (".parquet", ".pq") or Path(source).is_dir():
            return ParquetSource(source, columns)
        raise InputError(
            f"cannot tell the format of {str(source)!r}: expected a .parquet, .pq or .csv file or a folder"
        )
    if isinstance(source, (list, tuple)) and source and all(isinstance(p, (str, Path)) for p in source):
        return ParquetSource(source, columns)
    if isinstance(source, (pa.Table, Mapping)) or (hasattr(source, "iloc") and hasattr(source, "columns")):
        return TableSource(source, columns)
    raise InputError(
        f"cannot read a pool from {type(source).__name__}; expected a PoolChunk, a mapping of arrays, "
        "a pyarrow Table, a DataFrame, or a Parquet/CSV path"
    )

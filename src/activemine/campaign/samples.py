"""Creating a campaign from L and U, and reading its labeled samples back: features, labels and views.

A sample is shown to people in one of three *views*, chosen at init:

* ``image``: the features are pixels named ``px0..px{n-1}`` with ``n`` a square
  (Fashion-MNIST's 784 give 28x28), rendered as a grayscale PNG;
* ``text``: a string column of the pool (``text_col``) is shown as text;
* ``table``: the first fields of the row are shown as a table.
"""

from __future__ import annotations

import math
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activemine.campaign.store import CampaignStore
from activemine.data.chunks import LabeledSet
from activemine.data.tables import read_table, require_columns
from activemine.errors import CampaignError, InputError, SingleClassError
from activemine.selection.batch import check_ids

__all__ = [
    "LabeledRows",
    "PoolRows",
    "current_label_arrays",
    "detect_view",
    "encode_png",
    "init_campaign",
    "labeled_rows",
    "labeled_training_set",
    "pixels_to_png",
]

_PIXEL = re.compile(r"px(\d+)$")
TABLE_VIEW_FIELDS = 30


def detect_view(features: list[str], pool_columns: list[str], text_col: str | None) -> dict:
    """The view of a campaign's samples: ``{"kind": "image", "shape": [h, w]}``, text or table."""
    if text_col is not None:
        require_columns(pool_columns, [text_col], where="the pool")
        return {"kind": "text", "column": text_col}
    numbers = [int(m.group(1)) for m in map(_PIXEL.match, features) if m]
    side = math.isqrt(len(features))
    if (
        features
        and len(numbers) == len(features)
        and sorted(numbers) == list(range(len(features)))
        and side * side == len(features)
    ):
        return {"kind": "image", "shape": [side, side], "columns": [f"px{i}" for i in range(len(features))]}
    if "text" in pool_columns and "text" not in features:
        return {"kind": "text", "column": "text"}
    return {"kind": "table", "columns": features[:TABLE_VIEW_FIELDS]}


def _id_kind(ids: np.ndarray) -> str:
    return "int" if ids.dtype.kind == "i" else "str"


def _pool_files(pool: Path) -> list[Path]:
    if pool.is_dir():
        files = sorted(p for p in pool.iterdir() if p.suffix.lower() in (".parquet", ".pq") and p.is_file())
        if not files:
            raise InputError(f"the folder {str(pool)!r} holds no .parquet files")
        return files
    if not pool.is_file():
        raise InputError(f"file not found: {str(pool)!r}")
    if pool.suffix.lower() not in (".parquet", ".pq", ".csv"):
        raise InputError(
            f"cannot tell the format of {str(pool)!r}: expected .parquet, .csv or a folder of .parquet files"
        )
    return [pool]


def _schema(path: Path) -> pa.Schema:
    try:
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            with pcsv.open_csv(path) as reader:
                return reader.schema
        return pq.read_schema(path)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from exc


def _copy_pool(files: list[Path], dest: Path, *, copy: bool) -> list[str]:
    """The pool's files as the campaign records them: copied (or converted from CSV) file by file,
    or their absolute paths when ``copy`` is off. Never holds more than one CSV block in memory."""
    if not copy and all(f.suffix.lower() != ".csv" for f in files):
        return [str(f.resolve()) for f in files]
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for i, f in enumerate(files):
        target = dest / f"part-{i:05d}.parquet"
        if f.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            with (
                pcsv.open_csv(f, read_options=pcsv.ReadOptions(block_size=1 << 24)) as reader,
                pq.ParquetWriter(target, reader.schema) as writer,
            ):
                for batch in reader:
                    writer.write_batch(batch)
        else:
            shutil.copyfile(f, target)
        out.append(str(target.relative_to(dest.parent.parent)))
    return out


def _require_numeric(schema: pa.Schema, columns, *, where: str, what: str) -> None:
    bad = [
        (c, str(schema.field(c).type))
        for c in columns
        if not (pa.types.is_integer(schema.field(c).type) or pa.types.is_floating(schema.field(c).type))
    ]
    if bad:
        raise InputError(f"{what} columns of {where} must be numeric, got {bad[:5]}")


def _check_pool_ids(
    files: list[Path], id_col: str, kind: str, l_ids: np.ndarray, *, progress: Callable[[int], None] | None
) -> int:
    """One pass over the pool's id column: no missing ids, none shared with L. Returns the row count."""
    from activemine.campaign.pool import arrow_ids

    wanted = pa.array(l_ids.astype(np.int64) if kind == "int" else l_ids.astype(str))
    rows = 0
    for f in files:
        if f.suffix.lower() == ".csv":
            import pyarrow.csv as pcsv

            reader = pcsv.open_csv(f, convert_options=pcsv.ConvertOptions(include_columns=[id_col]))
        else:
            reader = pq.ParquetFile(f, pre_buffer=False).iter_batches(batch_size=1 << 18, columns=[id_col])
        for batch in reader:
            col = batch.column(0)
            if col.null_count:
                raise InputError(f"column {id_col!r} of {str(f)!r} has {col.null_count} missing ids")
            if len(wanted):
                both = pc.filter(col, pc.is_in(arrow_ids(col, kind), value_set=wanted))
                if len(both):
                    raise InputError(f"ids are both in the pool and in the labeled set, e.g. {both.to_pylist()[:5]}")
            rows += batch.num_rows
            if progress is not None:
                progress(batch.num_rows)
    return rows


def init_campaign(
    folder,
    *,
    pool,
    labeled=None,
    label_col: str = "y",
    id_col: str = "id",
    text_col: str | None = None,
    classes=None,
    proba_cols=None,
    weak_proba_cols=None,
    copy: bool = True,
    progress: Callable[[int], None] | None = None,
    image_col: str | None = None,
    image_spec=None,
    skip_bad_images: bool = False,
    skipped: list | None = None,
) -> CampaignStore:
    """Create a campaign in ``folder`` from the pool ``pool`` and the labeled set ``labeled``.

    ``pool`` is a Parquet file, a folder of Parquet files, or a CSV file; it is
    never read whole: its files are copied into ``folder/data/pool`` as files
    (CSV converted block by block), or with ``copy=False`` their absolute
    paths are recorded. One pass over its id column checks for missing ids and
    ids shared with L (``progress`` gets the rows read).

    A *feature pool* has L's feature columns (L's columns other than the id
    and the label). A *probability pool* brings the business model's class
    probabilities: ``proba_cols`` (one group ``[p0, p1, ...]``, or one group
    per committee member) and/or ``weak_proba_cols`` (HW's weak model), each
    group in the order of the campaign's classes; L then needs only ids and
    labels, and is optional when ``classes`` is given. ``classes`` fixes the
    class list (default: the labels present in L, sorted).

    An *image pool* is a folder of image files, or a table whose ``image_col``
    holds paths or bytes; L is then a folder with one subfolder per class, or
    a table with ``image_col``. Every image is checked before anything is
    written (:func:`activemine.data.images.check_images`); with
    ``skip_bad_images`` bad ones are left out and ``skipped`` (a list) gets
    ``(what, BadImages)`` pairs. A folder pool is recorded as a table of ids
    (relative paths) and image paths; the images stay where they are.
    """
    folder = Path(folder)
    if (folder / "campaign.db").exists():
        raise CampaignError(f"{str(folder)!r} already holds a campaign; choose another folder")
    proba_groups = [list(g) for g in (proba_cols or [])]
    weak = list(weak_proba_cols or [])
    image = None
    if image_col is not None or _image_folder(pool) or _image_folder(labeled):
        if proba_groups or weak:
            raise InputError("an image pool brings images, not probability columns; drop --proba-cols")
        image = _image_inputs(
            pool, labeled, id_col, label_col, image_col, image_spec, skip_bad_images, skipped, progress
        )
        files = image["files"]
    else:
        files = _pool_files(Path(pool))
    data = folder / "data"
    if data.exists() and any(data.iterdir()):
        raise CampaignError(f"{str(data)!r} already exists and is not empty; choose a new campaign folder")
    if labeled is None and (not (proba_groups or weak) or classes is None):
        raise InputError("--labeled is required unless the pool brings probabilities and --classes names the classes")
    if image is not None:
        L = image["labeled"]
    else:
        L = read_table(Path(labeled)) if labeled is not None else None
    if L is not None:
        require_columns(L.column_names, [id_col, label_col], where=str(labeled))
    schemas = [image["schema"]] if image is not None else [_schema(f) for f in files]
    names = schemas[0].names
    features: list[str] = []
    if image is not None:  # checked by _image_inputs
        needed = [id_col, image["column"]]
    elif proba_groups or weak:
        needed = [id_col, *(c for g in proba_groups for c in g), *weak]
    else:
        features = [c for c in L.column_names if c not in (id_col, label_col)]
        if not features:
            raise InputError(f"{labeled} has no feature columns besides {id_col!r} and {label_col!r}")
        needed = [id_col, *features]
    for f, schema in zip(files, schemas) if image is None else ():
        require_columns(schema.names, needed, where=str(f))
        if schema.field(id_col).type != schemas[0].field(id_col).type:
            raise InputError(
                f"pool files disagree on the type of {id_col!r}: {schemas[0].field(id_col).type} and "
                f"{schema.field(id_col).type} ({str(f)!r})"
            )
        _require_numeric(schema, needed[1:], where=str(f), what="probability" if (proba_groups or weak) else "feature")
    from activemine.campaign.pool import id_kind_of_type

    kind = id_kind_of_type(schemas[0].field(id_col).type, where=f"{pool} column {id_col!r}")
    if L is not None:
        l_ids = check_ids(L.column(id_col).to_numpy(zero_copy_only=False), name=f"{labeled} column {id_col!r}")
        if _id_kind(l_ids) != kind:
            raise InputError(
                f"ids of {pool} are {'integers' if kind == 'int' else 'strings'} but ids of {labeled} are "
                f"{l_ids.dtype}; they must be of one kind"
            )
        y = np.asarray(L.column(label_col).to_pylist(), dtype=object)
        if any(v is None for v in y):
            raise InputError(f"column {label_col!r} of {labeled} has missing labels")
    else:
        l_ids, y = np.empty(0, dtype=np.int64 if kind == "int" else "<U1"), np.empty(0, dtype=object)
    found = sorted(set(y.tolist()))
    class_list = list(classes) if classes is not None else found
    unknown = sorted(set(found) - set(class_list), key=str)
    if unknown:
        raise InputError(f"labels {unknown[:10]} of {labeled} are not among the given classes {class_list}")
    if len(class_list) < 2:
        raise SingleClassError(f"a campaign needs at least two classes, got {class_list}")
    if len({str(c) for c in class_list}) != len(class_list):
        raise InputError(f"classes {class_list} are not distinct as text")
    for group in [*proba_groups, *([weak] if weak else [])]:
        if len(group) != len(class_list):
            raise InputError(
                f"probability columns {group} are {len(group)} but the campaign has "
                f"{len(class_list)} classes {class_list}; give one column per class, in that order"
            )
    # a probability pool is shown by its other columns (pixels, a text, fields), if it has any
    shown = features or [c for c in names if c not in needed]
    if image is not None:
        view = {"kind": "image_file", "column": image["column"], "columns": [image["column"]]}
        _check_listed_ids(image["ids"], l_ids)
    else:
        view = detect_view(shown, names, text_col)
        _check_pool_ids(files, id_col, kind, l_ids, progress=progress)
    data.mkdir(parents=True, exist_ok=True)
    try:
        if image is not None and image["manifest"] is not None:
            (data / "pool").mkdir(parents=True, exist_ok=True)
            pq.write_table(image["manifest"], data / "pool" / "part-00000.parquet")
            pool_files = [str(Path("data") / "pool" / "part-00000.parquet")]
        else:
            pool_files = _copy_pool(files, data / "pool", copy=copy)
        if L is not None:
            pq.write_table(L, data / "labeled.parquet")
        meta = {
            "id_col": id_col,
            "label_col": label_col,
            "id_kind": kind,
            "classes": [c.item() if isinstance(c, np.generic) else c for c in class_list],
            "features": features,
            "proba_cols": proba_groups,
            "weak_proba_cols": weak,
            "pool_files": pool_files,
            "view": view,
        }
        if image is not None:
            meta["image"] = image["meta"]
        samples = [(str(s), "labeled", i) for i, s in enumerate(l_ids.tolist())]
        initial = [(str(s), str(v)) for s, v in zip(l_ids.tolist(), y.tolist())]
        return CampaignStore.create(folder, meta=meta, samples=samples, initial_labels=initial)
    except BaseException:
        if not (folder / "campaign.db").exists():
            shutil.rmtree(data, ignore_errors=True)
        raise


def _image_folder(path) -> bool:
    from activemine.data.images import is_image_folder

    return path is not None and Path(path).is_dir() and is_image_folder(path)


def _image_inputs(pool, labeled, id_col, label_col, image_col, spec, skip_bad, skipped, progress) -> dict:
    """Check an image campaign's L and pool without writing anything: L as a table (id, image, label),
    the pool as a manifest table (folder) or its files (a table with ``image_col``), and the image meta."""
    from dataclasses import replace

    from activemine.data.images import ImageSpec, check_images, first_item, list_labeled_images
    from activemine.data.sources import ImageFolderSource, PoolColumns, open_pool

    spec = spec or ImageSpec()
    if labeled is None:
        raise InputError("--labeled is required for an image pool: a folder with one subfolder per class")
    labeled = Path(labeled)
    if labeled.is_dir():
        column = image_col or "image"
        paths, y, classes = list_labeled_images(labeled)
        L = pa.table({id_col: paths, column: paths, label_col: pa.array(np.asarray(classes, dtype=str)[y])})
    else:
        if image_col is None:
            raise InputError(f"name the image column of {str(labeled)!r} (paths or bytes) with --image-col")
        column = image_col
        L = read_table(labeled)
        require_columns(L.column_names, [id_col, label_col, column], where=str(labeled))
    l_root = str((labeled if labeled.is_dir() else labeled.parent).resolve())
    bad = check_images(
        L.column(column), root=l_root, where=str(labeled), n_jobs=spec.n_jobs, skip_bad=skip_bad, progress=progress
    )
    if len(bad):
        keep = np.ones(L.num_rows, dtype=bool)
        keep[bad.rows] = False
        L = L.filter(pa.array(keep))
        if skipped is not None:
            skipped.append(("labeled images", bad))
    spec = replace(spec, root=l_root).resolved(first_item(L.column(column)), where=str(labeled))
    pool_spec = replace(spec, root=None)
    pool = Path(pool)
    if _image_folder(pool):
        source = ImageFolderSource(pool, pool_spec, id_col=id_col, image_col=column)
    else:
        if image_col is None:
            raise InputError(f"name the image column of the pool {str(pool)!r} (paths or bytes) with --image-col")
        source = open_pool(pool, PoolColumns(id=id_col, image=column, image_spec=pool_spec))
    pool_bad = source.check_images(skip_bad=skip_bad, progress=progress)
    if pool_bad is not None and len(pool_bad) and skipped is not None:
        skipped.append(("pool images", pool_bad))
    if isinstance(source, ImageFolderSource):
        manifest = pa.table({id_col: source.paths, column: source.paths})
        ids, files, schema = source.paths, [], manifest.schema
    else:
        if source.skip_ids is not None:
            raise InputError(
                "--skip-bad-images needs a folder of images for a campaign pool; remove the bad rows from "
                f"{str(pool)!r}: {pool_bad.describe('pool images')}"
            )
        manifest, files = None, _pool_files(pool)
        schema = _schema(files[0])
        ids = pa.chunked_array([t.column(id_col) for t in source.tables(1 << 18)])
    meta = {
        "column": column,
        "root": str(Path(source.columns.image_spec.root).resolve()),
        "labeled_root": l_root,
        "size": list(spec.size),
        "mode": spec.mode,
    }
    return {
        "labeled": L,
        "files": files,
        "manifest": manifest,
        "schema": schema,
        "ids": ids,
        "column": column,
        "meta": meta,
    }


def _check_listed_ids(pool_ids, l_ids: np.ndarray) -> None:
    """No id both in the pool (an Arrow array) and in L."""
    if not len(l_ids):
        return
    kind = "int" if l_ids.dtype.kind == "i" else "str"
    from activemine.campaign.pool import arrow_ids

    col = arrow_ids(pool_ids, kind)
    both = pc.filter(
        col, pc.is_in(col, value_set=pa.array(l_ids.astype(np.int64) if kind == "int" else l_ids.astype(str)))
    )
    if len(both):
        raise InputError(f"ids are both in the pool and in the labeled set, e.g. {both.to_pylist()[:5]}")


def _feature_matrix(table: pa.Table, features: list[str]) -> np.ndarray:
    out = np.empty((table.num_rows, len(features)), dtype=np.float32)
    for j, name in enumerate(features):
        out[:, j] = table.column(name).to_numpy(zero_copy_only=False)
    return out


class LabeledRows:
    """The campaign's initial labeled set L in memory (L is the small side): ids and, for feature pools, features."""

    def __init__(self, store: CampaignStore, *, features: bool = True):
        meta = store.meta
        path = store.data_path("labeled")
        self.table = pq.read_table(path) if path.is_file() else None
        sids = [] if self.table is None else [str(s) for s in self.table.column(meta["id_col"]).to_pylist()]
        self.sids = np.asarray(sids, dtype=str) if sids else np.empty(0, dtype="<U1")
        self.ids = store.typed_id_array(self.sids)
        want = features and meta["features"] and not (meta.get("proba_cols") or meta.get("weak_proba_cols"))
        self.X = _feature_matrix(self.table, meta["features"]) if want and self.table is not None else None
        self.image_shape = None
        from activemine.campaign.pool import image_spec_of

        spec = image_spec_of(meta, labeled=True)
        if features and spec is not None and self.table is not None:
            from activemine.data.images import decode_images

            self.X = decode_images(self.table.column(meta["image"]["column"]), spec, where="the labeled images")
            self.image_shape = spec.shape


def current_label_arrays(store: CampaignStore, *, conn=None) -> tuple[np.ndarray, np.ndarray]:
    """Every labeled, unflagged id and its label, as sorted-by-id string arrays ``(n,)`` each."""
    current = store.current_labels(conn=conn)
    if not current:
        return np.empty(0, dtype="<U1"), np.empty(0, dtype="<U1")
    sids = np.asarray(list(current.keys()), dtype=str)
    labels = np.asarray(list(current.values()), dtype=str)
    if sids.size > 1 and not (sids[1:] > sids[:-1]).all():  # the store returns them sorted; make sure
        order = np.argsort(sids, kind="stable")
        sids, labels = sids[order], labels[order]
    return sids, labels


def labeled_training_set(
    store: CampaignStore, sids: np.ndarray, labels: np.ndarray, *, progress: Callable[[int], None] | None = None
) -> LabeledSet:
    """The labeled set a round trains on: ``sids`` ``(n,)`` with ``labels`` ``(n,)`` (stored text).

    For a feature pool, L's features plus those of the labeled pool samples,
    found in one pass over the pool; for a probability pool, labels and ids only.
    """
    from activemine.campaign.pool import CampaignPool, image_spec_of

    L = LabeledRows(store)
    y_all = store.typed_labels(labels.tolist())
    in_l = np.isin(sids, L.sids)
    if L.X is None and not CampaignPool(store).has_features:
        return LabeledSet(None, y_all, store.typed_id_array(sids))
    l_pos = {s: i for i, s in enumerate(L.sids.tolist())}
    l_rows = np.fromiter((l_pos[s] for s in sids[in_l].tolist()), dtype=np.int64, count=int(in_l.sum()))
    X_parts, y_parts, id_parts = [L.X[l_rows]], [y_all[in_l]], [L.ids[l_rows]]
    pool_sids = sids[~in_l]
    if pool_sids.size:
        pool = CampaignPool(store)
        spec = image_spec_of(store.meta)
        names = [store.meta["image"]["column"]] if spec is not None else pool.features
        _, table = pool.locate(pool_sids, names, progress=progress)
        found = np.asarray(table.column(pool.id_col).to_numpy(zero_copy_only=False)).astype(str)
        order = np.argsort(pool_sids)
        pos = order[np.searchsorted(pool_sids, found, sorter=order)]
        if spec is not None:
            from activemine.data.images import decode_images

            X_parts.append(decode_images(table.column(names[0]), spec, where="the labeled pool images"))
        else:
            X_parts.append(_feature_matrix(table, pool.features))
        y_parts.append(y_all[~in_l][pos])
        id_parts.append(store.typed_id_array(found))
    return LabeledSet(
        np.concatenate(X_parts), np.concatenate(y_parts), np.concatenate(id_parts), image_shape=L.image_shape
    )


def encode_png(gray: np.ndarray) -> bytes:
    """A grayscale ``(h, w)`` uint8 image as PNG bytes (no imaging library needed)."""
    h, w = gray.shape
    raw = b"".join(b"\x00" + gray[r].tobytes() for r in range(h))  # filter type 0 per scanline

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pixels_to_png(pixels, shape, *, scale: int = 1) -> bytes:
    """Pixel values (0..1 or 0..255) as a PNG of ``shape``, each pixel repeated ``scale`` times per side."""
    arr = np.asarray(pixels, dtype=np.float64).reshape(shape)
    if arr.size and np.nanmax(arr) <= 1.0:
        arr = arr * 255.0
    gray = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if scale > 1:
        gray = np.repeat(np.repeat(gray, scale, axis=0), scale, axis=1)
    return encode_png(np.ascontiguousarray(gray))


class PoolRows:
    """A campaign's whole pool (``"pool"``, read from its files) or L (``"labeled"``) in memory.

    Only for steps that need every row's features at once on campaigns that
    fit in memory (``campaign forecast``'s learning curve); rounds, imports,
    exports, the dataset and the labeling page stream the pool instead.
    """

    def __init__(self, store: CampaignStore, origin: str = "pool", *, features: bool = True):
        meta = store.meta
        if origin == "pool":
            self.table = pa.concat_tables([pq.ParquetFile(f).read() for f in store.pool_files()])
        else:
            self.table = pq.read_table(store.data_path("labeled"))
        self.sids = [str(s) for s in self.table.column(meta["id_col"]).to_pylist()]
        self.ids = store.typed_id_array(self.sids)
        self.X = _feature_matrix(self.table, meta["features"]) if features and meta["features"] else None


def labeled_rows(store: CampaignStore, pool: PoolRows, labeled: PoolRows, current: dict | None = None):
    """Row indices into L ``(a,)`` and into U ``(b,)`` of every labeled, unflagged sample, and their typed labels ``(a + b,)``.

    ``current`` (sid -> label text) replaces the store's unflagged labels, e.g. with consensus labels.
    """
    current = store.current_labels() if current is None else current
    rows: dict[str, list] = {"pool": [], "labeled": []}
    labels: dict[str, list] = {"pool": [], "labeled": []}
    for origin, table in (("labeled", labeled), ("pool", pool)):
        for i, sid in enumerate(table.sids):
            if sid in current:
                rows[origin].append(i)
                labels[origin].append(store.typed_label(current[sid]))
    as_index = lambda r: np.asarray(r, dtype=np.int64)  # noqa: E731
    return as_index(rows["labeled"]), as_index(rows["pool"]), np.asarray(labels["labeled"] + labels["pool"])

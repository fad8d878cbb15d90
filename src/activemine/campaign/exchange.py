"""Exchange with annotation tools: export a round, import labels, write the training set.

Formats (chosen by ``format`` on export and by the file suffix on import):

* ``csv`` / ``.csv`` and ``jsonl`` / ``.jsonl``: one sample per row with fields
  the campaign's id column (``--id-col`` at init; import also reads ``id``) and
  ``label`` (empty until labeled) and optional ``annotator``; exports add
  ``round, rank, score, stratum, predicted``.
* ``label-studio`` / ``.json``: export writes Label Studio *tasks* (data with
  ``activemine_id`` and an ``image`` data URI, ``text`` or the fields; the
  model's predicted class as a pre-annotation; the acquisition score in
  ``meta``); import reads Label Studio's JSON export (tasks with
  ``annotations``), and its JSON-MIN export.

An import is streamed into a temporary table inside one write transaction and
validated completely there; any bad record rolls it all back, so a file is
applied whole or not at all. Empty labels are skipped, not errors; ids of the
initial labeled set and ids no round selected are refused unless an option
allows them. The same
label for the same id by the same annotator is stored once, so re-importing a
file changes nothing; a second, different label for an id is kept and flags
the id. Labels the dirty-data check doubts are flagged ``suspect``.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from xml.sax.saxutils import quoteattr

import numpy as np
import pyarrow as pa

from activemine.campaign.batchdata import read_round
from activemine.campaign.checks import (
    DEFAULT_SUSPECT_THRESHOLD,
    campaign_thresholds,
    gather_proba,
    lift_spared_flags,
    suspect_mask,
)
from activemine.campaign.pool import CampaignPool
from activemine.campaign.samples import LabeledRows, pixels_to_png
from activemine.campaign.store import ANY_ROUND, CampaignStore, now
from activemine.data.files import atomic_path
from activemine.data.tables import write_table
from activemine.errors import InputError, RejectedImportError

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_SUFFIXES",
    "ImportReport",
    "export_round",
    "import_labels",
    "label_studio_config",
    "label_studio_config_path",
    "write_dataset",
    "write_label_studio_config",
]

EXPORT_FORMATS = ("csv", "jsonl", "label-studio")
#: the file suffixes each export format may be written under (and that import reads it by)
EXPORT_SUFFIXES = {"csv": (".csv",), "jsonl": (".jsonl", ".ndjson"), "label-studio": (".json",)}
MAX_LINE_BYTES = 1 << 20  # a CSV or JSONL line longer than this is not a label record
MAX_ERRORS_SHOWN = 20
CHUNK = 50_000  # records per insert into the import's temporary table


def _atomic_write(path: Path, write: Callable[[io.TextIOBase], None]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8", newline="") as fh:
        write(fh)


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- export ------------------------------------------------------------------------
def _round_rows(store: CampaignStore, round_no: int, include_labeled: bool) -> list[dict]:
    from activemine.campaign.overlap import open_sids

    with store.snapshot() as conn:
        store.require_round(round_no, conn=conn)
        rows = conn.execute(
            "SELECT b.sid, b.rank, EXISTS (SELECT 1 FROM labels l WHERE l.sid = b.sid AND l.retracted_at IS NULL) "
            "FROM batches b WHERE b.round = ? ORDER BY b.rank",
            (round_no,),
        ).fetchall()
        data = read_round(conn, round_no)
        # overlap and relabel rounds want more labels; the same count as `campaign status` queued
        wanted = set() if include_labeled else open_sids(store, round_no, conn=conn)
    ids = store.typed_ids([r[0] for r in rows])
    score, stratum, pred, proba, row = (
        data.score.tolist(),
        data.stratum.tolist(),
        data.predicted.tolist(),
        data.proba.tolist(),
        data.row.tolist(),
    )
    return [
        {
            "id": i,
            "round": round_no,
            "rank": rank,
            "score": score[rank],
            "stratum": stratum[rank],
            "predicted": pred[rank],
            "proba": proba[rank],
            "row": row[rank],
        }
        for i, (sid, rank, has_label) in zip(ids, rows)
        if include_labeled or not has_label or sid in wanted
    ]


def label_studio_config(store: CampaignStore) -> str:
    """A Label Studio labeling config matching the exported tasks (``from_name="label"``); class names are XML-escaped."""
    kind = store.meta["view"]["kind"]
    obj = {"image": '<Image name="image" value="$image"/>', "text": '<Text name="text" value="$text"/>'}.get(
        kind, '<Text name="text" value="$fields"/>'
    )
    target = "image" if kind == "image" else "text"
    choices = "\n".join(f"    <Choice value={quoteattr(c)}/>" for c in store.class_names)
    return f'<View>\n  {obj}\n  <Choices name="label" toName="{target}" choice="single" showInline="true">\n{choices}\n  </Choices>\n</View>\n'


def write_label_studio_config(store: CampaignStore, path) -> None:
    """Write :func:`label_studio_config` to ``path`` atomically."""
    from activemine.data.outputs import check_output

    check_output(path, protected=store.own_files(), option="the labeling config")
    _atomic_write(Path(path), lambda fh: fh.write(label_studio_config(store)))


def label_studio_config_path(out) -> Path:
    """Where ``campaign export --format label-studio --out OUT`` writes the labeling config beside the tasks."""
    out = Path(out)
    return out.with_name(out.stem + ".label-config.xml")


def view_columns(view: dict) -> list[str]:
    """The pool columns a view shows."""
    if view["kind"] == "text":
        return [view["column"]]
    return list(view.get("columns") or [])


def task_data(view: dict, row: dict, *, scale: int = 8) -> dict:
    """What a sample shows: an ``image`` data URI, a ``text``, or its ``fields`` as text."""
    if view["kind"] == "image":
        png = pixels_to_png([row[c] for c in view["columns"]], view["shape"], scale=scale)
        return {"image": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}
    if view["kind"] == "text":
        return {"text": str(row[view["column"]])}
    return {"fields": "\n".join(f"{c}: {row[c]}" for c in view["columns"])}


def _label_studio_tasks(store: CampaignStore, rows: list[dict]) -> list[dict]:
    view = store.meta["view"]
    shown = CampaignPool(store).rows_at([r["row"] for r in rows], view_columns(view)).to_pylist() if rows else []
    target = "image" if view["kind"] == "image" else "text"
    tasks = []
    for r, row in zip(rows, shown):
        data = {"activemine_id": r["id"], **task_data(view, row)}
        confidence = max(r["proba"]) if r["proba"] else None
        result = [{"from_name": "label", "to_name": target, "type": "choices", "value": {"choices": [r["predicted"]]}}]
        tasks.append(
            {
                "data": data,
                "predictions": [
                    {"model_version": f"activemine-round-{r['round']}", "score": confidence, "result": result}
                ],
                "meta": {
                    "round": r["round"],
                    "rank": r["rank"],
                    "acquisition_score": r["score"],
                    "stratum": r["stratum"],
                    **({"flagged": r["flagged"], "given": r["given"]} if "flagged" in r else {}),
                },
            }
        )
    return tasks


def exported_view_columns(view: dict, taken: list[str]) -> list[str]:
    """The pool columns CSV and JSONL exports carry so an annotator sees the sample: the text, the image
    file's path or the table's fields (not an image's pixel columns); none whose name ``taken`` already has."""
    if view["kind"] == "image":
        return []
    return [c for c in view_columns(view) if c not in taken]


def export_id_field(store: CampaignStore) -> str:
    """The id field of exported CSV and JSONL rows: the campaign's id column (``--id-col`` at init), so
    the file reads like the campaign's data; ``id`` if that name is one of the other fields."""
    name = store.meta["id_col"]
    reserved = ("label", "annotator", "round", "rank", "score", "stratum", "predicted", "flagged", "given")
    return "id" if name in reserved else name


def _flagged_rows(store: CampaignStore) -> list[dict]:
    """Every flagged sample in some batch, with its newest batch row, why it is flagged and the labels it has."""
    from activemine.campaign.batchdata import newest_positions

    with store.snapshot() as conn:
        flagged = store.flagged(conn=conn)
        where = newest_positions(conn, sorted(flagged))
        given: dict[str, list[str]] = {}
        for sid, label, who in conn.execute(
            "SELECT sid, label, annotator FROM labels WHERE retracted_at IS NULL AND sid IN "
            "(SELECT sid FROM labels WHERE retracted_at IS NULL AND suspect = 1 UNION "
            "SELECT sid FROM labels WHERE retracted_at IS NULL GROUP BY sid HAVING COUNT(DISTINCT label) > 1) "
            "ORDER BY label_id"
        ):
            given.setdefault(sid, []).append(f"{label} ({who})")
        data = {r: read_round(conn, r) for r in sorted({r for r, _ in where.values()})}
    rows = []
    for sid in sorted(where, key=lambda s: where[s]):
        r, rank = where[sid]
        d = data[r]
        rows.append(
            {
                "id": store.typed_ids([sid])[0],
                "round": r,
                "rank": rank,
                "score": float(d.score[rank]),
                "stratum": d.stratum[rank],
                "predicted": d.predicted[rank],
                "proba": d.proba[rank].tolist(),
                "row": int(d.row[rank]),
                "flagged": "+".join(flagged[sid]),
                "given": "; ".join(given.get(sid, [])),
            }
        )
    return rows


def export_round(
    store: CampaignStore, round_no: int | None, *, fmt: str, out, include_labeled: bool = False, flagged: bool = False
) -> int:
    """Write round ``round_no``'s samples (by default only those without a label) to ``out``; returns the count.

    With ``flagged`` (and ``round_no`` None) the samples written are every
    flagged one instead, for a review: each with why it is flagged
    (``suspect``, ``conflict``) and the labels it has (``given``); import the
    reviewers' labels with ``review=True``, which replaces them and clears the flags.
    """
    from activemine.data.outputs import check_output, check_suffix

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; expected one of {EXPORT_FORMATS}")
    if flagged and round_no is not None:
        raise InputError("export either a round or the flagged samples, not both")
    out = Path(out)
    check_output(out, protected=store.own_files())
    check_suffix(out, fmt, EXPORT_SUFFIXES)
    if fmt == "label-studio":
        check_output(label_studio_config_path(out), protected=store.own_files(), option="the labeling config")
    rows = _flagged_rows(store) if flagged else _round_rows(store, round_no, include_labeled)
    id_field = export_id_field(store)
    others = ["label", "annotator", "round", "rank", "score", "stratum", "predicted"]
    if flagged:
        others += ["flagged", "given"]
    if fmt != "label-studio":  # Label Studio tasks show the sample themselves
        shown = exported_view_columns(store.meta["view"], [id_field, *others, "id"])
        if shown and rows:
            values = CampaignPool(store).rows_at([r["row"] for r in rows], shown).to_pylist()
            rows = [{**r, **v} for r, v in zip(rows, values)]
        others += shown
    fields = [id_field, *others]
    if fmt == "csv":

        def write(fh):
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows({**r, id_field: r["id"], "label": "", "annotator": ""} for r in rows)

    elif fmt == "jsonl":

        def write(fh):
            for r in rows:
                fh.write(json.dumps({id_field: r["id"], **{k: r.get(k) for k in others}}, ensure_ascii=False) + "\n")

    else:
        tasks = _label_studio_tasks(store, rows)

        def write(fh):
            json.dump(tasks, fh, ensure_ascii=False)

    _atomic_write(out, write)
    return len(rows)


# -- import: parsing ---------------------------------------------------------------
# A record is (where, id, label, annotator, created_at); where ("line 7", "task 3") names it in errors.
Record = tuple[str, object, object, object, object]


def _lines(fh: BinaryIO, errors: list[str]) -> Iterator[tuple[int, str]]:
    """Decoded lines (ends kept) with 1-based numbers; bad encoding and overlong lines become errors."""
    number = 0
    while True:
        line = fh.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            errors.append(f"line {number}: longer than {MAX_LINE_BYTES} bytes; a label record is a short line")
            while line and not line.endswith(b"\n"):  # skip the rest of the overlong line
                line = fh.readline(MAX_LINE_BYTES + 1)
            continue
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(f"line {number}: not valid UTF-8 (byte {line[exc.start]:#04x} at column {exc.start + 1})")


def _parse_csv(fh: BinaryIO, errors: list[str], id_field: str = "id") -> Iterator[Record]:
    last = [0]

    def texts():
        for number, text in _lines(fh, errors):
            last[0] = number
            yield text

    reader = csv.reader(texts())
    try:
        header = next(reader, None)
        if header is None:
            errors.append("the file is empty; expected a header with columns id,label[,annotator]")
            return
        header = [h.strip() for h in header]
        id_name = id_field if id_field in header else "id"
        missing = [c for c in (id_name, "label") if c not in header]
        if missing:
            errors.append(
                f"line 1: wrong columns {header}: missing {missing}; expected {id_field},label[,annotator]"
                + (" (or id for the id)" if id_field != "id" else "")
            )
            return
        at = [header.index(name) if name in header else None for name in (id_name, "label", "annotator", "created_at")]
        width = len(header)
        for values in reader:
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != width:
                errors.append(f"line {last[0]}: {len(values)} fields but the header has {width}")
                continue
            yield (f"line {last[0]}", *(None if i is None else values[i] for i in at))
    except csv.Error as exc:
        errors.append(f"line {last[0]}: not valid CSV: {exc}")


def _parse_jsonl(fh: BinaryIO, errors: list[str], id_field: str = "id") -> Iterator[Record]:
    for number, text in _lines(fh, errors):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except (ValueError, RecursionError) as exc:
            errors.append(f"line {number}: not valid JSON for a label record: {_short(str(exc), 120)}")
            continue
        if not isinstance(obj, dict):
            errors.append(f"line {number}: expected a JSON object with id and label, got {type(obj).__name__}")
            continue
        id_name = id_field if id_field in obj else "id"
        missing = [k for k in (id_name, "label") if k not in obj]
        if missing:
            errors.append(
                f"line {number}: missing field(s) {missing}; expected {id_field}, label and optionally annotator"
            )
            continue
        yield f"line {number}", obj[id_name], obj["label"], obj.get("annotator"), obj.get("created_at")


def _ls_annotator(value) -> object:
    if isinstance(value, dict):
        return value.get("email") or value.get("username") or value.get("id")
    return value


def _ls_choice(results, where: str, errors: list[str]):
    choices = [r for r in results or [] if isinstance(r, dict) and r.get("type") == "choices"]
    if not choices:
        return None
    picked = (choices[0].get("value") or {}).get("choices") or []
    if len(choices) > 1 or len(picked) > 1:
        errors.append(f"{where}: more than one choice {picked}; a campaign takes one label per sample")
        return None
    return picked[0] if picked else None


def _parse_label_studio(fh: BinaryIO, errors: list[str], id_field: str = "id") -> Iterator[Record]:
    """Label Studio's JSON export is one JSON document, so it is read whole (exports of that size are small)."""
    raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        errors.append(f"line {line}: not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})")
        return
    del raw
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append(f"line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); is the file truncated?")
        return
    except (ValueError, RecursionError) as exc:  # e.g. a number of millions of digits, or absurd nesting
        errors.append(f"not valid JSON for a label export: {_short(str(exc), 120)}")
        return
    if not isinstance(tasks, list):
        errors.append(f"expected a JSON list of Label Studio tasks, got {type(tasks).__name__}")
        return
    for n, task in enumerate(tasks, 1):
        where = f"task {n}"
        if not isinstance(task, dict):
            errors.append(f"{where}: expected an object, got {type(task).__name__}")
            continue
        if "annotations" not in task and "data" not in task:  # JSON-MIN: data fields and the choice flattened
            if "activemine_id" not in task:
                errors.append(f"{where}: no activemine_id; export the tasks that `campaign export` wrote")
                continue
            yield (
                where,
                task["activemine_id"],
                task.get("label"),
                _ls_annotator(task.get("annotator")),
                task.get("updated_at") or task.get("created_at"),
            )
            continue
        data = task.get("data") or {}
        if "activemine_id" not in data:
            errors.append(f"{where}: data has no activemine_id; export the tasks that `campaign export` wrote")
            continue
        for a, ann in enumerate(task.get("annotations") or [], 1):
            if not isinstance(ann, dict) or ann.get("was_cancelled"):
                continue
            label = _ls_choice(ann.get("result"), f"{where} annotation {a}", errors)
            yield (
                f"{where} annotation {a}",
                data["activemine_id"],
                label,
                _ls_annotator(ann.get("completed_by")),
                ann.get("created_at"),
            )


_PARSERS = {".csv": _parse_csv, ".jsonl": _parse_jsonl, ".ndjson": _parse_jsonl, ".json": _parse_label_studio}


def _as_text(value) -> str | None:
    """Labels and annotators compare as text; 3, 3.0 and "3" are the same label (ids: ``normalize_id``)."""
    if value is None or isinstance(value, bool):
        return None if value is None else "\0bool"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


# -- import: validation and the transaction -----------------------------------------
@dataclass
class ImportReport:
    """What an import did: rows read, labels added, duplicates ignored, ids flagged, earlier flags lifted."""

    path: str
    records: int = 0
    skipped_empty: int = 0
    added: int = 0
    already_present: int = 0
    already_imported: bool = False
    conflicts: list = field(default_factory=list)
    suspect: list = field(default_factory=list)
    lifted: int = 0  # earlier suspect flags the new class thresholds spare, cleared


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _rejected(path: Path, errors: list[str], n_errors: int) -> RejectedImportError:
    shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
    more = f"\n  ... and {n_errors - MAX_ERRORS_SHOWN} more" if n_errors > MAX_ERRORS_SHOWN else ""
    return RejectedImportError(f"{path}: {n_errors} bad record(s), nothing imported:\n  {shown}{more}")


def _id_errors(conn, *, allow_labeled_set: bool) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Rows ``(where, sid)`` of ``incoming`` whose id is of L (unless allowed), and those whose id no round selected."""
    of_l = (
        []
        if allow_labeled_set
        else conn.execute(
            "SELECT i.src, i.sid FROM incoming i JOIN samples s ON s.sid = i.sid AND s.origin = 'labeled' ORDER BY i.n"
        ).fetchall()
    )
    unmined = conn.execute(
        f"SELECT i.src, i.sid FROM incoming i WHERE NOT EXISTS (SELECT 1 FROM batches b WHERE {ANY_ROUND.format('b')} AND b.sid = i.sid) "
        "AND NOT EXISTS (SELECT 1 FROM samples s WHERE s.sid = i.sid) ORDER BY i.n"
    ).fetchall()
    return of_l, unmined


def import_labels(
    store: CampaignStore,
    path,
    *,
    annotator: str | None = None,
    suspect_threshold: float = DEFAULT_SUSPECT_THRESHOLD,
    suspect_by_class: bool = True,
    review: bool = False,
    allow_labeled_set: bool = False,
    allow_unmined: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Validate ``path`` completely and add its labels, all in one transaction (or raise and add nothing).

    The file is read as a stream (CSV and JSONL line by line, a Label Studio
    export as one document) into a temporary table inside the write
    transaction; any bad record rolls everything back. Raises
    :class:`RejectedImportError` naming the offending records: unknown classes,
    bad encoding, truncated JSON, wrong columns, overlong lines, a file with no
    label at all, ids of the initial labeled set L (unless ``allow_labeled_set``)
    and ids no round selected (unless ``allow_unmined``; such ids must then be
    pool ids, found in one pass over the pool).

    A label is flagged ``suspect`` when the model that mined its round puts it
    more than its class's threshold behind its top class: ``suspect_threshold``
    raised per class, with ``suspect_by_class``, so that correct labels of a
    rare class are flagged no more often than others
    (:func:`activemine.campaign.checks.class_thresholds`); earlier flags the
    new thresholds spare are then cleared (``lifted`` in the report). ``progress`` is called
    with the number of records read, chunk by chunk.

    With ``review`` the file is a re-review: for each of its ids the earlier
    labels are retracted and the reviewer's label is kept unchecked, which
    clears the id's flags. A file is imported once per set of options: the
    same bytes with the same options again change nothing.
    """
    path = Path(path)
    parser = _PARSERS.get(path.suffix.lower())
    if parser is None:
        raise InputError(
            f"cannot tell the format of {str(path)!r}: expected .csv, .jsonl or .json (Label Studio export)"
        )
    if not path.is_file():
        raise InputError(f"file not found: {str(path)!r}")
    if not 0.0 <= float(suspect_threshold) <= 1.0:
        raise InputError(f"suspect_threshold must be in [0, 1], got {suspect_threshold}")
    options = {
        "annotator": annotator,
        "review": bool(review),
        "suspect_threshold": float(suspect_threshold),
        "suspect_by_class": bool(suspect_by_class),
        "allow_labeled_set": bool(allow_labeled_set),
        "allow_unmined": bool(allow_unmined),
    }
    key = hashlib.sha256((_file_sha256(path) + json.dumps(options, sort_keys=True)).encode()).hexdigest()
    classes = set(store.class_names)
    default_annotator = annotator or "unknown"
    report = ImportReport(str(path))
    errors: list[str] = []
    n_errors = 0
    source = "review" if review else "import"
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM imports WHERE sha256 = ?", (key,)).fetchone():
            report.already_imported = True
            return report
        conn.execute(
            "CREATE TEMP TABLE incoming (n INTEGER PRIMARY KEY, src TEXT, sid TEXT, label TEXT, annotator TEXT, "
            "created_at TEXT, suspect INTEGER NOT NULL DEFAULT 0)"
        )
        try:
            stamp = now()
            rows: list[tuple] = []

            def flush():
                conn.executemany(
                    "INSERT INTO incoming (src, sid, label, annotator, created_at) VALUES (?, ?, ?, ?, ?)", rows
                )
                if progress is not None:
                    progress(len(rows))
                rows.clear()

            with path.open("rb") as fh:
                for where, rid, rlabel, rwho, rtime in parser(fh, errors, export_id_field(store)):
                    report.records += 1
                    label = _as_text(rlabel)
                    try:
                        sid = store.normalize_id(rid)
                    except InputError as exc:
                        errors.append(f"{where}: {exc}")
                        continue
                    if label is None or label == "":
                        report.skipped_empty += 1
                        continue
                    if label not in classes:
                        errors.append(
                            f"{where}: unknown class {_short(rlabel)} for id {_short(rid)}; expected one of {sorted(classes)}"
                        )
                        continue
                    rows.append((where, sid, label, _as_text(rwho) or default_annotator, _as_text(rtime) or stamp))
                    if len(rows) >= CHUNK:
                        flush()
                    if len(errors) > 10 * MAX_ERRORS_SHOWN:  # keep counting, stop keeping messages
                        n_errors += len(errors) - MAX_ERRORS_SHOWN
                        del errors[MAX_ERRORS_SHOWN:]
            flush()
            of_l, unmined = _id_errors(conn, allow_labeled_set=allow_labeled_set)
            errors += [
                f"{where}: id {_short(store.typed_ids([sid])[0])} is in the initial labeled set; "
                "pass --allow-labeled-set to relabel it"
                for where, sid in of_l[:MAX_ERRORS_SHOWN]
            ]
            n_errors += max(0, len(of_l) - MAX_ERRORS_SHOWN)
            if unmined and allow_unmined:
                unmined = _admit_unmined(store, conn, unmined)
            errors += [
                f"{where}: unknown id {_short(store.typed_ids([sid])[0])}: no round selected it"
                + ("" if allow_unmined else " (pass --allow-unmined for pool samples that were never mined)")
                for where, sid in unmined[:MAX_ERRORS_SHOWN]
            ]
            n_errors += max(0, len(unmined) - MAX_ERRORS_SHOWN)
            n_errors += len(errors)
            if not errors and report.records - report.skipped_empty == 0:
                errors.append("the file holds no label; nothing to import")
                n_errors = 1
            if errors:
                raise _rejected(path, errors, n_errors)
            if not review:
                report.lifted = _mark_suspects(store, conn, float(suspect_threshold), by_class=suspect_by_class)
            _apply(conn, report, key=key, path=path, source=source, review=review)
            flagged_now = [
                r[0]
                for r in conn.execute(
                    "SELECT sid FROM labels WHERE import_id = (SELECT MAX(import_id) FROM imports) AND suspect = 1 ORDER BY sid"
                )
            ]
        finally:
            conn.execute("DROP TABLE IF EXISTS temp.incoming")
    report.suspect = store.typed_ids(flagged_now)
    report.conflicts = store.typed_ids(report.conflicts)
    return report


def _admit_unmined(store: CampaignStore, conn, unmined: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Find never-mined ids in the pool (one pass); record those found as pool samples; return the rest."""
    from activemine.campaign.pool import CampaignPool

    sids = np.unique(np.asarray([sid for _, sid in unmined], dtype=str))
    rows, table = CampaignPool(store).locate(sids)
    found = np.asarray(table.column(0).to_numpy(zero_copy_only=False)).astype(str)
    conn.executemany("INSERT OR IGNORE INTO samples VALUES (?, 'pool', ?)", zip(found.tolist(), rows.tolist()))
    missing = set(np.setdiff1d(sids, found).tolist())
    return [(where, sid) for where, sid in unmined if sid in missing]


def _mark_suspects(store: CampaignStore, conn, threshold: float, *, by_class: bool) -> int:
    """Flag in ``incoming`` the labels the model of each id's newest round doubts; with ``by_class``, clear the
    standing flags that the new class thresholds spare (:func:`activemine.campaign.checks.lift_spared_flags`)
    and return how many."""
    # CROSS JOIN fixes the loop order: each incoming row looks its id up in batches' key, round by round
    rows = conn.execute(
        f"SELECT i.n, i.label, b.round, b.rank FROM incoming i CROSS JOIN batches b ON {ANY_ROUND.format('b')} "
        "AND b.sid = i.sid ORDER BY i.n, b.round"
    ).fetchall()
    if not rows:
        return 0
    n_all = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    newest = np.append(n_all[1:] != n_all[:-1], True)  # the last row of each n is its id's newest round
    rows = [r for r, keep in zip(rows, newest.tolist()) if keep]
    index = {c: j for j, c in enumerate(store.class_names)}
    n = n_all[newest]
    given = np.fromiter((index[r[1]] for r in rows), dtype=np.int64, count=len(rows))
    proba = gather_proba(conn, [(r[2], r[3]) for r in rows])  # (n, k)
    cache: dict = {}
    limits = campaign_thresholds(conn, index, given, proba, threshold, cache=cache) if by_class else None
    bad = suspect_mask(given, proba, threshold=threshold, thresholds=None if limits is None else limits[given])
    conn.executemany("UPDATE incoming SET suspect = 1 WHERE n = ?", ((int(v),) for v in n[bad]))
    return 0 if limits is None else lift_spared_flags(conn, index, limits, threshold, cache=cache)


def _apply(conn, report: ImportReport, *, key: str, path: Path, source: str, review: bool) -> None:
    conflicted = (
        "SELECT l.sid FROM labels l WHERE l.retracted_at IS NULL AND l.sid IN (SELECT sid FROM incoming) "
        "GROUP BY l.sid HAVING COUNT(DISTINCT l.label) > 1"
    )
    before = {r[0] for r in conn.execute(conflicted)}
    import_id = conn.execute(
        "INSERT INTO imports (sha256, path, created_at, n_added) VALUES (?, ?, ?, 0)", (key, str(path.resolve()), now())
    ).lastrowid
    if review:
        conn.execute(
            "UPDATE labels SET retracted_at = ? WHERE retracted_at IS NULL AND sid IN (SELECT sid FROM incoming)",
            (now(),),
        )
    changes = conn.total_changes
    conn.execute(
        "INSERT OR IGNORE INTO labels (sid, label, annotator, created_at, source, import_id, suspect) "
        "SELECT sid, label, annotator, created_at, ?, ?, suspect FROM incoming ORDER BY n",
        (source, import_id),
    )
    report.added = conn.total_changes - changes
    (n_rows,) = conn.execute("SELECT COUNT(*) FROM incoming").fetchone()
    report.already_present = n_rows - report.added
    conn.execute("UPDATE imports SET n_added = ? WHERE import_id = ?", (report.added, import_id))
    after = [r[0] for r in conn.execute(conflicted)]
    report.conflicts = sorted(set(after) - before)


# -- dataset -----------------------------------------------------------------------
def write_dataset(
    store: CampaignStore,
    out,
    *,
    consensus: str | None = None,
    drop_flagged: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Write every labeled sample (L and the labels returned) with its features to ``out``.

    A sample flagged ``suspect`` keeps its label until a review replaces it,
    unless ``drop_flagged`` leaves such samples out.

    Where annotators disagree, the label is their ``consensus`` (one of
    :data:`activemine.campaign.annotators.DATASET_CONSENSUS`; ``campaign
    dataset`` defaults to ``dawid-skene``); ``None`` or ``"none"`` leaves such samples out.

    The table has L's columns: the id, the features and the label, in their
    original types, so it can be given to ``activemine mine --labeled`` (for
    a probability pool: the id and the label). Pool features are found in one
    pass over the pool (``progress`` gets its rows). Returns counts: ``rows``,
    ``initial`` (from L), ``new`` (returned labels), ``flagged_left_out``, ``flagged_kept``.
    """
    from activemine.campaign.annotators import training_labels
    from activemine.data.outputs import check_output
    from activemine.data.tables import table_format

    check_output(out, protected=store.own_files())
    table_format(out)
    meta = store.meta
    current = training_labels(store, method=consensus or "none", keep_suspect=not drop_flagged)
    flagged = set(store.flagged())
    n_flagged = len(flagged - set(current))
    n_kept = len(flagged & set(current))
    sids = np.asarray(list(current.keys()), dtype=str) if current else np.empty(0, dtype="<U1")
    labels = np.asarray(list(current.values()), dtype=str) if current else np.empty(0, dtype="<U1")
    order = np.argsort(sids, kind="stable")
    sids, labels = sids[order], labels[order]
    L = LabeledRows(store, features=False)
    pool = CampaignPool(store)
    columns = [meta["id_col"], *(meta["features"] if pool.has_features else [])]
    in_l = np.isin(sids, L.sids)
    l_pos = {s: i for i, s in enumerate(L.sids.tolist())}
    l_rows = np.fromiter((l_pos[s] for s in sids[in_l].tolist()), dtype=np.int64, count=int(in_l.sum()))
    l_rows.sort()
    parts, label_parts = [], []
    if L.table is not None:
        part = L.table.select(columns).take(pa.array(l_rows))
        parts.append(part)
        label_parts.append(labels[in_l][np.searchsorted(sids[in_l], L.sids[l_rows])] if l_rows.size else labels[:0])
    pool_sids, pool_labels = sids[~in_l], labels[~in_l]
    if pool_sids.size:
        _, table = pool.locate(pool_sids, columns[1:], progress=progress)
        found = np.asarray(table.column(meta["id_col"]).to_numpy(zero_copy_only=False)).astype(str)
        table = table.select(columns)
        if parts:
            try:
                table = table.cast(parts[0].schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(f"the pool's columns cannot be converted to the labeled set's types: {exc}") from exc
        parts.append(table)
        label_parts.append(pool_labels[np.searchsorted(pool_sids, found)])
    table = pa.concat_tables(parts) if parts else pa.table({meta["id_col"]: pa.array([], pa.int64())})
    y = store.typed_labels(np.concatenate(label_parts).tolist() if label_parts else [])
    table = table.append_column(meta["label_col"], pa.array(y.tolist()))
    write_table(table, out)
    return {
        "rows": table.num_rows,
        "initial": int(l_rows.size),
        "new": int(table.num_rows - l_rows.size),
        "flagged_left_out": n_flagged,
        "flagged_kept": n_kept,
    }

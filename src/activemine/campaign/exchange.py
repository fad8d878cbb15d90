"""Exchange with annotation tools: export a round, import labels, write the training set.

Formats (chosen by ``format`` on export and by the file suffix on import):

* ``csv`` / ``.csv`` and ``jsonl`` / ``.jsonl``: one sample per row with fields
  ``id`` and ``label`` (empty until labeled) and optional ``annotator``; exports
  add ``round, rank, score, stratum, predicted``.
* ``label-studio`` / ``.json``: export writes Label Studio *tasks* (data with
  ``activemine_id`` and an ``image`` data URI, ``text`` or the fields; the
  model's predicted class as a pre-annotation; the acquisition score in
  ``meta``); import reads Label Studio's JSON export (tasks with
  ``annotations``), and its JSON-MIN export.

An import is validated completely before anything is written; then it is
applied in one transaction. Empty labels are skipped, not errors. The same
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
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from activemine.campaign.checks import suspect_sids
from activemine.campaign.samples import PoolRows, labeled_rows, pixels_to_png
from activemine.campaign.store import CampaignStore, now
from activemine.errors import InputError, RejectedImportError
from activemine.tables import write_table

__all__ = ["EXPORT_FORMATS", "ImportReport", "export_round", "import_labels", "label_studio_config", "write_dataset",
           "write_label_studio_config"]

EXPORT_FORMATS = ("csv", "jsonl", "label-studio")
MAX_LINE_BYTES = 1 << 20  # a CSV or JSONL line longer than this is not a label record
MAX_ERRORS_SHOWN = 20
CHUNK = 1000


def _atomic_write(path: Path, write: Callable[[io.TextIOBase], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- export ------------------------------------------------------------------------
def _round_rows(store: CampaignStore, round_no: int, include_labeled: bool) -> list[dict]:
    known = store.read("SELECT 1 FROM rounds WHERE round = ?", (round_no,))
    if not known:
        last = store.last_round()
        raise InputError(f"round {round_no} does not exist; the campaign has rounds 1..{last}" if last else
                         f"round {round_no} does not exist; the campaign has no round yet (run `campaign mine`)")  # fmt: skip
    from activemine.campaign.overlap import open_sids

    labeled = store.labeled_sids() - open_sids(store, round_no)  # overlap and relabel rounds want more labels
    rows = store.read("SELECT sid, rank, score, stratum, predicted, proba FROM batches WHERE round = ? ORDER BY rank",
                      (round_no,))  # fmt: skip
    ids = store.typed_ids([r[0] for r in rows])
    return [
        {"id": i, "round": round_no, "rank": rank, "score": score, "stratum": stratum, "predicted": pred,
         "proba": json.loads(proba)}
        for i, (sid, rank, score, stratum, pred, proba) in zip(ids, rows)
        if include_labeled or sid not in labeled
    ]  # fmt: skip


def label_studio_config(store: CampaignStore) -> str:
    """A Label Studio labeling config matching the exported tasks (``from_name="label"``)."""
    kind = store.meta["view"]["kind"]
    obj = {"image": '<Image name="image" value="$image"/>', "text": '<Text name="text" value="$text"/>'}.get(
        kind, '<Text name="text" value="$fields"/>'
    )
    target = "image" if kind == "image" else "text"
    choices = "\n".join(f'    <Choice value="{c}"/>' for c in store.class_names)
    return f'<View>\n  {obj}\n  <Choices name="label" toName="{target}" choice="single" showInline="true">\n{choices}\n  </Choices>\n</View>\n'


def write_label_studio_config(store: CampaignStore, path) -> None:
    """Write :func:`label_studio_config` to ``path`` atomically."""
    _atomic_write(Path(path), lambda fh: fh.write(label_studio_config(store)))


def _task_data(store: CampaignStore, pool: PoolRows, index: int) -> dict:
    view = store.meta["view"]
    row = pool.row(index)
    if view["kind"] == "image":
        png = pixels_to_png([row[c] for c in view["columns"]], view["shape"], scale=8)
        return {"image": "data:image/png;base64," + base64.b64encode(png).decode("ascii")}
    if view["kind"] == "text":
        return {"text": str(row[view["column"]])}
    return {"fields": "\n".join(f"{c}: {row[c]}" for c in view["columns"])}


def _label_studio_tasks(store: CampaignStore, rows: list[dict]) -> list[dict]:
    pool = PoolRows(store, "pool", features=False)
    position = {s: i for i, s in enumerate(pool.sids)}
    target = "image" if store.meta["view"]["kind"] == "image" else "text"
    tasks = []
    for r in rows:
        data = {"activemine_id": r["id"], **_task_data(store, pool, position[str(r["id"])])}
        confidence = max(r["proba"]) if r["proba"] else None
        result = [{"from_name": "label", "to_name": target, "type": "choices", "value": {"choices": [r["predicted"]]}}]
        tasks.append({
            "data": data,
            "predictions": [{"model_version": f"activemine-round-{r['round']}", "score": confidence, "result": result}],
            "meta": {"round": r["round"], "rank": r["rank"], "acquisition_score": r["score"], "stratum": r["stratum"]},
        })  # fmt: skip
    return tasks


def export_round(store: CampaignStore, round_no: int, *, fmt: str, out, include_labeled: bool = False) -> int:
    """Write round ``round_no``'s samples (by default only those without a label) to ``out``; returns the count."""
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {fmt!r}; expected one of {EXPORT_FORMATS}")
    out = Path(out)
    rows = _round_rows(store, round_no, include_labeled)
    fields = ["id", "label", "annotator", "round", "rank", "score", "stratum", "predicted"]
    if fmt == "csv":

        def write(fh):
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows({**r, "label": "", "annotator": ""} for r in rows)

    elif fmt == "jsonl":

        def write(fh):
            for r in rows:
                fh.write(json.dumps({k: r.get(k) for k in fields}, ensure_ascii=False) + "\n")

    else:
        tasks = _label_studio_tasks(store, rows)

        def write(fh):
            json.dump(tasks, fh, ensure_ascii=False)

    _atomic_write(out, write)
    return len(rows)


# -- import: parsing ---------------------------------------------------------------
@dataclass
class _Record:
    where: str  # "line 7" or "task 3", for error messages
    id: object
    label: object
    annotator: object = None
    created_at: object = None


def _lines(raw: bytes, errors: list[str]) -> Iterator[tuple[int, str]]:
    """Decoded lines (ends kept) with 1-based numbers; bad encoding and overlong lines become errors."""
    stream = io.BytesIO(raw)
    number = 0
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            errors.append(f"line {number}: longer than {MAX_LINE_BYTES} bytes; a label record is a short line")
            while line and not line.endswith(b"\n"):  # skip the rest of the overlong line
                line = stream.readline(MAX_LINE_BYTES + 1)
            continue
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            yield number, line.decode("utf-8")
        except UnicodeDecodeError as exc:
            errors.append(f"line {number}: not valid UTF-8 (byte {line[exc.start]:#04x} at column {exc.start + 1})")


def _parse_csv(raw: bytes, errors: list[str]) -> list[_Record]:
    lines = list(_lines(raw, errors))
    if errors:
        return []
    numbers = [n for n, _ in lines]
    reader = csv.reader(text for _, text in lines)
    try:
        header = next(reader, None)
        if header is None:
            errors.append("the file is empty; expected a header with columns id,label[,annotator]")
            return []
        header = [h.strip() for h in header]
        missing = [c for c in ("id", "label") if c not in header]
        if missing:
            errors.append(f"line 1: wrong columns {header[:10]}: missing {missing}; expected id,label[,annotator]")
            return []
        col = {name: header.index(name) for name in ("id", "label", "annotator", "created_at") if name in header}
        records = []
        for values in reader:
            where = f"line {numbers[min(reader.line_num, len(numbers)) - 1]}"
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                errors.append(f"{where}: {len(values)} fields but the header has {len(header)}")
                continue
            get = lambda name: values[col[name]] if name in col else None  # noqa: E731
            records.append(_Record(where, get("id"), get("label"), get("annotator"), get("created_at")))
        return records
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: not valid CSV: {exc}")
        return []


def _parse_jsonl(raw: bytes, errors: list[str]) -> list[_Record]:
    records = []
    for number, text in _lines(raw, errors):
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
        missing = [k for k in ("id", "label") if k not in obj]
        if missing:
            errors.append(f"line {number}: missing field(s) {missing}; expected id, label and optionally annotator")
            continue
        records.append(_Record(f"line {number}", obj["id"], obj["label"], obj.get("annotator"), obj.get("created_at")))
    return records


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


def _parse_label_studio(raw: bytes, errors: list[str]) -> list[_Record]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        errors.append(f"line {line}: not valid UTF-8 (byte {raw[exc.start]:#04x} at offset {exc.start})")
        return []
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.append(f"line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); is the file truncated?")
        return []
    except (ValueError, RecursionError) as exc:  # e.g. a number of millions of digits, or absurd nesting
        errors.append(f"not valid JSON for a label export: {_short(str(exc), 120)}")
        return []
    if not isinstance(tasks, list):
        errors.append(f"expected a JSON list of Label Studio tasks, got {type(tasks).__name__}")
        return []
    records = []
    for n, task in enumerate(tasks, 1):
        where = f"task {n}"
        if not isinstance(task, dict):
            errors.append(f"{where}: expected an object, got {type(task).__name__}")
            continue
        if "annotations" not in task and "data" not in task:  # JSON-MIN: data fields and the choice flattened
            if "activemine_id" not in task:
                errors.append(f"{where}: no activemine_id; export the tasks that `campaign export` wrote")
                continue
            records.append(_Record(where, task["activemine_id"], task.get("label"), _ls_annotator(task.get("annotator")),
                                   task.get("updated_at") or task.get("created_at")))  # fmt: skip
            continue
        data = task.get("data") or {}
        if "activemine_id" not in data:
            errors.append(f"{where}: data has no activemine_id; export the tasks that `campaign export` wrote")
            continue
        for a, ann in enumerate(task.get("annotations") or [], 1):
            if not isinstance(ann, dict) or ann.get("was_cancelled"):
                continue
            label = _ls_choice(ann.get("result"), f"{where} annotation {a}", errors)
            records.append(_Record(f"{where} annotation {a}", data["activemine_id"], label,
                                   _ls_annotator(ann.get("completed_by")), ann.get("created_at")))  # fmt: skip
    return records


_PARSERS = {".csv": _parse_csv, ".jsonl": _parse_jsonl, ".ndjson": _parse_jsonl, ".json": _parse_label_studio}


def _as_text(value) -> str | None:
    """Ids and labels compare as text; 3, 3.0 and "3" are the same id."""
    if value is None or isinstance(value, bool):
        return None if value is None else "\0bool"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value).strip()


# -- import: validation and the transaction -----------------------------------------
@dataclass
class ImportReport:
    """What an import did: rows read, labels added, duplicates ignored, ids flagged."""

    path: str
    records: int = 0
    skipped_empty: int = 0
    added: int = 0
    already_present: int = 0
    already_imported: bool = False
    conflicts: list = field(default_factory=list)
    suspect: list = field(default_factory=list)


def import_labels(store: CampaignStore, path, *, annotator: str | None = None, suspect_threshold: float = 0.5,
                  review: bool = False, progress: Callable[[int], None] | None = None) -> ImportReport:  # fmt: skip
    """Validate ``path`` completely, then add its labels in one transaction (or raise and add nothing).

    Raises :class:`RejectedImportError` naming the offending lines (unknown
    ids or classes, bad encoding, truncated JSON, wrong columns, overlong lines).
    A label is flagged ``suspect`` when the model that mined its round puts it
    more than ``suspect_threshold`` behind its top class
    (:func:`activemine.noise.check_returned_labels`). ``progress`` is called
    with the number of rows written after each chunk, inside the transaction.

    With ``review`` the file is a re-review: for each of its ids the earlier
    labels are retracted and the reviewer's label is kept unchecked, which
    clears the id's flags.
    """
    path = Path(path)
    parser = _PARSERS.get(path.suffix.lower())
    if parser is None:
        raise InputError(f"cannot tell the format of {str(path)!r}: expected .csv, .jsonl or .json (Label Studio export)")
    if not path.is_file():
        raise InputError(f"file not found: {str(path)!r}")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    errors: list[str] = []
    records = parser(raw, errors)
    del raw
    report = ImportReport(str(path), records=len(records))
    known = {r[0] for r in store.read("SELECT sid FROM samples")}
    classes = set(store.class_names)
    default_annotator = annotator or "unknown"
    rows = []
    for rec in records:
        sid, label = _as_text(rec.id), _as_text(rec.label)
        if sid is None or sid == "" or sid not in known:
            errors.append(f"{rec.where}: unknown id {_short(rec.id)}")
            continue
        if label is None or label == "":
            report.skipped_empty += 1
            continue
        if label not in classes:
            errors.append(f"{rec.where}: unknown class {_short(rec.label)} for id {_short(rec.id)}; expected one of {sorted(classes)}")
            continue
        who = _as_text(rec.annotator) or default_annotator
        created = _as_text(rec.created_at) or now()
        rows.append((sid, label, who, created))
    if errors:
        shown = "\n  ".join(errors[:MAX_ERRORS_SHOWN])
        more = f"\n  ... and {len(errors) - MAX_ERRORS_SHOWN} more" if len(errors) > MAX_ERRORS_SHOWN else ""
        raise RejectedImportError(f"{path}: {len(errors)} bad record(s), nothing imported:\n  {shown}{more}")

    source = "review" if review else "import"
    suspect = set() if review else set(suspect_sids(store, [(r[0], r[1]) for r in rows], threshold=suspect_threshold))
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM imports WHERE sha256 = ?", (digest,)).fetchone():
            report.already_imported = True
            report.already_present = len(rows)
            return report
        before = {sid for (sid,) in conn.execute(
            "SELECT sid FROM labels WHERE retracted_at IS NULL GROUP BY sid HAVING COUNT(DISTINCT label) > 1")}  # fmt: skip
        cur = conn.execute("INSERT INTO imports (sha256, path, created_at, n_added) VALUES (?, ?, ?, 0)",
                           (digest, str(path.resolve()), now()))  # fmt: skip
        import_id = cur.lastrowid
        if review:
            conn.executemany("UPDATE labels SET retracted_at = ? WHERE sid = ? AND retracted_at IS NULL",
                             [(now(), sid) for sid in {r[0] for r in rows}])  # fmt: skip
        for start in range(0, len(rows), CHUNK):
            part = rows[start : start + CHUNK]
            changes = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO labels (sid, label, annotator, created_at, source, import_id, suspect) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(s, lab, who, t, source, import_id, int(s in suspect)) for s, lab, who, t in part],
            )
            report.added += conn.total_changes - changes
            if progress is not None:
                progress(len(part))
        conn.execute("UPDATE imports SET n_added = ? WHERE import_id = ?", (report.added, import_id))
        after = {sid for (sid,) in conn.execute(
            "SELECT sid FROM labels WHERE retracted_at IS NULL GROUP BY sid HAVING COUNT(DISTINCT label) > 1")}  # fmt: skip
        flagged_now = {sid for (sid,) in conn.execute(
            "SELECT sid FROM labels WHERE import_id = ? AND suspect = 1", (import_id,))}  # fmt: skip
    report.already_present = len(rows) - report.added
    report.conflicts = store.typed_ids(sorted(after - before))
    report.suspect = store.typed_ids(sorted(flagged_now))
    return report


# -- dataset -----------------------------------------------------------------------
def write_dataset(store: CampaignStore, out, *, consensus: str | None = None) -> dict:
    """Write every labeled, unflagged sample (L and the labels returned) with its features to ``out``.

    Where annotators disagree, the label is their ``consensus`` (one of
    :data:`activemine.campaign.annotators.DATASET_CONSENSUS`; ``campaign
    dataset`` defaults to ``dawid-skene``); ``None`` or ``"none"`` leaves such samples out.

    The table has L's columns: the id, the features and the label, in their
    original types, so it can be given to ``activemine mine --labeled``.
    Returns counts: ``rows``, ``initial`` (from L), ``new`` (returned labels), ``flagged_left_out``.
    """
    meta = store.meta
    pool, labeled = PoolRows(store, "pool", features=False), PoolRows(store, "labeled", features=False)
    from activemine.campaign.annotators import training_labels

    current = training_labels(store, method=consensus or "none")
    l_rows, p_rows, y = labeled_rows(store, pool, labeled, current)
    columns = [meta["id_col"], *meta["features"]]
    schema = labeled.table.select(columns).schema
    try:
        table = pa.concat_tables([labeled.table.select(columns).take(l_rows),
                                  pool.table.select(columns).take(p_rows).cast(schema)])  # fmt: skip
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise InputError(f"the pool's columns cannot be converted to the labeled set's types: {exc}") from exc
    table = table.append_column(meta["label_col"], pa.array(y.tolist()))
    write_table(table, out)
    return {"rows": table.num_rows, "initial": int(l_rows.size), "new": int(p_rows.size),
            "flagged_left_out": len(set(store.flagged()) - set(current))}  # fmt: skip

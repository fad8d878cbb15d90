"""``activemine clean``: find suspects (samples whose label looks wrong) in L and decide what to drop or review."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer

from activemine.cli._app import QuietOpt, app, console, exits_on_bad_input
from activemine.cli._strategy_options import SeedOpt
from activemine.errors import InputError, SingleClassError


@app.command()
@exits_on_bad_input
def clean(
    labeled: Annotated[Path, typer.Option(help="Labeled set L (.parquet or .csv): id, label and numeric features.")],
    out: Annotated[Path, typer.Option(help="Where to write one row per sample (.parquet or .csv).")],
    label_col: Annotated[str, typer.Option(help="Label column of L.")] = "y",
    id_col: Annotated[str, typer.Option(help="Id column of L.")] = "id",
    model: Annotated[
        str, typer.Option(help="Out-of-fold model: lightgbm, hgb, logreg or fast (a small LightGBM).")
    ] = "lightgbm",
    max_dirty: Annotated[
        float, typer.Option(help="Prune until the estimated dirty share (share of wrong labels) is at most this.")
    ] = 0.02,
    policy: Annotated[str, typer.Option(help="prune (drop the most suspect) or review (flag only).")] = "prune",
    rule: Annotated[
        str,
        typer.Option(
            help="adaptive (drop only if a model without the suspects ranks held-out labels better) or target (always drop)."
        ),
    ] = "adaptive",
    max_class_fraction: Annotated[float, typer.Option(help="Never drop more than this share of any class.")] = 0.10,
    folds: Annotated[int, typer.Option(help="Folds of the out-of-fold probabilities.")] = 5,
    soft_labels: Annotated[
        bool,
        typer.Option(
            help="With --policy prune: first check whether soft labels (each label "
            "blended with out-of-fold probabilities) predict held-out labels better; "
            "if so, write them as soft_<class> columns to train on and drop nothing."
        ),
    ] = True,
    seed: SeedOpt = 0,
    n_jobs: Annotated[
        int | None, typer.Option(help="Threads for the out-of-fold fits (default: the CPUs available).")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Write id, given_label, suggested_label, label_quality and action (drop, review, keep) for every row of L.

    Soft labels are checked first: when they win, also soft_<class> columns (train on every row once per class
    with sample weight soft_<class>, docs/dirty-data.md, "Soft labels") and nothing is dropped; otherwise the
    proposed drop is checked (--rule adaptive)."""
    # imported here, so `activemine --help` does not load numpy and pyarrow
    import numpy as np
    import pyarrow as pa

    from activemine.data.tables import numeric_matrix, read_table, require_columns, table_format, write_table
    from activemine.dirty import DirtyDataFilter
    from activemine.models import check_n_jobs
    from activemine.progress import progress_reporter
    from activemine.selection.batch import check_ids

    table_format(out)  # a bad suffix fails before any work
    if policy not in ("prune", "review"):
        raise InputError(f"--policy must be prune or review, got {policy!r}")
    if rule not in ("adaptive", "target"):
        raise InputError(f"--rule must be adaptive or target, got {rule!r}")
    check_n_jobs(n_jobs)
    if not 0.0 <= max_dirty < 1.0:  # checked here too so a bad value fails before the model fits
        raise InputError(f"max_dirty must be in [0, 1), got {max_dirty}")
    started = time.perf_counter()
    table = read_table(labeled)
    where = str(labeled)
    require_columns(table.column_names, [id_col, label_col], where=where)
    features = [c for c in table.column_names if c not in (id_col, label_col)]
    if not features:
        raise InputError(f"{where} has no feature columns besides {id_col!r} and {label_col!r}")
    ids = check_ids(table.column(id_col).to_numpy(zero_copy_only=False), name=f"{where} column {id_col!r}")
    y = table.column(label_col).to_numpy(zero_copy_only=False)
    if table.column(label_col).null_count:
        raise InputError(f"{where} column {label_col!r} has {table.column(label_col).null_count} missing labels")
    classes, per_class = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise SingleClassError(f"{where} holds only class {classes.tolist()}; at least two are needed")
    X = numeric_matrix(table, features, where=where)

    if per_class.min() < folds:
        raise InputError(
            f"--folds {folds} needs at least {folds} rows of every class; class "
            f"{classes[per_class.argmin()]!r} has {per_class.min()}"
        )
    step = DirtyDataFilter(
        policy=policy,
        rule=rule,
        max_dirty=max_dirty,
        model=model,
        folds=folds,
        max_class_fraction=max_class_fraction,
        min_per_class=2,
        soften=soft_labels,
        soft_model=model,
        n_jobs=n_jobs,
    )
    with progress_reporter(f"checking the labels of {len(ids)} rows", unit="model fits", quiet=quiet) as bar:
        step(X, y, random_state=seed, ids=ids, progress=bar.advance)
    report = step.report_
    columns = {
        "id": pa.array(ids),
        "given_label": pa.array(y),
        "suggested_label": pa.array(classes[report.suggested]),
        "label_quality": pa.array(report.label_quality.astype(np.float64)),
        "action": pa.array(report.action.tolist(), type=pa.string()),
    }
    if report.soft_targets is not None:
        columns.update({f"soft_{c}": pa.array(report.soft_targets[:, j]) for j, c in enumerate(classes)})
    write_table(pa.table(columns), out)
    counts = {a: int((report.action == a).sum()) for a in ("drop", "review", "keep")}
    console.print(f"estimated dirty share before: {report.dirty_share_before:.2%}")
    for line in _verdicts(report, soft_labels and policy == "prune"):
        console.print(line)
    console.print(f"estimated dirty share after:  {report.dirty_share_after:.2%}  (target {max_dirty:.2%})")
    console.print(
        f"{len(ids)} rows: {counts['drop']} drop, {counts['review']} review, {counts['keep']} keep "
        f"({time.perf_counter() - started:.1f} s)"
    )
    console.print(f"wrote {out}")


def _verdicts(report, soft_checked: bool) -> list[str]:
    """What the held-out checks said, one line each (soft labels are checked first; the drop when they lose)."""
    lines = []
    if soft_checked:
        if math.isnan(report.soft_z):
            lines.append("soft labels not checked (too few rows per class)")
        else:
            said = "not significant, none written" if report.soft_targets is None else "written as soft_<class> columns"
            where = "" if report.soft_splits < 2 else f", {report.soft_splits} fold splits"
            evidence = f"{report.soft_gain:+.4f} (z {report.soft_z:.2f}{where})"
            lines.append(f"held-out AUC gain of soft labels {evidence}: {said}")
    if not math.isnan(report.z):
        said = (
            "the labels are dirty, suspects dropped"
            if report.dirty
            else "not significant, nothing dropped (suspects marked review)"
        )
        lines.append(f"held-out AUC gain of the drop {report.gain:+.4f} (z {report.z:.2f}): {said}")
    return lines

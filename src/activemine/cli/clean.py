"""``activemine clean``: find suspects (samples whose label looks wrong) in L and decide what to drop or review."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer

from activemine.cli._app import QuietOpt, app, console, exits_on_bad_input
from activemine.cli._config import PanelCommand, write_table_with_settings
from activemine.cli._feature_options import FeatureColsOpt, FeaturePrefixOpt, split_names
from activemine.cli._strategy_options import BatchSizeOpt, DeviceOpt, EpochsOpt, SeedOpt
from activemine.errors import InputError, SingleClassError


@app.command(cls=PanelCommand)
@exits_on_bad_input
def clean(
    labeled: Annotated[Path, typer.Option(help="Labeled set L (.parquet or .csv): id, label and numeric features.")],
    out: Annotated[Path, typer.Option(help="Where to write one row per sample (.parquet or .csv).")],
    label_col: Annotated[
        str | None,
        typer.Option(
            help="Label column of L (default: label; a file with only y, the old default, is read by y with a warning)."
        ),
    ] = None,
    id_col: Annotated[str, typer.Option(help="Id column of L.")] = "id",
    feature_cols: FeatureColsOpt = None,
    feature_prefix: FeaturePrefixOpt = None,
    model: Annotated[
        str,
        typer.Option(
            help="Out-of-fold model: lightgbm, hgb, logreg, fast (a small LightGBM), cnn or package.module:factory "
            "(a network, for image rows; needs activemine[torch])."
        ),
    ] = "lightgbm",
    oof_method: Annotated[
        str,
        typer.Option(
            help="refit (fit --model on all folds but one, --folds times) or embedding-head (--model a network: "
            "trained once on L, then a logistic-regression head fitted out of fold on its penultimate layer; "
            "the held-out checks also use the head)."
        ),
    ] = "refit",
    device: DeviceOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
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
    oof_proba_cols: Annotated[
        str | None,
        typer.Option(
            help="L brings its own out-of-fold probabilities: columns p0,p1,... in the sorted order of the labels. "
            "Nothing is trained; the held-out checks need a model, so give --rule target or --policy review."
        ),
    ] = None,
    oof_proba_prefix: Annotated[
        str | None,
        typer.Option(help="As --oof-proba-cols: the columns named PREFIX + label, e.g. oof_cat, oof_dog."),
    ] = None,
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
    from rich.markup import escape

    from activemine.data.outputs import check_output
    from activemine.data.tables import (
        choose_features,
        label_column,
        numeric_matrix,
        read_table,
        require_columns,
        table_format,
    )
    from activemine.dirty import DirtyDataFilter
    from activemine.models import check_n_jobs
    from activemine.progress import progress_reporter
    from activemine.selection.batch import check_ids

    # an output onto an input or a campaign, or a bad suffix, fails before any work
    check_output(out, protected={labeled: "the labeled set given by --labeled"})
    table_format(out)
    if policy not in ("prune", "review"):
        raise InputError(f"--policy must be prune or review, got {policy!r}")
    if rule not in ("adaptive", "target"):
        raise InputError(f"--rule must be adaptive or target, got {rule!r}")
    check_n_jobs(n_jobs)
    if not 0.0 <= max_dirty < 1.0:  # checked here too so a bad value fails before the model fits
        raise InputError(f"max_dirty must be in [0, 1), got {max_dirty}")
    if oof_proba_cols and oof_proba_prefix:
        raise InputError("give --oof-proba-cols or --oof-proba-prefix, not both")
    given_oof = bool(oof_proba_cols or oof_proba_prefix)
    if given_oof and oof_method != "refit":
        raise InputError(
            f"--oof-method {oof_method} computes out-of-fold probabilities; L brings its own "
            "(--oof-proba-cols/--oof-proba-prefix): give one or the other"
        )
    from activemine.dirty.oof import check_oof_method
    from activemine.models import network_options

    network = model  # "fast" is the out-of-fold step's own small LightGBM, not a model name of its own
    if model != "fast" or device is not None or epochs is not None or batch_size is not None:
        network = network_options(model, device=device, epochs=epochs, batch_size=batch_size)  # checked now
    check_oof_method(oof_method, network)
    if given_oof and policy == "prune" and rule == "adaptive":
        raise InputError(
            "with --oof-proba-cols/--oof-proba-prefix nothing is trained, but --rule adaptive checks the drop by "
            "training models on held-out folds; give --rule target (make the proposed drop) or --policy review"
        )
    started = time.perf_counter()
    table = read_table(labeled)
    where = str(labeled)
    label_col = label_column(table.column_names, label_col, where=where)  # "label", or the old "y" with a warning
    require_columns(table.column_names, [id_col, label_col], where=where)
    ids = check_ids(table.column(id_col).to_numpy(zero_copy_only=False), name=f"{where} column {id_col!r}")
    y = table.column(label_col).to_numpy(zero_copy_only=False)
    if table.column(label_col).null_count:
        raise InputError(f"{where} column {label_col!r} has {table.column(label_col).null_count} missing labels")
    classes, per_class = np.unique(y, return_counts=True)
    if classes.size < 2:
        raise SingleClassError(f"{where} holds only class {classes.tolist()}; at least two are needed")
    if given_oof:
        from activemine.dirty import clean_labels

        oof_columns = _oof_columns(table.column_names, classes, oof_proba_cols, oof_proba_prefix, where=where)
        proba = numeric_matrix(table, oof_columns, where=where)
        report = clean_labels(
            y,
            proba,
            policy=policy,
            max_dirty=max_dirty,
            max_class_fraction=max_class_fraction,
            classes=classes,
            ids=ids,
        )
        _write_report(report, ids, y, classes, out, carried={})
        _print_report(report, ids, max_dirty, started, out, soft_checked=False)
        console.print(f"out-of-fold probabilities from {', '.join(oof_columns)}; no model was trained", markup=False)
        return
    choice = choose_features(
        table.schema, reserved=[id_col, label_col], cols=split_names(feature_cols), prefix=feature_prefix, where=where
    )
    features = choice.features
    if choice.note() and not quiet:
        console.print(escape(choice.note()), highlight=False)
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
        model=network,
        folds=folds,
        max_class_fraction=max_class_fraction,
        min_per_class=2,
        soften=soft_labels,
        soft_model=network,
        n_jobs=n_jobs,
        oof_method=oof_method,
    )
    with progress_reporter(f"checking the labels of {len(ids)} rows", unit="model fits", quiet=quiet) as bar:
        step(X, y, random_state=seed, ids=ids, progress=bar.advance)
    report = step.report_
    extra = report.extra
    network_fits = f" and {extra['network_fits']} network fit" if extra["network_fits"] else ""
    console.print(
        f"out-of-fold probabilities: {oof_method}, {extra['oof_fits']} model fits{network_fits} "
        f"in {extra['seconds']:.1f} s",
        markup=False,
        highlight=False,
    )
    # the columns that are not features (a text, a name) travel with the rows, so a reviewer sees them
    _write_report(report, ids, y, classes, out, carried={c: table.column(c) for c in choice.carried})
    _print_report(report, ids, max_dirty, started, out, soft_checked=soft_labels and policy == "prune")


def _oof_columns(names, classes, cols: str | None, prefix: str | None, *, where: str) -> list[str]:
    """L's out-of-fold probability columns, one per class in the order of ``classes`` (sorted labels)."""
    if cols:
        wanted = [c.strip() for c in cols.split(",") if c.strip()]
    else:
        wanted = [f"{prefix}{c}" for c in classes.tolist()]
        missing = [c for c in wanted if c not in names]
        if missing:
            found = [c for c in names if c.startswith(prefix)]
            raise InputError(
                f"--oof-proba-prefix {prefix!r} needs one column per label of {where}, named {prefix!r} + label; "
                f"missing {missing[:5]}, found {found[:5]}"
            )
    missing = [c for c in wanted if c not in names]
    if missing:
        raise InputError(f"--oof-proba-cols names columns {missing[:5]} that {where} does not have")
    if len(wanted) != len(classes):
        raise InputError(
            f"--oof-proba-cols gives {len(wanted)} columns but {where} has {len(classes)} labels "
            f"{classes.tolist()[:10]}; give one column per label, in their sorted order"
        )
    return wanted


def _write_report(report, ids, y, classes, out, *, carried: dict) -> None:
    import numpy as np
    import pyarrow as pa

    columns = {
        "id": pa.array(ids),
        "given_label": pa.array(y),
        "suggested_label": pa.array(classes[report.suggested]),
        "label_quality": pa.array(report.label_quality.astype(np.float64)),
        "action": pa.array(report.action.tolist(), type=pa.string()),
    }
    columns.update({name: values for name, values in carried.items() if name not in columns})
    if report.soft_targets is not None:
        columns.update({f"soft_{c}": pa.array(report.soft_targets[:, j]) for j, c in enumerate(classes)})
    write_table_with_settings(pa.table(columns), out, command="clean")


def _print_report(report, ids, max_dirty: float, started: float, out, *, soft_checked: bool) -> None:
    counts = {a: int((report.action == a).sum()) for a in ("drop", "review", "keep")}
    console.print(f"estimated dirty share before: {report.dirty_share_before:.2%}")
    for line in _verdicts(report, soft_checked):
        console.print(line, markup=False, highlight=False)
    console.print(f"estimated dirty share after:  {report.dirty_share_after:.2%}  (target {max_dirty:.2%})")
    console.print(
        f"{len(ids)} rows: {counts['drop']} drop, {counts['review']} review, {counts['keep']} keep "
        f"({time.perf_counter() - started:.1f} s)"
    )
    console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)


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

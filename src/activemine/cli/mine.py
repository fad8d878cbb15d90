"""``activemine mine``: train on L, score U, write the batch."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from activemine.cli._app import QuietOpt, app, console, exits_on_bad_input
from activemine.cli._config import PanelCommand, write_table_with_settings
from activemine.cli._diversity_options import (
    CandidateFactorOpt,
    ClustersOpt,
    DedupColOpt,
    DiversityOpt,
    EmbeddingColsOpt,
    EmbeddingPrefixOpt,
    EmbeddingsFileOpt,
    NearDuplicatesOpt,
)
from activemine.cli._feature_options import FeatureColsOpt, FeaturePrefixOpt, split_names
from activemine.cli._image_options import ImageColOpt, ImageModeOpt, ImageSizeOpt, SkipBadImagesOpt, report_skipped
from activemine.cli._strategy_options import (
    AdaptDifficultyOpt,
    BalanceOpt,
    BatchSizeOpt,
    ClassesOpt,
    CleanSelectionOpt,
    CommitteeOpt,
    CommitteeSizeOpt,
    DeviceOpt,
    DirtyPolicyOpt,
    DisagreementOpt,
    EasyShareOpt,
    EpochsOpt,
    MaxDirtyOpt,
    ModelOpt,
    NJobsOpt,
    OofMethodOpt,
    SeedOpt,
    StrategyOpt,
    StrategyOptions,
    WeakFractionOpt,
    WeakTreesOpt,
)
from activemine.errors import InputError

ENGINE_NAMES = ("local", "ray")
_STRATUM_ORDER = {"hard": 0, "random": 1, "easy": 2}


def print_summary(batch, *, strategy: str, seconds: float, out: Path | None) -> None:
    """Per-class and per-stratum counts of a batch, and the time it took (class names and paths are data, escaped)."""
    import numpy as np
    from rich.markup import escape
    from rich.table import Table

    # the summary is its own line, never wrapped: as the table's title it was wrapped to the table's width,
    # which could put the unit on a line of its own
    console.print(
        f"{escape(strategy)}: {len(batch):,} samples selected in {seconds:.2f} s", highlight=False, soft_wrap=True
    )
    table = Table()
    names, codes = batch.stratum_codes()
    order = sorted(range(len(names)), key=lambda j: _STRATUM_ORDER.get(names[j], len(_STRATUM_ORDER)))
    table.add_column("predicted class")
    for j in order:
        table.add_column(escape(names[j]), justify="right")
    table.add_column("total", justify="right")
    k = len(batch.classes)
    # (class, stratum) counts in one bincount: no Python object per selected row
    counts = np.bincount(
        np.asarray(batch.predicted, dtype=np.int64) * len(names) + codes, minlength=k * len(names)
    ).reshape(k, len(names))
    for c, cls in enumerate(batch.classes):
        table.add_row(escape(str(cls)), *(str(counts[c, j]) for j in order), str(counts[c].sum()))
    table.add_row("[bold]all", *(str(counts[:, j].sum()) for j in order), str(len(batch)))
    console.print(table)
    if out is not None:
        console.print(f"wrote {escape(str(out))}", highlight=False)


@app.command(cls=PanelCommand)
@exits_on_bad_input
def mine(
    pool: Annotated[Path, typer.Option(help="Unlabeled pool U (.parquet, .csv, or a folder of images).")],
    budget: Annotated[int, typer.Option(help="Number of samples to select.")],
    out: Annotated[Path, typer.Option(help="Where to write the batch (.parquet or .csv).")],
    labeled: Annotated[
        Path | None,
        typer.Option(help="Labeled set L (.parquet, .csv, or a folder with one image subfolder per class)."),
    ] = None,
    label_col: Annotated[
        str | None,
        typer.Option(
            help="Label column of L (default: label; a file with only y, the old default, is read by y with a warning)."
        ),
    ] = None,
    id_col: Annotated[str, typer.Option(help="Id column of L and U.")] = "id",
    strategy: StrategyOpt = "hw",
    model: ModelOpt = "lightgbm",
    device: DeviceOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchSizeOpt = None,
    seed: SeedOpt = 0,
    balance: BalanceOpt = None,
    easy_share: EasyShareOpt = None,
    weak_fraction: WeakFractionOpt = 0.3,
    weak_trees: WeakTreesOpt = None,
    committee_size: CommitteeSizeOpt = 3,
    committee: CommitteeOpt = "bootstrap",
    disagreement: DisagreementOpt = "vote",
    dirty_policy: DirtyPolicyOpt = "prune",
    max_dirty: MaxDirtyOpt = 0.02,
    clean_selection: CleanSelectionOpt = False,
    adapt_difficulty: AdaptDifficultyOpt = True,
    oof_method: OofMethodOpt = "refit",
    n_jobs: NJobsOpt = None,
    proba_cols: Annotated[
        str | None, typer.Option(help="Precomputed probability columns of U, e.g. p0,p1 (QBC: a0,a1;b0,b1).")
    ] = None,
    weak_proba_cols: Annotated[str | None, typer.Option(help="HW: the weak model's probability columns of U.")] = None,
    classes: ClassesOpt = None,
    feature_cols: FeatureColsOpt = None,
    feature_prefix: FeaturePrefixOpt = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Pool rows scored at a time (default: DEFAULT_CHUNK_SIZE, 65,536).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="local (stream on this machine) or ray (needs activemine[ray]).")
    ] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join, e.g. ray://head:10001 or auto.")] = None,
    near_duplicates: NearDuplicatesOpt = None,
    dedup_col: DedupColOpt = None,
    diversity: DiversityOpt = None,
    clusters: ClustersOpt = None,
    candidate_factor: CandidateFactorOpt = None,
    embedding_cols: EmbeddingColsOpt = None,
    embedding_prefix: EmbeddingPrefixOpt = None,
    embeddings: EmbeddingsFileOpt = None,
    image_col: ImageColOpt = None,
    image_size: ImageSizeOpt = None,
    image_mode: ImageModeOpt = None,
    skip_bad_images: SkipBadImagesOpt = False,
    carry_cols: Annotated[
        str,
        typer.Option(
            help="Pool columns copied into the batch for annotators: auto (the text-like ones: URLs, captions, "
            "paths, dates), none, or comma-separated names.",
        ),
    ] = "auto",
    quiet: QuietOpt = False,
) -> None:
    """Train on L, score U, select a batch and write it with id, score, predicted_class, stratum, strategy
    and the pool's text-like columns."""
    # library modules are imported here, not at the top, so `activemine --help` stays fast
    from activemine.cli._pool_io import ImageOptions, load_streaming_inputs
    from activemine.data.tables import batch_to_table, table_format
    from activemine.engines import DEFAULT_CHUNK_SIZE, make_executor, prepare_run
    from activemine.progress import progress_reporter
    from activemine.selection.plan import SelectionPlan

    started = time.perf_counter()
    # every setting is checked before anything is read or fitted
    from activemine.data.outputs import check_output

    check_output(
        out,
        protected={
            pool: "the pool given by --pool",
            **({labeled: "the labeled set given by --labeled"} if labeled else {}),
            **({embeddings: "the embedding file given by --embeddings"} if embeddings else {}),
        },
    )
    table_format(out)
    if engine not in ENGINE_NAMES:
        raise InputError(f"--engine must be one of {list(ENGINE_NAMES)}, got {engine!r}")
    if chunk_size is None:
        chunk_size = DEFAULT_CHUNK_SIZE
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    opts = StrategyOptions(
        strategy,
        model,
        seed,
        balance,
        easy_share,
        weak_fraction,
        committee_size,
        disagreement,
        classes,
        dirty_policy=dirty_policy,
        max_dirty=max_dirty,
        weak_trees=weak_trees,
        n_jobs=n_jobs,
        clean_selection=clean_selection,
        adapt_difficulty=adapt_difficulty,
        device=device,
        epochs=epochs,
        batch_size=batch_size,
        committee=committee,
        oof_method=oof_method,
    )
    strat = opts.build()
    from activemine.cli._diversity_options import check_embedding_values, diversity_options, embedding_columns

    div = diversity_options(
        near_duplicates=near_duplicates,
        dedup_col=dedup_col,
        diversity=diversity,
        clusters=clusters,
        candidate_factor=candidate_factor,
    )
    plan = SelectionPlan.build(strat, budget=budget, diversity=div)
    executor = make_executor(engine, chunk_size=chunk_size, ray_address=ray_address)
    if embeddings is not None:
        if div is None or not div.needs_embeddings:
            raise InputError(
                "--embeddings serves --near-duplicates (a radius or auto) and --diversity clusters; give one of them"
            )
        if engine != "local":
            raise InputError("--embeddings is joined to the pool on this machine: use --engine local")
        if embedding_cols and embedding_prefix:
            raise InputError("give --embedding-cols or --embedding-prefix, not both")
    embedding = ()
    if div is not None and embeddings is None:
        embedding = embedding_columns(pool, cols=embedding_cols, prefix=embedding_prefix)
    # then the inputs: L is read, U only opened (schema from metadata); the pool is streamed, never read whole
    images = ImageOptions(image_col, image_size, image_mode, skip_bad_images, n_jobs)
    images.spec()  # checked before anything is read
    labeled_set, source, skipped, note = load_streaming_inputs(
        labeled_path=labeled,
        pool_path=pool,
        label_col=label_col,
        id_col=id_col,
        proba_cols=proba_cols,
        weak_proba_cols=weak_proba_cols,
        embedding=embedding,
        dedup_col=dedup_col if div is not None else None,
        feature_cols=split_names(feature_cols),
        feature_prefix=feature_prefix,
        images=images,
        steps=lambda description, total=None: progress_reporter(description, total=total, unit="images", quiet=quiet),
    )
    if note and not quiet:
        from rich.markup import escape

        console.print(escape(note), highlight=False)
    from activemine.data.sources import carried_columns
    from activemine.data.tables import batch_column_names

    carried = carried_columns(source, carry_cols, taken=batch_column_names(id_col))
    if embeddings is not None:  # read whole and checked against every pool id before any fit
        from activemine.campaign.embeddings import JoinedEmbeddings

        source = JoinedEmbeddings.open(
            source, embeddings, cols=embedding_cols, prefix=embedding_prefix, chunk_size=chunk_size
        )
    run = prepare_run(strat, source, plan=plan, labeled=labeled_set)
    run.check_executor(executor)  # a cluster that cannot read the pool fails before any fit
    if embedding and run.n_proba_columns is None:
        check_embedding_values(source, chunk_size)  # a model is about to be fitted: bad embeddings fail first
    if run.n_proba_columns is None:
        with progress_reporter(f"fitting {strategy} ({model})", unit="", quiet=quiet):
            run.fit()
    else:
        run.fit()  # the pool brings probabilities: nothing to train
    with progress_reporter("scoring pool", total=source.num_rows, unit="rows", quiet=quiet) as bar:
        run.scan(executor, bar.advance)
    with progress_reporter("selecting", unit="", quiet=quiet):
        batch = run.select()
    table = batch_to_table(batch, strategy, id_col=id_col)
    if carried and len(batch):
        with progress_reporter(f"reading {', '.join(carried)} of the batch's rows", unit="", quiet=quiet):
            extra = source.rows_of(batch.ids, carried, chunk_size=chunk_size)
        for name in carried:
            table = table.append_column(name, extra.column(name))
    write_table_with_settings(table, out, command="mine")
    print_summary(batch, strategy=strategy, seconds=time.perf_counter() - started, out=out)
    report = getattr(strat, "dirty_report_", None)
    if report is not None and "oof_fits" in report.extra:  # HW's dirty-data check of L: what it found, its cost
        e = report.extra
        networks = f" + {e['network_fits']} network fit" if e.get("network_fits") else ""
        console.print(
            f"dirty-data check of L ({e['oof_method']}): {report.n_suspect} suspects, estimated dirty share "
            f"{report.dirty_share_before:.1%}; {e['oof_fits']} model fits{networks} in {e['seconds']:.1f} s",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    report_skipped(console, skipped)
    if batch.ties.get("taken_from_tie"):
        t = batch.ties
        console.print(
            f"{t['taken_from_tie']} batch rows were taken among {t['tied_rows']} rows of equal score "
            f"({t['tied_share']:.1%} of the selectable rows), ordered by the {t['broken_by']}",
            markup=False,
            highlight=False,
        )
    if batch.diversity is not None:
        from rich.markup import escape

        r = batch.diversity
        console.print(escape(r.describe()), highlight=False)
        if r.embedding:
            what = f"{embeddings} joined by id" if embeddings is not None else r.embedding
            console.print(f"embedding: {escape(what)}", highlight=False)
        if r.rescans:
            console.print(
                f"the candidates ran out {r.rescans} time(s); the pool was scanned again with a wider factor",
                highlight=False,
            )

"""``activemine campaign DIR ...``: a labeling campaign kept in a folder (see :mod:`activemine.campaign`)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from activemine.campaign.checks import DEFAULT_SUSPECT_THRESHOLD
from activemine.cli._app import QuietOpt, console, err_console, exits_on_bad_input
from activemine.cli._campaign_app import DirArg, campaign_app
from activemine.cli._config import PanelCommand, command_settings
from activemine.cli._diversity_options import CandidateFactorOpt, ClustersOpt, DiversityOpt, NearDuplicatesOpt
from activemine.cli._feature_options import FeatureColsOpt, FeaturePrefixOpt, split_names
from activemine.cli._image_options import ImageColOpt, ImageModeOpt, ImageSizeOpt, SkipBadImagesOpt, report_skipped
from activemine.cli._strategy_options import (
    AdaptDifficultyOpt,
    BalanceOpt,
    BatchSizeOpt,
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
from activemine.progress import progress_reporter

# the library (numpy, pyarrow, sqlite) is imported inside each command, so `activemine --help` stays fast


def _steps(quiet: bool):
    """The progress display of a campaign step (see :data:`activemine.campaign.rounds.Steps`)."""
    return lambda description, total=None, unit="rows": progress_reporter(
        description, total=total, unit=unit, quiet=quiet
    )


def _text(value) -> str:
    """User text (paths, ids, names) for rich output: never markup."""
    return escape(str(value))


@campaign_app.command("init")
@exits_on_bad_input
def init(
    folder: DirArg,
    pool: Annotated[
        Path,
        typer.Option(
            help="Unlabeled pool U: a .parquet file, a folder of them, a .csv, or a folder of images; never read whole."
        ),
    ],
    labeled: Annotated[
        Path | None,
        typer.Option(
            help="Labeled set L (.parquet, .csv, or a folder with one image subfolder per class); optional for a "
            "probability pool with --classes."
        ),
    ] = None,
    label_col: Annotated[
        str | None,
        typer.Option(
            help="Label column of L (default: label; a file with only y, the old default, is read by y with a warning)."
        ),
    ] = None,
    id_col: Annotated[str, typer.Option(help="Id column of L and U.")] = "id",
    text_col: Annotated[str | None, typer.Option(help="Column of U shown as text on the labeling page.")] = None,
    feature_cols: FeatureColsOpt = None,
    feature_prefix: FeaturePrefixOpt = None,
    classes: Annotated[
        str | None, typer.Option(help="All class labels, comma-separated (default: those in L, sorted).")
    ] = None,
    proba_cols: Annotated[
        str | None,
        typer.Option(
            help="The pool brings the model's class probabilities: columns p0,p1,... in class order (QBC: a0,a1;b0,b1)."
        ),
    ] = None,
    weak_proba_cols: Annotated[str | None, typer.Option(help="HW: the weak model's probability columns of U.")] = None,
    copy: Annotated[
        bool,
        typer.Option("--copy/--no-copy", help="Copy the pool's files into the folder (default) or record their paths."),
    ] = True,
    image_col: ImageColOpt = None,
    image_size: ImageSizeOpt = None,
    image_mode: ImageModeOpt = None,
    skip_bad_images: SkipBadImagesOpt = False,
    n_jobs: NJobsOpt = None,
    embedding_cols: Annotated[
        str | None,
        typer.Option(
            help="Embedding columns for --near-duplicates and --diversity in rounds: e0,e1,... (or one "
            "fixed-size-list column) of the pool, or of --embeddings."
        ),
    ] = None,
    embedding_prefix: Annotated[
        str | None, typer.Option(help="As --embedding-cols: every column whose name starts with this.")
    ] = None,
    embeddings: Annotated[
        Path | None,
        typer.Option(
            help="A .parquet/.csv of ids (--id-col) and embeddings, joined to the pool by id at init (read whole)."
        ),
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Create a campaign folder: a SQLite store (WAL), L, and the pool's Parquet files (copied as files)."""
    from activemine.campaign import campaign_status, init_campaign
    from activemine.cli._pool_io import split_columns

    class_list = None
    if classes is not None:
        items = [c.strip() for c in classes.split(",") if c.strip()]
        class_list = [int(c) for c in items] if all(c.lstrip("-").isdigit() for c in items) else items
    weak = split_columns(weak_proba_cols)
    if len(weak) > 1:
        raise InputError(f"--weak-proba-cols takes one group of columns, got {len(weak)}")
    from activemine.cli._pool_io import ImageOptions

    spec = ImageOptions(image_col, image_size, image_mode, skip_bad_images, n_jobs).spec()
    skipped: list = []
    with progress_reporter("checking the pool's ids and images", unit="rows", quiet=quiet) as bar:
        store = init_campaign(
            folder,
            pool=pool,
            labeled=labeled,
            label_col=label_col,
            id_col=id_col,
            text_col=text_col,
            classes=class_list,
            proba_cols=split_columns(proba_cols),
            weak_proba_cols=weak[0] if weak else None,
            copy=copy,
            progress=bar,
            feature_cols=split_names(feature_cols),
            feature_prefix=feature_prefix,
            image_col=image_col,
            image_spec=spec,
            skip_bad_images=skip_bad_images,
            skipped=skipped,
            embedding_cols=embedding_cols,
            embedding_prefix=embedding_prefix,
            embeddings=embeddings,
        )
    s = campaign_status(store)
    kind = "probabilities" if store.meta["proba_cols"] or store.meta["weak_proba_cols"] else "features"
    if store.meta.get("image"):
        kind = "images {}x{} {}".format(*store.meta["image"]["size"], store.meta["image"]["mode"])
    console.print(
        f"created campaign {_text(folder)}: {s['pool']:,} pool samples ({kind}), {s['initial']:,} labeled, "
        f"classes {_text(store.classes)}, view {store.meta['view']['kind']}",
        highlight=False,
    )
    report_skipped(console, skipped)
    if store.meta.get("embedding_cols"):
        console.print(f"embeddings: {len(store.meta['embedding_cols'])} columns per sample", highlight=False)


@campaign_app.command("status")
@exits_on_bad_input
def status(
    folder: DirArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False
) -> None:
    """Progress per round, class and annotator: labeled, queued and flagged samples."""
    from rich.table import Table

    from activemine.campaign import CampaignStore, campaign_status

    s = campaign_status(CampaignStore(folder))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    console.print(
        f"pool {s['pool']}  initial labels {s['initial']}  labeled {s['labeled']}  queued {s['queued']}  "
        f"flagged {s['flagged']} (conflict {s['flagged_conflict']}, suspect {s['flagged_suspect']})"
    )
    rounds = Table(title="rounds")
    for col in ("round", "strategy", "created", "size", "labeled", "queued", "flagged"):
        rounds.add_column(col, justify="right" if col not in ("strategy", "created") else "left")
    for r in s["rounds"]:
        rounds.add_row(
            *map(
                _text, (r["round"], r["strategy"], r["created_at"], r["size"], r["labeled"], r["queued"], r["flagged"])
            )
        )
    console.print(rounds)
    by_class = Table(title="labels per class (unflagged)")
    for col in ("class", "initial", "new"):
        by_class.add_column(col, justify="left" if col == "class" else "right")
    for c, n in s["classes"].items():
        by_class.add_row(_text(c), str(n["initial"]), str(n["new"]))
    console.print(by_class)
    people = Table(title="annotators")
    for col in ("annotator", "labels", "samples", "flagged"):
        people.add_column(col, justify="left" if col == "annotator" else "right")
    for who, n in s["annotators"].items():
        people.add_row(_text(who), str(n["labels"]), str(n["samples"]), str(n["flagged"]))
    console.print(people)
    from activemine.cli._campaign_stopping import print_stopping

    print_stopping(s["stopping"])


@campaign_app.command("mine", cls=PanelCommand)
@exits_on_bad_input
def mine(
    folder: DirArg,
    budget: Annotated[int, typer.Option(help="Number of samples to select.")],
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
    chunk_size: Annotated[int, typer.Option(help="Pool rows scored at a time.")] = 65_536,
    engine: Annotated[
        str, typer.Option(help="local (stream on this machine) or ray (needs activemine[ray]).")
    ] = "local",
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to join, e.g. ray://head:10001 or auto.")] = None,
    overlap: Annotated[float, typer.Option(help="Share of the round, in [0, 1), labeled by several annotators.")] = 0.0,
    per_item: Annotated[int, typer.Option(help="Distinct annotators per overlapping sample (2 to 20).")] = 2,
    stop_set_size: Annotated[
        int | None,
        typer.Option(
            help="Pool samples whose predictions each round stores for the stopping criteria; fixed at the first round (default 2,000)."
        ),
    ] = None,
    near_duplicates: NearDuplicatesOpt = None,
    diversity: DiversityOpt = None,
    clusters: ClustersOpt = None,
    candidate_factor: CandidateFactorOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Mine a new round: train on the campaign's labels, stream the pool, select from samples neither labeled nor queued."""
    from activemine.campaign import CampaignStore, mine_round
    from activemine.campaign.overlap import check_overlap, wanted_counts
    from activemine.cli._diversity_options import diversity_options

    check_overlap(overlap, per_item)
    div = diversity_options(
        near_duplicates=near_duplicates,
        dedup_col=None,
        diversity=diversity,
        clusters=clusters,
        candidate_factor=candidate_factor,
    )
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    opts = StrategyOptions(
        strategy=strategy,
        model=model,
        seed=seed,
        balance=balance,
        easy_share=easy_share,
        weak_fraction=weak_fraction,
        committee_size=committee_size,
        disagreement=disagreement,
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
    strat = opts.build()  # the model is checked before the campaign is opened
    store = CampaignStore(folder)
    started = time.perf_counter()
    round_no, batch = mine_round(
        store,
        strat,
        budget=budget,
        params=dict(vars(opts), settings=command_settings()),
        chunk_size=chunk_size,
        engine=engine,
        ray_address=ray_address,
        stop_set_size=stop_set_size,
        steps=_steps(quiet),
        diversity=div,
        overlap=overlap,
        per_item=per_item,
        seed=seed,
    )
    if batch.diversity is not None:
        console.print(escape(batch.diversity.describe()), highlight=False)
    console.print(
        f"round {round_no}: {len(batch):,} samples queued with {_text(strategy)} in "
        f"{time.perf_counter() - started:.1f} s",
        highlight=False,
    )
    if overlap > 0:
        shared = wanted_counts(store, round_no)
        console.print(f"{len(shared)} of them go to {per_item} distinct annotators each")
    console.print(
        f"next: activemine campaign export {_text(folder)} --round {round_no} --format label-studio "
        f"--out round{round_no}.json",
        highlight=False,
        soft_wrap=True,
    )


@campaign_app.command("export")
@exits_on_bad_input
def export(
    folder: DirArg,
    out: Annotated[Path, typer.Option(help="File to write.")],
    round_no: Annotated[int | None, typer.Option("--round", help="Round to export (default: the newest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv, jsonl or label-studio.")] = "csv",
    include_labeled: Annotated[bool, typer.Option(help="Also export samples that already have a label.")] = False,
    flagged: Annotated[
        bool,
        typer.Option(
            "--flagged",
            help="Export every flagged sample (suspect or conflicting labels) for a review, with why and the labels "
            "it has; import the answers with `campaign import --review`.",
        ),
    ] = False,
) -> None:
    """Write a round's samples for annotators (CSV, JSONL, or Label Studio tasks with pre-annotations)."""
    from activemine.campaign import CampaignStore, export_round

    store = CampaignStore(folder)
    if flagged:
        if round_no is not None or include_labeled:
            raise InputError("--flagged exports every flagged sample; leave out --round and --include-labeled")
    elif round_no is None:
        round_no = store.last_round()
        if round_no is None:
            raise InputError("the campaign has no round yet; run `activemine campaign mine` first")
    n = export_round(store, round_no, fmt=fmt, out=out, include_labeled=include_labeled, flagged=flagged)
    what = "flagged samples" if flagged else f"samples of round {round_no}"
    console.print(f"wrote {n} {what} to {_text(out)}", highlight=False)
    if flagged:
        console.print(
            f"after the review: activemine campaign import {_text(folder)} FILE --review",
            highlight=False,
            soft_wrap=True,
        )
    if fmt == "label-studio":
        from activemine.campaign.exchange import label_studio_config_path, write_label_studio_config

        config = label_studio_config_path(out)
        write_label_studio_config(store, config)
        console.print(f"Label Studio labeling config: {_text(config)}", highlight=False)


@campaign_app.command("import")
@exits_on_bad_input
def import_(
    folder: DirArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="Labels: .csv or .jsonl (the id column named as at init, or id; label; annotator optional) or a Label Studio .json export."
        ),
    ],
    annotator: Annotated[str | None, typer.Option(help="Annotator of records that name none.")] = None,
    suspect_threshold: Annotated[
        float,
        typer.Option(
            help="Flag labels the model puts more than this far behind its top class (0..1; 1 flags nothing)."
        ),
    ] = DEFAULT_SUSPECT_THRESHOLD,
    suspect_by_class: Annotated[
        bool,
        typer.Option(
            "--suspect-by-class/--suspect-shared",
            help="Raise the threshold per class so correct labels of a rare class are flagged no more often "
            "than others (default), or use one threshold for every class.",
        ),
    ] = True,
    review: Annotated[bool, typer.Option(help="A re-review: its labels replace earlier ones and clear flags.")] = False,
    allow_labeled_set: Annotated[
        bool, typer.Option(help="Accept labels for ids of the initial labeled set L.")
    ] = False,
    allow_unmined: Annotated[bool, typer.Option(help="Accept labels for pool ids that no round selected.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Validate a file of labels completely and apply it in one transaction (or not at all)."""
    from activemine.campaign import CampaignStore, import_labels

    store = CampaignStore(folder)
    with progress_reporter(f"importing {file.name}", unit="records", quiet=quiet) as bar:
        r = import_labels(
            store,
            file,
            annotator=annotator,
            suspect_threshold=suspect_threshold,
            suspect_by_class=suspect_by_class,
            review=review,
            allow_labeled_set=allow_labeled_set,
            allow_unmined=allow_unmined,
            progress=bar,
        )
    if r.already_imported:
        console.print(f"{_text(file)} was imported before with the same options; nothing changed", highlight=False)
        return
    console.print(
        f"{_text(file)}: {r.records:,} records, {r.added:,} labels added, {r.already_present:,} already present, "
        f"{r.skipped_empty:,} without a label",
        highlight=False,
    )
    if r.conflicts:
        err_console.print(
            f"flagged {len(r.conflicts):,} ids with conflicting labels, e.g. {_text(r.conflicts[:5])}", highlight=False
        )
    if r.suspect:
        err_console.print(
            f"flagged {len(r.suspect):,} labels the model doubts for re-review, e.g. {_text(r.suspect[:5])}",
            highlight=False,
        )


@campaign_app.command("dataset")
@exits_on_bad_input
def dataset(
    folder: DirArg,
    out: Annotated[Path, typer.Option(help="Training set to write (.parquet or .csv).")],
    consensus: Annotated[
        str,
        typer.Option(
            help="Label of a sample several annotators disagree on: dawid-skene (default), majority, model-weighted, or none (leave it out)."
        ),
    ] = "dawid-skene",
    drop_flagged: Annotated[
        bool,
        typer.Option(
            help="Leave out samples whose label the model doubts (suspect); by default they keep their label "
            "until a review (import --review) replaces it."
        ),
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the current labeled set (L plus returned labels, a consensus where annotators disagree) for retraining."""
    from activemine.campaign import CampaignStore, write_dataset
    from activemine.campaign.annotators import DATASET_CONSENSUS
    from activemine.data.outputs import check_output
    from activemine.data.tables import table_format

    if consensus not in DATASET_CONSENSUS:
        raise InputError(f"--consensus must be one of {DATASET_CONSENSUS}, got {consensus!r}")

    store = CampaignStore(folder)
    check_output(out, protected=store.own_files())
    table_format(out)
    with progress_reporter("reading the labeled pool samples", unit="rows", quiet=quiet) as bar:
        counts = write_dataset(store, out, consensus=consensus, drop_flagged=drop_flagged, progress=bar)
    kept = f", {counts['flagged_kept']:,} flagged ids kept with their label" if counts["flagged_kept"] else ""
    console.print(
        f"wrote {counts['rows']:,} rows ({counts['initial']:,} initial, {counts['new']:,} new) to {_text(out)}; "
        f"{counts['flagged_left_out']:,} flagged ids left out{kept}",
        highlight=False,
    )


@campaign_app.command("serve")
@exits_on_bad_input
def serve(
    folder: DirArg,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the page to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[str | None, typer.Option(help="Access token (default: a new random one, printed).")] = None,
    round_no: Annotated[int | None, typer.Option("--round", help="Round to label (default: the newest).")] = None,
    lease_seconds: Annotated[
        float, typer.Option(help="Seconds a sample stays reserved for one annotator (above 0, at most a week).")
    ] = 300.0,
    review: Annotated[
        bool,
        typer.Option(
            "--review", help="Serve the flagged samples for review: a reviewer's label replaces their labels."
        ),
    ] = False,
) -> None:
    """Serve the labeling page (needs the web extra of activemine: FastAPI and uvicorn)."""
    if not 1 <= port <= 65535:
        raise InputError(f"--port must be a TCP port from 1 to 65535, got {port}")

    try:
        import uvicorn

        from activemine.campaign import CampaignStore
        from activemine.campaign.web import create_app
    except ImportError as exc:
        raise InputError(f"`campaign serve` needs the web extra: pip install 'activemine[web]' ({exc})") from exc
    store = CampaignStore(folder)
    token = token or secrets.token_urlsafe(16)
    web_app = create_app(store, token=token, round_no=round_no, lease_seconds=lease_seconds, review=review)
    console.print(f"labeling page: http://{_text(host)}:{port}/?token={_text(token)}", soft_wrap=True, highlight=False)
    uvicorn.run(web_app, host=host, port=port, log_level="warning")


from activemine.cli import _campaign_stopping  # noqa: E402,F401  registers `campaign forecast` after the commands above

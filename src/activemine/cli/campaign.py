"""``activemine campaign DIR ...``: a labeling campaign kept in a folder (see :mod:`activemine.campaign`)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from activemine.campaign import (
    EXPORT_FORMATS, CampaignStore, campaign_status, export_round, import_labels, init_campaign, mine_round, write_dataset,
)  # fmt: skip
from activemine.cli._app import app, console, err_console, exits_on_bad_input
from activemine.cli._strategy_options import (
    BalanceOpt, CommitteeSizeOpt, DirtyPolicyOpt, DisagreementOpt, EasyShareOpt, MaxDirtyOpt, ModelOpt, SeedOpt,
    StrategyOpt, StrategyOptions, WeakFractionOpt, WeakTreesOpt,
)  # fmt: skip
from activemine.errors import InputError
from activemine.strategies import HW_WEAK_TREES
from activemine.tables import table_format

campaign_app = typer.Typer(
    help="Labeling campaigns: rounds of mining, export to annotators, import of labels, a labeling page.",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")

DirArg = Annotated[Path, typer.Argument(help="The campaign folder.")]


@campaign_app.command("init")
@exits_on_bad_input
def init(
    folder: DirArg,
    pool: Annotated[Path, typer.Option(help="Unlabeled pool U (.parquet or .csv); copied into the folder.")],
    labeled: Annotated[Path, typer.Option(help="Labeled set L (.parquet or .csv); copied into the folder.")],
    label_col: Annotated[str, typer.Option(help="Label column of L.")] = "y",
    id_col: Annotated[str, typer.Option(help="Id column of L and U.")] = "id",
    text_col: Annotated[Optional[str], typer.Option(help="Column of U shown as text on the labeling page.")] = None,
    classes: Annotated[Optional[str], typer.Option(help="All class labels, comma-separated (default: those in L).")] = None,
) -> None:
    """Create a campaign folder: a SQLite store (WAL) plus the pool and labeled set as Parquet."""
    class_list = None
    if classes is not None:
        items = [c.strip() for c in classes.split(",") if c.strip()]
        class_list = [int(c) for c in items] if all(c.lstrip("-").isdigit() for c in items) else items
    store = init_campaign(folder, pool=pool, labeled=labeled, label_col=label_col, id_col=id_col,
                          text_col=text_col, classes=class_list)  # fmt: skip
    s = campaign_status(store)
    console.print(f"created campaign {folder}: {s['pool']} pool samples, {s['initial']} labeled, "
                  f"classes {store.classes}, view {store.meta['view']['kind']}")  # fmt: skip


@campaign_app.command("status")
@exits_on_bad_input
def status(folder: DirArg, as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False) -> None:
    """Progress per round, class and annotator: labeled, queued and flagged samples."""
    s = campaign_status(CampaignStore(folder))
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    console.print(f"pool {s['pool']}  initial labels {s['initial']}  labeled {s['labeled']}  queued {s['queued']}  "
                  f"flagged {s['flagged']} (conflict {s['flagged_conflict']}, suspect {s['flagged_suspect']})")  # fmt: skip
    rounds = Table(title="rounds")
    for col in ("round", "strategy", "created", "size", "labeled", "queued", "flagged"):
        rounds.add_column(col, justify="right" if col not in ("strategy", "created") else "left")
    for r in s["rounds"]:
        rounds.add_row(*map(str, (r["round"], r["strategy"], r["created_at"], r["size"], r["labeled"], r["queued"], r["flagged"])))
    console.print(rounds)
    by_class = Table(title="labels per class (unflagged)")
    for col in ("class", "initial", "new"):
        by_class.add_column(col, justify="left" if col == "class" else "right")
    for c, n in s["classes"].items():
        by_class.add_row(c, str(n["initial"]), str(n["new"]))
    console.print(by_class)
    people = Table(title="annotators")
    for col in ("annotator", "labels", "samples", "flagged"):
        people.add_column(col, justify="left" if col == "annotator" else "right")
    for who, n in s["annotators"].items():
        people.add_row(who, str(n["labels"]), str(n["samples"]), str(n["flagged"]))
    console.print(people)
    from activemine.cli._campaign_stopping import print_stopping

    print_stopping(s["stopping"])


@campaign_app.command("mine")
@exits_on_bad_input
def mine(
    folder: DirArg,
    budget: Annotated[int, typer.Option(help="Number of samples to select.")],
    strategy: StrategyOpt = "hw",
    model: ModelOpt = "lightgbm",
    seed: SeedOpt = 0,
    balance: BalanceOpt = None,
    easy_share: EasyShareOpt = None,
    weak_fraction: WeakFractionOpt = 0.3,
    weak_trees: WeakTreesOpt = HW_WEAK_TREES,
    committee_size: CommitteeSizeOpt = 3,
    disagreement: DisagreementOpt = "vote",
    dirty_policy: DirtyPolicyOpt = "prune",
    max_dirty: MaxDirtyOpt = 0.02,
    chunk_size: Annotated[int, typer.Option(help="Pool rows scored at a time.")] = 65_536,
    overlap: Annotated[float, typer.Option(help="Share of the round, in [0, 1), labeled by several annotators.")] = 0.0,
    per_item: Annotated[int, typer.Option(help="Distinct annotators per overlapping sample (at least 2).")] = 2,
    stop_set_size: Annotated[Optional[int], typer.Option(help="Pool samples whose predictions each round stores for the stopping criteria; fixed at the first round (default 2,000).")] = None,
) -> None:
    """Mine a new round: train on the campaign's labels, select from samples neither labeled nor queued."""
    from activemine.campaign.overlap import assign_overlap, check_overlap

    check_overlap(overlap, per_item)
    if chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    opts = StrategyOptions(strategy=strategy, model=model, seed=seed, balance=balance, easy_share=easy_share,
                           weak_fraction=weak_fraction, committee_size=committee_size, disagreement=disagreement,
                           dirty_policy=dirty_policy, max_dirty=max_dirty, weak_trees=weak_trees)  # fmt: skip
    store = CampaignStore(folder)
    started = time.perf_counter()
    round_no, batch = mine_round(store, opts.build(), budget=budget, params=vars(opts), chunk_size=chunk_size,
                                 stop_set_size=stop_set_size)
    console.print(f"round {round_no}: {len(batch)} samples queued with {strategy} in {time.perf_counter() - started:.1f} s")
    if overlap > 0:
        shared = assign_overlap(store, round_no, overlap=overlap, per_item=per_item, seed=seed)
        console.print(f"{len(shared)} of them go to {per_item} distinct annotators each")
    console.print(f"next: activemine campaign export {folder} --round {round_no} --format label-studio --out round{round_no}.json")


@campaign_app.command("export")
@exits_on_bad_input
def export(
    folder: DirArg,
    out: Annotated[Path, typer.Option(help="File to write.")],
    round_no: Annotated[Optional[int], typer.Option("--round", help="Round to export (default: the newest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help=f"One of {', '.join(EXPORT_FORMATS)}.")] = "csv",
    include_labeled: Annotated[bool, typer.Option(help="Also export samples that already have a label.")] = False,
) -> None:
    """Write a round's samples for annotators (CSV, JSONL, or Label Studio tasks with pre-annotations)."""
    store = CampaignStore(folder)
    if round_no is None:
        round_no = store.last_round()
        if round_no is None:
            raise InputError("the campaign has no round yet; run `activemine campaign mine` first")
    n = export_round(store, round_no, fmt=fmt, out=out, include_labeled=include_labeled)
    console.print(f"wrote {n} samples of round {round_no} to {out}")
    if fmt == "label-studio":
        from activemine.campaign.exchange import write_label_studio_config

        config = out.with_name(out.stem + ".label-config.xml")
        write_label_studio_config(store, config)
        console.print(f"Label Studio labeling config: {config}")


@campaign_app.command("import")
@exits_on_bad_input
def import_(
    folder: DirArg,
    file: Annotated[Path, typer.Argument(help="Labels: .csv or .jsonl (id, label[, annotator]) or a Label Studio .json export.")],
    annotator: Annotated[Optional[str], typer.Option(help="Annotator of records that name none.")] = None,
    suspect_threshold: Annotated[float, typer.Option(help="Flag labels the model puts this far behind its top class.")] = 0.5,
    review: Annotated[bool, typer.Option(help="A re-review: its labels replace earlier ones and clear flags.")] = False,
) -> None:
    """Validate a file of labels completely, then apply it in one transaction (or not at all)."""
    r = import_labels(CampaignStore(folder), file, annotator=annotator, suspect_threshold=suspect_threshold, review=review)
    if r.already_imported:
        console.print(f"{file} was imported before; nothing changed")
        return
    console.print(f"{file}: {r.records} records, {r.added} labels added, {r.already_present} already present, "
                  f"{r.skipped_empty} without a label")  # fmt: skip
    if r.conflicts:
        err_console.print(f"flagged {len(r.conflicts)} ids with conflicting labels, e.g. {r.conflicts[:5]}")
    if r.suspect:
        err_console.print(f"flagged {len(r.suspect)} labels the model doubts for re-review, e.g. {r.suspect[:5]}")


@campaign_app.command("dataset")
@exits_on_bad_input
def dataset(
    folder: DirArg,
    out: Annotated[Path, typer.Option(help="Training set to write (.parquet or .csv).")],
    consensus: Annotated[str, typer.Option(help="Label of a sample several annotators disagree on: dawid-skene (default), majority, model-weighted, or none (leave it out).")] = "dawid-skene",
) -> None:
    """Write the current labeled set (L plus returned labels, a consensus where annotators disagree) for retraining."""
    from activemine.campaign.annotators import DATASET_CONSENSUS

    if consensus not in DATASET_CONSENSUS:
        raise InputError(f"--consensus must be one of {DATASET_CONSENSUS}, got {consensus!r}")
    table_format(out)
    counts = write_dataset(CampaignStore(folder), out, consensus=consensus)
    console.print(f"wrote {counts['rows']} rows ({counts['initial']} initial, {counts['new']} new) to {out}; "
                  f"{counts['flagged_left_out']} flagged ids left out")  # fmt: skip


@campaign_app.command("serve")
@exits_on_bad_input
def serve(
    folder: DirArg,
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the page to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[Optional[str], typer.Option(help="Access token (default: a new random one, printed).")] = None,
    round_no: Annotated[Optional[int], typer.Option("--round", help="Round to label (default: the newest).")] = None,
    lease_seconds: Annotated[float, typer.Option(help="How long a sample stays reserved for one annotator.")] = 300.0,
) -> None:
    """Serve the labeling page (needs the web extra of activemine: FastAPI and uvicorn)."""
    try:
        import uvicorn

        from activemine.campaign.web import create_app
    except ImportError as exc:
        raise InputError(f"`campaign serve` needs the web extra: pip install 'activemine[web]' ({exc})") from exc
    store = CampaignStore(folder)
    token = token or secrets.token_urlsafe(16)
    web_app = create_app(store, token=token, round_no=round_no, lease_seconds=lease_seconds)
    console.print(f"labeling page: http://{host}:{port}/?token={token}", soft_wrap=True)
    uvicorn.run(web_app, host=host, port=port, log_level="warning")


from activemine.cli import _campaign_stopping  # noqa: E402,F401  registers `campaign forecast`

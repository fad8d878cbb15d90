"""``activemine campaign annotators|relabel DIR``: annotator agreement and quality, and rounds of second opinions."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from activemine.annotators.agreement import CONSENSUS_METHODS, DEFAULT_CONSENSUS
from activemine.cli._app import console, exits_on_bad_input
from activemine.cli._campaign_app import DirArg, campaign_app
from activemine.errors import InputError


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@campaign_app.command("annotators")
@exits_on_bad_input
def annotators(
    folder: DirArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    consensus: Annotated[
        str, typer.Option(help=f"Consensus to compare with: {', '.join(CONSENSUS_METHODS)}.")
    ] = DEFAULT_CONSENSUS,
) -> None:
    """Per annotator: labels, agreement (Cohen's kappa pairwise, Krippendorff's alpha), accuracy against the consensus and the model, flags."""
    from activemine.campaign import CampaignStore
    from activemine.campaign.annotators import REPORT_DIR, annotator_summary, public_summary, write_agreement_heatmap

    if consensus not in CONSENSUS_METHODS:
        raise InputError(f"--consensus must be one of {CONSENSUS_METHODS}, got {consensus!r}")
    store = CampaignStore(folder)
    report = annotator_summary(store, method=consensus)
    figure = (
        write_agreement_heatmap(report, store.folder / REPORT_DIR / "annotator_agreement.png")
        if report["annotators"]
        else None
    )
    if as_json:
        typer.echo(json.dumps(public_summary(report), indent=2))
        return
    alpha = report["alpha"]
    console.print(
        f"{report['samples']} samples with returned labels; Krippendorff's alpha (nominal) {_fmt(alpha)}; "
        f"consensus {consensus}",
        highlight=False,
    )
    table = Table(title="annotators (rank 1 = lowest agreement with the consensus)")
    for col in ("annotator", "labels", "shared", "with others", "with consensus", "with model", "rank", "flagged"):
        table.add_column(col, justify="left" if col == "annotator" else "right")
    for a in sorted(report["annotators"], key=lambda a: a["rank"]):
        table.add_row(
            escape(str(a["name"])),
            str(a["labels"]),
            str(a["shared"]),
            _fmt(a["agreement_with_others"]),
            _fmt(a["agreement_with_consensus"]),
            _fmt(a["agreement_with_model"]),
            str(a["rank"]),
            "FLAGGED" if a["flagged"] else "",
        )
    console.print(table)
    pairs = Table(title="pairs (Cohen's kappa on shared samples)")
    for col in ("a", "b", "shared", "kappa"):
        pairs.add_column(col, justify="left" if col in ("a", "b") else "right")
    for p in report["pairs"]:
        pairs.add_row(escape(str(p["a"])), escape(str(p["b"])), str(p["shared"]), _fmt(p["kappa"]))
    console.print(pairs)
    if figure is not None:
        console.print(f"agreement heat map: {escape(str(figure))}", highlight=False)


@campaign_app.command("relabel")
@exits_on_bad_input
def relabel(
    folder: DirArg,
    budget: Annotated[int, typer.Option(help="Second opinions to ask for (returned labels, most likely wrong first).")],
) -> None:
    """Open a round of second opinions on returned labels, ranked by the chance the label is wrong and what fixing it is worth."""
    from activemine.campaign import CampaignStore
    from activemine.campaign.annotators import open_relabel_round

    store = CampaignStore(folder)
    round_no, sids = open_relabel_round(store, budget, params={"budget": budget})
    (params,) = store.read("SELECT params FROM rounds WHERE round = ?", (round_no,))[0]
    advice = json.loads(params)["advice"]
    console.print(f"round {round_no}: {len(sids)} samples queued for a second opinion", highlight=False)
    console.print(
        f"expected fixes {advice['expected_fixes']:.1f} of {advice['budget']}: advice for the next budget: "
        f"{'relabel' if advice['advised'] == 'relabel' else 'mine new samples'}",
        highlight=False,
    )
    console.print(
        f"next: activemine campaign export {escape(str(folder))} --round {round_no} --format label-studio "
        f"--out round{round_no}.json",
        highlight=False,
        soft_wrap=True,
    )

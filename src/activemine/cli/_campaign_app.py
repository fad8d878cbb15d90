"""The ``activemine campaign`` command group and what its commands share; the commands register on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from activemine.cli._app import app

__all__ = ["DirArg", "campaign_app"]

campaign_app = typer.Typer(
    help="Labeling campaigns: rounds of mining, export to annotators, import of labels, a labeling page.",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")

DirArg = Annotated[Path, typer.Argument(help="The campaign folder.")]

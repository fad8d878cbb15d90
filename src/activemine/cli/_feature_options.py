"""Options naming the feature columns, shared by every command that reads features."""

from __future__ import annotations

from typing import Annotated

import typer

FeatureColsOpt = Annotated[
    str | None,
    typer.Option(
        help="Feature columns, comma-separated (default: every numeric column but the id and the label; "
        "other columns are carried along, not refused)."
    ),
]
FeaturePrefixOpt = Annotated[
    str | None, typer.Option(help="Feature columns: every column whose name starts with this.")
]


def split_names(value: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None stays None."""
    return None if value is None else [c.strip() for c in value.split(",") if c.strip()]

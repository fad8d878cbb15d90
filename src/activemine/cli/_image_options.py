"""Options for pools and labeled sets of images, shared by ``mine``, ``experiment`` and ``campaign init``."""

from __future__ import annotations

from typing import Annotated

import typer

ImageColOpt = Annotated[
    str | None,
    typer.Option(
        help="Column of a Parquet/CSV L and U holding each image's path (relative to the file's folder) or bytes. "
        "Not needed for folders of images."
    ),
]
ImageSizeOpt = Annotated[
    str | None,
    typer.Option(help="Resize every image to HEIGHTxWIDTH pixels, e.g. 28x28 (default: the first image's size)."),
]
ImageModeOpt = Annotated[
    str | None, typer.Option(help="L (grayscale) or RGB (default: L for one-band first images, else RGB).")
]
SkipBadImagesOpt = Annotated[
    bool,
    typer.Option(
        "--skip-bad-images",
        help="Leave out missing, unreadable or truncated images (counted in the output) instead of stopping.",
    ),
]


def report_skipped(console, skipped) -> None:
    """One line per group of images left out (file names are data, escaped)."""
    from rich.markup import escape

    for what, bad in skipped:
        console.print(escape(bad.describe(what)), highlight=False)

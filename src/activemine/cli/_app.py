"""The typer application and the helpers every command shares."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from activemine.errors import ActivemineError

app = typer.Typer(
    name="activemine",
    help="Batch active learning: mine the pool samples most worth labeling.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: typer's rich help panels import rich.markdown and markdown_it (~0.2 s of every start)
    rich_markup_mode=None,
)
console = Console(stderr=False)
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or progress lines.")]


def exits_on_bad_input(fn: Callable) -> Callable:
    """Turn an :class:`ActivemineError` into a message on stderr and exit code 2.

    The message is the error's own sentence, after ``error:``; the exception's
    class name is for code, not for users. It quotes user data (paths, ids,
    labels), so it is escaped: a ``[/bold]`` in a file name is printed as it
    is, never read as markup.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ActivemineError as exc:
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def _print_version(value: bool) -> None:
    if value:
        from activemine import __version__

        typer.echo(f"activemine {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Batch active learning: mine the pool samples most worth labeling."""

"""The typer application and the helpers every command shares."""

from __future__ import annotations

import functools
import sys
import warnings
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from activemine.errors import ActivemineDeprecationWarning, ActivemineError, StoreBusyError

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
#: the campaign store was busy with another process's write: nothing changed, run the command again (EX_TEMPFAIL)
EXIT_BUSY = 75

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or progress lines.")]


def _deprecation_notes(show: Callable) -> Callable:
    """A ``warnings.showwarning`` that prints activemine's deprecation notes as one line on stderr, when
    they happen, and hands every other warning to ``show``."""

    def show_warning(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ActivemineDeprecationWarning):
            err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)
        else:
            show(message, category, filename, lineno, file, line)

    return show_warning


def exits_on_bad_input(fn: Callable) -> Callable:
    """Turn an :class:`ActivemineError` into a one-line message on stderr and exit code 2
    (:data:`EXIT_BUSY` for a busy campaign store, which a script may retry); deprecation notes
    (:class:`~activemine.errors.ActivemineDeprecationWarning`) become a ``warning:`` line.

    The message quotes user data (paths, ids, labels), so it is escaped: a
    ``[/bold]`` in a file name is printed as it is, never read as markup.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():  # restores the display of warnings afterwards
                warnings.simplefilter("always", ActivemineDeprecationWarning)
                warnings.showwarning = _deprecation_notes(warnings.showwarning)
                return fn(*args, **kwargs)
        except ActivemineError as exc:
            err_console.print(
                f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            sys.exit(EXIT_BUSY if isinstance(exc, StoreBusyError) else EXIT_BAD_INPUT)

    return wrapper


@app.callback()
def _root() -> None:
    """Batch active learning: mine the pool samples most worth labeling."""

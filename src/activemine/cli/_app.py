"""The typer application and the helpers every command shares."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

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
)
console = Console(stderr=False)
err_console = Console(stderr=True)

EXIT_BAD_INPUT = 2


def exits_on_bad_input(fn: Callable) -> Callable:
    """Turn an :class:`ActivemineError` into a one-line message on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ActivemineError as exc:
            # the message quotes user text (paths, ids, names): print it as data, never as markup
            err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


@app.callback()
def _root() -> None:
    """Batch active learning: mine the pool samples most worth labeling."""

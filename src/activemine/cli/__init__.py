"""Command-line interface: ``activemine COMMAND``. Commands only parse, call the library and print."""

from activemine.cli import campaign as _campaign  # noqa: F401  (registers the command group)
from activemine.cli import campaign_annotators as _campaign_annotators  # noqa: F401  (registers two campaign commands)
from activemine.cli import clean as _clean  # noqa: F401  (registers the command)
from activemine.cli import experiment as _experiment  # noqa: F401  (registers the command)
from activemine.cli import mine as _mine  # noqa: F401  (registers the command)
from activemine.cli._app import app


def main() -> None:
    """Entry point of the ``activemine`` script."""
    app()


__all__ = ["app", "main"]

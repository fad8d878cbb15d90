"""Progress of long steps: a bar on a terminal, timestamped lines in a log.

Library functions know nothing about displays: they take a
``progress: Callable[[int], None] | None`` callback and call it with the
number of units (rows, runs, labels) each finished piece of work holds. The
CLI and the benchmarks turn that callback into a display here::

    with progress_reporter("scoring pool", total=source.num_rows, unit="rows", quiet=quiet) as bar:
        mine_stream(..., progress=bar.advance)

* On a terminal (the stream is a TTY) it is a transient rich bar.
* Otherwise (a cron job, CI, ``nohup``, a Ray job's log) it writes plain
  lines to the stream, each starting with a local timestamp: one when the
  step starts, at most one every ``interval`` seconds while it runs
  (``ACTIVEMINE_PROGRESS_INTERVAL``, default 5), and one when it ends, with
  its duration.
* ``quiet=True`` writes nothing at all.

Descriptions are data, never markup: a ``[/bold]`` in a file name is printed
as it is. Only the standard library is imported here; rich is imported when
a bar is actually drawn.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressReporter", "log_line", "progress_reporter"]

DEFAULT_INTERVAL_S = 5.0


def _default_interval() -> float:
    raw = os.environ.get("ACTIVEMINE_PROGRESS_INTERVAL")
    if raw is None:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_INTERVAL_S
    return value if value >= 0 else DEFAULT_INTERVAL_S


def _timestamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def log_line(message: str, *, stream: TextIO | None = None, quiet: bool = False) -> None:
    """Write one timestamped line to ``stream`` (stderr by default) unless ``quiet``."""
    if quiet:
        return
    out = sys.stderr if stream is None else stream
    out.write(f"{_timestamp()} {message}\n")
    out.flush()


def _amount(n: float, unit: str) -> str:
    return f"{n:,.0f} {unit}".rstrip()


def _rate(n: float, seconds: float, unit: str) -> str:
    if seconds <= 0 or n <= 0:
        return ""
    per_s = n / seconds
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if per_s >= scale:
            return f", {per_s / scale:.1f}{suffix} {unit}/s"
    return f", {per_s:.1f} {unit}/s"


class ProgressReporter:
    """Reports the progress of one step; use :func:`progress_reporter` to build one.

    ``advance(n)`` (also the object itself, called) adds ``n`` done units and
    may change the description; it can be passed wherever a library function
    takes a ``progress`` callback.
    """

    def __init__(
        self,
        description: str,
        *,
        total: float | None = None,
        unit: str = "rows",
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.title = description  # the step's name, for its first and last lines
        self.description = description
        self.total = total
        self.unit = unit
        self.quiet = quiet
        self.stream = sys.stderr if stream is None else stream
        self.interval = _default_interval() if interval is None else float(interval)
        self.clock = clock
        self.done = 0.0
        self._bar = None
        self._task = None
        self._started = None
        self._last_line = None

    @property
    def is_terminal(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    # -- lifecycle ---------------------------------------------------------------
    def __enter__(self) -> ProgressReporter:
        self._started = self._last_line = self.clock()
        if self.quiet:
            return self
        if self.is_terminal:
            self._start_bar()
        else:
            what = f" ({_amount(self.total, self.unit)})" if self.total is not None else ""
            log_line(f"{self.title}: started{what}", stream=self.stream)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.quiet:
            return
        seconds = self.clock() - self._started
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        # the error's own message follows on stderr; the exception's class name is for code, not users
        state = (
            "done"
            if exc_type is None
            else "interrupted"
            if issubclass(exc_type, KeyboardInterrupt)
            else "stopped by an error"
        )
        amount = f", {_amount(self.done, self.unit)}" if self.done else ""
        log_line(f"{self.title}: {state}{amount} in {seconds:.1f} s", stream=self.stream)

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(file=self.stream, highlight=False)
        self._bar = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(self.unit, markup=False),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.description, total=self.total)

    # -- updates -----------------------------------------------------------------
    def advance(self, n: float = 1, *, description: str | None = None) -> None:
        """Count ``n`` more units done; ``description`` replaces what the bar and the progress lines
        say is going on (the first and last lines keep the step's own name)."""
        self.done += n
        if description is not None:
            self.description = description
        if self.quiet or self._started is None:
            return
        if self._bar is not None:
            self._bar.update(self._task, advance=n, description=self.description)
            return
        now = self.clock()
        if now - self._last_line < self.interval:
            return
        self._last_line = now
        done = f"{self.done:,.0f}/{_amount(self.total, self.unit)}" if self.total else _amount(self.done, self.unit)
        share = f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
        rate = _rate(self.done, now - self._started, self.unit)
        log_line(f"{self.description}: {done}{share}{rate}, {now - self._started:.1f} s", stream=self.stream)

    __call__ = advance


def progress_reporter(
    description: str,
    *,
    total: float | None = None,
    unit: str = "rows",
    quiet: bool = False,
    stream: TextIO | None = None,
    interval: float | None = None,
) -> ProgressReporter:
    """A context manager reporting one step's progress (see the module docstring)."""
    return ProgressReporter(description, total=total, unit=unit, quiet=quiet, stream=stream, interval=interval)

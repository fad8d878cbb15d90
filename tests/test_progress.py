import io
import re

import pytest

from activemine.progress import log_line, progress_reporter

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def reporter(stream, clock, **kw):
    from activemine.progress import ProgressReporter

    return ProgressReporter("scoring pool", stream=stream, clock=clock, **kw)


def test_log_lines_are_timestamped_and_throttled():
    out, clock = io.StringIO(), FakeClock()
    with reporter(out, clock, total=1000, interval=5) as bar:
        for _ in range(10):  # ten updates within one second: no line
            clock.now += 0.1
            bar.advance(10)
        clock.now += 5
        bar.advance(400)
    lines = out.getvalue().splitlines()
    assert all(STAMP.match(line) for line in lines), lines
    assert "started (1,000 rows)" in lines[0]
    assert len(lines) == 3, lines  # start, one throttled update, end
    assert "500/1,000 rows (50%)" in lines[1]
    assert "done, 500 rows in 6.0 s" in lines[2]


def test_end_line_says_when_the_step_failed():
    out, clock = io.StringIO(), FakeClock()
    with pytest.raises(KeyError), reporter(out, clock, unit="runs"):
        raise KeyError("x")
    last = out.getvalue().splitlines()[-1]
    assert "stopped by an error" in last and "KeyError" not in last


def test_quiet_writes_nothing():
    out = io.StringIO()
    with progress_reporter("fit", total=3, quiet=True, stream=out) as bar:
        bar(1)
        bar.advance(2, description="other")
    assert out.getvalue() == ""
    assert bar.done == 3


def test_markup_in_descriptions_is_printed_as_text():
    for stream in (io.StringIO(), Terminal()):
        with progress_reporter("pool [/bold] [red]x", total=2, stream=stream, interval=0) as bar:
            bar.advance(1)
            bar.advance(1)
        assert "pool [/bold] [red]x" in stream.getvalue()


def test_terminal_gets_a_bar_and_a_final_line():
    out = Terminal()
    with progress_reporter("scoring", total=10, stream=out) as bar:
        assert bar._bar is not None
        bar.advance(10)
    assert "scoring: done, 10 rows" in out.getvalue()


def test_interval_from_environment(monkeypatch):
    monkeypatch.setenv("ACTIVEMINE_PROGRESS_INTERVAL", "0")
    out, clock = io.StringIO(), FakeClock()
    with reporter(out, clock) as bar:
        for _ in range(3):
            bar.advance(1)
    assert len(out.getvalue().splitlines()) == 5


def test_log_line():
    out = io.StringIO()
    log_line("hello", stream=out)
    assert STAMP.match(out.getvalue()) and out.getvalue().endswith("hello\n")

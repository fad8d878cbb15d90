"""What every command shares: --version, and errors that read as a sentence."""

import re

from typer.testing import CliRunner

import activemine
from activemine.cli import app

runner = CliRunner()


def test_version_prints_the_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"activemine {activemine.__version__}"


def test_errors_print_the_sentence_without_the_exception_class(tmp_path):
    for args in (
        ["campaign", "status", str(tmp_path / "missing")],
        [
            "mine",
            "--pool",
            str(tmp_path / "u.xlsx"),
            "--labeled",
            str(tmp_path / "l.csv"),
            "--budget",
            "1",
            "--out",
            str(tmp_path / "b.csv"),
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("error: "), result.output
        assert not re.search(r"\b[A-Z][A-Za-z]*Error\b", result.output), result.output

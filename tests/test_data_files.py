"""Atomic writes give an output the mode of any new file (the umask honoured), not the temporary file's 0600."""

import os
import stat

import numpy as np
import pyarrow as pa
import pytest

from activemine.data.files import atomic_path, new_file_mode
from activemine.data.tables import write_table


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("name", ["batch.parquet", "batch.csv"])
def test_written_tables_get_the_mode_of_any_new_file(tmp_path, umask, name):
    (tmp_path / "plain.txt").write_text("x")  # how any other output is created
    write_table(pa.table({"id": np.arange(3)}), tmp_path / name)
    assert _mode(tmp_path / name) == _mode(tmp_path / "plain.txt") == 0o666 & ~umask == new_file_mode()


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_the_mine_command_s_batch_has_the_mode_of_its_other_outputs(tmp_path):
    from typer.testing import CliRunner

    from activemine.cli import app

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    write_table(
        pa.table({"id": np.arange(60), "f0": X[:60, 0], "f1": X[:60, 1], "y": (X[:60, 0] > 0).astype(int)}),
        tmp_path / "L.parquet",
    )
    write_table(pa.table({"id": np.arange(60, 300), "f0": X[60:, 0], "f1": X[60:, 1]}), tmp_path / "U.parquet")
    out = tmp_path / "batch.csv"
    old = os.umask(0o027)
    try:
        result = CliRunner().invoke(
            app,
            [
                "mine",
                "--labeled",
                str(tmp_path / "L.parquet"),
                "--pool",
                str(tmp_path / "U.parquet"),
                "--budget",
                "10",
                "--strategy",
                "random",
                "--out",
                str(out),
                "--quiet",
            ],
        )
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    assert _mode(out) == 0o640

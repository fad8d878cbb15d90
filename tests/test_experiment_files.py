"""Experiments on users' own files: --split-col, --feature-cols, non-numeric columns."""

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from activemine.cli import app
from activemine.data.tables import write_table
from activemine.errors import InputError
from activemine.experiments.runner import load_task

runner = CliRunner()


def user_file(tmp_path, *, split=None, extra=None, n=200):
    rng = np.random.default_rng(0)
    cols = {
        "id": np.arange(n),
        "f0": rng.normal(size=n),
        "f1": rng.normal(size=n),
        "label": np.where(np.arange(n) % 10 == 0, "pos", "neg"),
    }
    if split is not None:
        cols["split"] = split
    cols.update(extra or {})
    path = tmp_path / "data.parquet"
    write_table(pa.table(cols), path)
    return path


def test_split_col_takes_the_files_own_split(tmp_path):
    split = np.where(np.arange(200) < 150, "train", "test")
    task = load_task(str(user_file(tmp_path, split=split)), "binary:pos", split_col="split")
    assert task.y_train.size == 150 and task.y_test.size == 50


def test_without_split_col_a_stratified_75_25_split(tmp_path):
    task = load_task(str(user_file(tmp_path)), "binary:pos")
    assert task.y_test.size == 50 and task.y_test.sum() == 5  # a quarter of each class
    again = load_task(str(user_file(tmp_path)), "binary:pos")
    assert (again.X_test == task.X_test).all()  # seeded


@pytest.mark.parametrize(
    "values, match", [(["train", "valid"], "'valid'"), (["train", None], "None"), (["train", "train"], "both")]
)
def test_split_col_bad_values_are_a_clear_error(tmp_path, values, match):
    split = np.array([values[i % 2] for i in range(200)], dtype=object)
    path = user_file(tmp_path, split=pa.array(split.tolist(), type=pa.string()))
    with pytest.raises(InputError, match=match):
        load_task(str(path), "binary:pos", split_col="split")


def test_split_col_bad_values_exit_2_before_any_fit(tmp_path):
    path = user_file(tmp_path, split=np.array(["train", "dev"] * 100))
    result = runner.invoke(
        app,
        [
            "experiment",
            "--out",
            str(tmp_path / "out"),
            "--dataset",
            str(path),
            "--task",
            "binary:pos",
            "--split-col",
            "split",
            "--labeled-size",
            "20",
            "--budget",
            "5",
        ],
    )
    assert result.exit_code == 2
    assert "'dev'" in result.output and "train" in result.output
    assert not (tmp_path / "out").exists()


def test_non_numeric_columns_are_left_out_and_feature_cols_choose(tmp_path):
    path = user_file(tmp_path, extra={"colour": np.array(["red", "blue"] * 100), "site": np.array(["a"] * 200)})
    (tmp_path / "bare").mkdir()
    bare = load_task(str(user_file(tmp_path / "bare")), "binary:pos")
    assert (load_task(str(path), "binary:pos").X_train == bare.X_train).all()
    task = load_task(str(path), "binary:pos", feature_cols=["f0", "f1"])
    assert task.X_train.shape[1] == 2
    with pytest.raises(InputError, match=r"must be numeric, got \[\('colour', 'string'\)\]"):
        load_task(str(path), "binary:pos", feature_cols=["f0", "colour"])


def test_help_says_how_a_file_is_split():
    result = runner.invoke(app, ["experiment", "--help"], env={"COLUMNS": "200"})
    text = " ".join(result.output.split())
    assert "--split-col" in text and "stratified 75/25" in text and "--n-jobs" in text and "--noise-matrix" in text

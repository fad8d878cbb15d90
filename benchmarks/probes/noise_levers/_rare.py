"""The label-efficiency benchmark's rare set, written once to the temp folder for the probes."""
import tempfile
from pathlib import Path

from label_efficiency import write_rare_dataset


def rare_path() -> Path:
    path = Path(tempfile.gettempdir()) / "activemine-probe-rare.parquet"
    return path if path.exists() else write_rare_dataset(path)

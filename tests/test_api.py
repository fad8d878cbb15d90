import subprocess
import sys

import activemine


def test_all_is_sorted_and_complete():
    assert activemine.__all__ == sorted(activemine.__all__)
    for name in activemine.__all__:
        assert hasattr(activemine, name), name


def test_import_does_not_pull_optional_dependencies():
    code = (
        "import sys, activemine, activemine.cli; "
        "heavy = [m for m in ('ray', 'torch', 'fastapi', 'matplotlib', 'uvicorn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


HEAVY = ("sklearn", "lightgbm", "ray", "matplotlib", "torch", "fastapi")


def _imported_heavy(code: str, *args: str) -> set[str]:
    """Top-level packages among HEAVY that ``python -X importtime -c code`` imports (read from its import log)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return {name for name in names if name.split(".")[0] in HEAVY}


def test_import_and_help_import_no_model_library():
    assert _imported_heavy("import activemine") == set()
    help_code = "import sys; sys.argv = ['activemine', '--help']; from activemine.cli import main; main()"
    assert (
        _imported_heavy(f"import contextlib\nwith contextlib.suppress(SystemExit):\n    exec({help_code!r})") == set()
    )


def test_lazy_names_resolve_to_their_modules():
    from activemine.selection.plan import SelectionPlan
    from activemine.selection.strategies import make_strategy

    assert activemine.SelectionPlan is SelectionPlan
    assert activemine.make_strategy is make_strategy
    assert "mine" in dir(activemine)
    try:
        activemine.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("unknown names must raise AttributeError")


def test_precomputed_probability_mining_imports_no_model_library(tmp_path):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = np.random.default_rng(0).dirichlet([1, 1], 500)
    pq.write_table(
        pa.table(
            {"id": [f"s{i}" for i in range(500)], "p0": p[:, 0], "p1": p[:, 1], "w0": p[::-1, 0], "w1": p[::-1, 1]}
        ),
        tmp_path / "U.parquet",
    )
    args = [
        "mine",
        "--pool",
        str(tmp_path / "U.parquet"),
        "--proba-cols",
        "p0,p1",
        "--weak-proba-cols",
        "w0,w1",
        "--budget",
        "50",
        "--out",
        str(tmp_path / "b.parquet"),
        "--quiet",
    ]
    code = (
        "import sys\nfrom activemine.cli import app\n"
        f"try:\n    app({args!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    )
    assert _imported_heavy(code) == set()
    assert pq.read_table(tmp_path / "b.parquet").num_rows == 50

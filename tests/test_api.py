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

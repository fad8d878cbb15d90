"""Atomic file writes shared by every output: a temporary file in the target's folder, then a rename.

The temporary file is made with :func:`tempfile.mkstemp`, which creates it
readable by its owner only (0600); before the rename it is given the mode any
other new file gets (``0666`` less the process's umask), so a written batch,
export or report is as readable as the rest of a user's outputs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "new_file_mode"]


def new_file_mode() -> int:
    """The mode a newly created file gets under the current umask (``0o666 & ~umask``)."""
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path, *, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it becomes ``path`` (mode as a new file), else it goes.

    ``path``'s folder is created when missing. Readers see the old file or the
    whole new one, never a part.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise

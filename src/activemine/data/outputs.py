"""Where an output may go: never onto an input, a campaign's store or its data.

Every command that writes a file a user names (``--out``) asks
:func:`check_output` first, before any work. The path is resolved (symlinks,
``..``, relative paths) and compared with the files the command reads and with
the files of any campaign folder it lies in: the SQLite store and its
``-wal``/``-shm``/``-journal`` files, and everything under the campaign's
``data/`` folder (the pool's copied files and the labeled set L). A campaign's
own commands also pass its recorded pool files, which lie outside the folder
when the campaign was made with ``--no-copy``. An existing file reached by a
hard link counts as the same file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from activemine.errors import InputError

__all__ = ["campaign_files", "check_output", "check_suffix"]

DB_NAME = "campaign.db"  # the name CampaignStore gives its database (kept here so this module imports nothing)
_DB_SIDE_FILES = {
    "": "the campaign's store",
    "-wal": "the campaign store's write-ahead log",
    "-shm": "the campaign store's shared-memory index",
    "-journal": "the campaign store's journal",
}


def _resolve(path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve(strict=False)


def campaign_files(folder) -> dict[Path, str]:
    """The files of the campaign folder ``folder`` an output must never replace, resolved -> what each is."""
    folder = _resolve(folder)
    out = {folder / f"{DB_NAME}{side}": what for side, what in _DB_SIDE_FILES.items()}
    out[folder / "data"] = "the campaign's data folder (its pool and labeled set)"
    return out


def _enclosing_campaigns(path: Path) -> Iterable[Path]:
    for parent in path.parents:
        if (parent / DB_NAME).is_file():
            yield parent


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out, *, protected: Mapping[object, str] | None = None, option: str = "--out") -> Path:
    """Raise :class:`InputError` before any work if writing ``out`` would replace something that must stay.

    ``protected`` maps paths (files or folders; a folder protects everything
    under it) to what they are, e.g. ``{pool: "the pool given by --pool"}``.
    Campaign folders enclosing ``out`` are protected without being named.
    Returns ``out`` resolved.
    """
    target = _resolve(out)
    guarded: dict[Path, str] = {}
    for path, what in (protected or {}).items():
        guarded[_resolve(path)] = what
    for folder in _enclosing_campaigns(target):
        guarded.update(campaign_files(folder))
    # the file itself first (the pool file, L), then the folder it lies in, so the message names what it is
    hits = [(p, w) for p, w in guarded.items() if target == p or _same_file(target, p)]
    hits += [(p, w) for p, w in guarded.items() if p in target.parents]
    for path, what in hits[:1]:
        shown = f"{str(out)!r}" + (f" (that is {str(target)!r})" if str(target) != str(out) else "")
        where = "" if path == target else f" ({str(path)!r})"
        raise InputError(
            f"{option} {shown} would overwrite {what}{where}; nothing was written. "
            "Choose a path outside the campaign's store and data and away from this command's inputs"
        )
    if target.is_dir():
        raise InputError(f"{option} {str(out)!r} is a folder; give a file name")
    return target


def check_suffix(out, fmt: str, suffixes: Mapping[str, tuple[str, ...]], *, option: str = "--out") -> None:
    """Raise :class:`InputError` unless ``out`` ends in one of ``suffixes[fmt]`` (``--format`` and the name agree)."""
    wanted = suffixes[fmt]
    if Path(out).suffix.lower() not in wanted:
        raise InputError(
            f"{option} {str(out)!r} does not end in {' or '.join(wanted)}, the suffix of --format {fmt}; "
            f"name the file for its format"
        )

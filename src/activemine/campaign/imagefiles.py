"""Serving an image campaign's pool files to the labeling page, without letting a request reach other files.

The page asks for a sample by id; the id is looked up in the campaign's store
and its pool row, and the image is what that row holds: the bytes
themselves, or a path that must resolve (links followed) to a file inside the
pool folder recorded at init. A path that leaves the folder (``..``, an
absolute path elsewhere, a link out of it) is refused, whatever the pool
table says. The content type comes from the file's own header (Pillow), not
from its name.
"""

from __future__ import annotations

import io
from pathlib import Path

from activemine.errors import InputError

__all__ = ["MAX_IMAGE_BYTES", "pool_image"]

#: The largest image file served (bytes); a labeling page has no use for larger ones.
MAX_IMAGE_BYTES = 32 << 20


def _inside(root: Path, value: str) -> Path:
    """``value`` (a relative path of the pool table) resolved under ``root``; anything else is refused."""
    root = root.resolve()
    path = (root / value).resolve()
    if not path.is_relative_to(root):
        raise InputError(f"the image path {value!r} leaves the pool folder")
    return path


def pool_image(value, root) -> tuple[bytes, str]:
    """``(body, content type)`` of a pool row's image ``value`` (a path under ``root``, or bytes).

    Raises :class:`~activemine.errors.InputError` for a path outside the
    folder, a missing or oversized file, or content that is not an image.
    """
    from PIL import Image, UnidentifiedImageError

    if isinstance(value, (bytes, bytearray)):
        body = bytes(value)
    else:
        path = _inside(Path(root), str(value))
        if not path.is_file():
            raise InputError(f"the image file {str(value)!r} is missing")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise InputError(f"the image file {str(value)!r} is larger than {MAX_IMAGE_BYTES} bytes")
        body = path.read_bytes()
    if len(body) > MAX_IMAGE_BYTES:
        raise InputError(f"the image is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        with Image.open(io.BytesIO(body)) as im:
            media = Image.MIME.get(im.format or "")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"the image {str(value)[:200]!r} cannot be read: {exc}") from None
    if media is None:
        raise InputError(f"the image {str(value)[:200]!r} has no known content type")
    return body, media

"""Small WebP thumbnails as data URIs, so report.html carries its images in one file."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

THUMB_PX = 256
WEBP_QUALITY = 70


def thumbnail_bytes(path: Path, size: int = THUMB_PX) -> bytes | None:
    """`path` shrunk to fit size×size, as WebP; None when the file is missing or not an image."""
    try:
        with Image.open(path) as im:
            im.thumbnail((size, size))
            out = io.BytesIO()
            im.convert("RGBA" if im.mode in ("RGBA", "LA", "P") else "RGB").save(
                out, "WEBP", quality=WEBP_QUALITY, method=4
            )
    except (FileNotFoundError, UnidentifiedImageError, OSError):
        return None
    return out.getvalue()


def thumbnail_data_uri(path: Path, size: int = THUMB_PX) -> str | None:
    data = thumbnail_bytes(path, size)
    return None if data is None else "data:image/webp;base64," + base64.b64encode(data).decode("ascii")

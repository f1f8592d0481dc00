"""Decode-check image bytes before they are stored.

A provider may answer 200 with an HTML error page, a truncated PNG or a
decompression bomb; none of those may become an `ok` record.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from bench.errors import MalformedResponseError

# 64 megapixels: well above any hosted model's output (4K is ~8.3 MP), far below a bomb.
MAX_IMAGE_PIXELS = 64_000_000

_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tiff"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    extension: str
    width: int
    height: int


def inspect_image(data: bytes) -> ImageInfo:
    """Fully decode `data`; raise MalformedResponseError if it is not a usable image."""
    if not data:
        raise MalformedResponseError("image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_IMAGE_PIXELS:
                    raise MalformedResponseError(
                        f"image is {img.width}x{img.height}, over the {MAX_IMAGE_PIXELS} pixel limit"
                    )
                fmt = img.format or "UNKNOWN"
                img.load()  # header parsing alone misses truncated bodies
                width, height = img.size
    except MalformedResponseError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        head = data[:32]
        raise MalformedResponseError(f"image does not decode ({exc}); first bytes: {head!r}") from exc
    return ImageInfo(format=fmt, extension=_EXTENSIONS.get(fmt, fmt.lower()), width=width, height=height)


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    info: ImageInfo
    sha256: str


def check_images(datas: list[bytes]) -> list[CheckedImage]:
    """Decode-check and hash each image; raises MalformedResponseError for one that is unusable."""
    return [CheckedImage(data, inspect_image(data), hashlib.sha256(data).hexdigest()) for data in datas]

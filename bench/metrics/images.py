"""Image files for scoring: decoded once, shared by CLIP and Inception."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def bytes_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def text_key(prompt: str) -> str:
    """Cache key of a prompt's text embedding (prefixed so it can never collide with an image key)."""
    return "text:" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def decode_rgb(path: Path) -> Image.Image:
    """Decode fully and convert to RGB (drops alpha like torch-fidelity's and open_clip's readers)."""
    with Image.open(path) as img:
        img.load()
        return img.convert("RGB")


def decoded_chunks(
    items: Sequence[tuple[str, Path]], chunk: int = 32
) -> Iterator[list[tuple[str, Image.Image]]]:
    """(key, image) in chunks, so a 10k-image run never holds every decoded image at once.

    The next chunk is decoded in a background thread while the caller's models work on this
    one (Pillow releases the GIL while it decodes): on a GPU the decoding would otherwise leave
    the device idle. At most two chunks are held at once.
    """
    if not items:
        return

    def decode(start: int) -> list[tuple[str, Image.Image]]:
        return [(key, decode_rgb(path)) for key, path in items[start : start + chunk]]

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-decode") as pool:
        pending = pool.submit(decode, 0)
        for start in range(0, len(items), chunk):
            current = pending.result()
            if start + chunk < len(items):
                pending = pool.submit(decode, start + chunk)
            yield current


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted (not recursive: torch-fidelity's default)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)

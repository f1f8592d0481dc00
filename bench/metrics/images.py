"""Image files for scoring: decoded once, shared by CLIP and Inception."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
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
    items: Sequence[tuple[str, Path]], chunk: int = 64
) -> Iterator[list[tuple[str, Image.Image]]]:
    """(key, image) in chunks, so a 10k-image run never holds every decoded image at once."""
    for start in range(0, len(items), chunk):
        yield [(key, decode_rgb(path)) for key, path in items[start : start + chunk]]


def list_image_files(folder: Path) -> list[Path]:
    """Image files directly in `folder`, sorted (not recursive: torch-fidelity's default)."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)

"""The chat emulator's "vision": a crude stand-in for a VLM that measures the image it is sent.

It understands the yes/no questions t2i-bench's judge asks (bench/judge/questions.py
writes them in a few fixed forms) and answers them by measuring pixels:

- colour: the share of pixels nearest to the named colour (after a median filter that
  removes the local generator's refinement noise);
- count: the number of connected blobs of the object's colour;
- presence: whether the object's colour covers a minimum share of the image;
- position: the centroids of two objects' colour masks.

It is not a VLM and never pretends to be one (its answers say so in `model`). What it
guarantees is that its answers follow the picture: a colour-blind generator cannot make
it say "yes, the apple is red".
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from bench.judge.questions import NUMBER_WORDS, article, plural
from bench.providers.local_scene import COLORS, COUNT_WORDS, OBJECTS, PAPER, named_words, parse_prompt

MIN_SHARE = 0.004  # a colour covering less than this share of the image is "not there"
MIN_BLOB_SHARE = 0.0015  # blobs smaller than this share of the image are noise
BACKGROUND_SHARE = 0.2  # a colour on more than this share of the border is backdrop or surface
MAX_COLOR_DISTANCE = 80.0  # RGB distance beyond which a pixel belongs to no named colour
MEASURE_SIDE = 96  # images are measured at this size: enough for shapes, cheap on 2 cores
# The local generator's paper backdrop is what a viewer calls white.
_PALETTE_NAMES = [*COLORS, "white"]
_PALETTE = np.array([*COLORS.values(), PAPER], dtype=np.float32)
_POSITIONS = ("left of", "right of", "above", "below")

U8 = npt.NDArray[np.uint8]
Mask = npt.NDArray[np.bool_]
_MEASURES: dict[str, ImageMeasure] = {}


@dataclass(frozen=True)
class Measured:
    answer: bool | None  # None: the question is not of a form this emulator can measure
    evidence: str


def measure_of(png: bytes) -> ImageMeasure:
    """The measure of an image, reused across the several questions asked about it."""
    import hashlib

    key = hashlib.sha256(png).hexdigest()
    if key not in _MEASURES:
        if len(_MEASURES) >= 256:
            _MEASURES.pop(next(iter(_MEASURES)))
        _MEASURES[key] = ImageMeasure(png)
    return _MEASURES[key]


class ImageMeasure:
    """Colour masks of one image, computed once and shared by every question about it."""

    def __init__(self, png: bytes) -> None:
        image = Image.open(io.BytesIO(png)).convert("RGB")
        image.thumbnail((MEASURE_SIDE, MEASURE_SIDE))
        pixels = np.asarray(image.filter(ImageFilter.MedianFilter(3)), dtype=np.float32)
        diff = pixels[:, :, None, :] - _PALETTE[None, None, :, :]
        dist2 = np.einsum("hwkc,hwkc->hwk", diff, diff)
        nearest = dist2.argmin(-1)
        self._labels = np.where(dist2.min(-1) <= MAX_COLOR_DISTANCE**2, nearest, -1)
        self.size = self._labels.size

    def mask(self, color: str) -> Mask:
        wanted = [i for i, name in enumerate(_PALETTE_NAMES) if name == color]
        mask: Mask = np.isin(self._labels, wanted)
        return mask

    def foreground_counts(self) -> dict[str, int]:
        """Blobs per colour, except the backdrop's and the surface's (the colours along the border)."""
        lab = self._labels
        border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
        counts = np.bincount(border[border >= 0], minlength=len(_PALETTE_NAMES))
        background = {_PALETTE_NAMES[i] for i in np.flatnonzero(counts > BACKGROUND_SHARE * border.size)}
        found = {
            name: len(self.blobs(name)) for name in dict.fromkeys(_PALETTE_NAMES) if name not in background
        }
        return {name: n for name, n in found.items() if n}

    def share(self, color: str) -> float:
        return float(self.mask(color).mean())

    def blobs(self, color: str) -> list[tuple[float, float]]:
        """Centroids (x, y in [0, 1]) of the connected blobs of `color` big enough to be objects."""
        from scipy import ndimage

        labels, n = ndimage.label(self.mask(color))
        if n == 0:
            return []
        sizes = np.bincount(labels.ravel())[1:]
        keep = [i + 1 for i, s in enumerate(sizes) if s >= MIN_BLOB_SHARE * self.size]
        h, w = labels.shape
        centres = ndimage.center_of_mass(np.ones_like(labels), labels, keep) if keep else []
        return [(float(cx) / w, float(cy) / h) for cy, cx in centres]


def _count_in(text: str) -> int | None:
    match = re.search(r"exactly (\w+)", text)
    if not match:
        return None
    word = match.group(1)
    return int(word) if word.isdigit() else COUNT_WORDS.get(word)


def _object_color(noun: str, colors: list[str]) -> str:
    return colors[0] if colors else OBJECTS[noun]


def _ordered_words(text: str) -> tuple[list[str], list[str]]:
    """(object nouns, colours) named in `text`, in order of appearance, canonical spellings."""
    nouns: list[str] = []
    colors: list[str] = []
    for token in re.findall(r"[a-z]+", text.lower()):
        token_nouns, token_colors = named_words(token)
        nouns += [n for n in sorted(token_nouns) if n not in nouns]
        colors += [c for c in sorted(token_colors) if c not in colors]
    return nouns, colors


def answer_question(measure: ImageMeasure, question: str) -> Measured:
    """Answer one of the judge's yes/no question forms by measuring the image."""
    q = question.lower()
    nouns, colors = _ordered_words(q)
    position = next((p for p in _POSITIONS if p in q), None)
    if position and len(nouns) >= 2:
        a, b = (measure.blobs(_object_color(n, [])) for n in nouns[:2])
        if not a or not b:
            return Measured(False, f"{nouns[0] if not a else nouns[1]} not found")
        ax, ay = np.mean(a, axis=0)
        bx, by = np.mean(b, axis=0)
        holds = {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[position]
        return Measured(bool(holds), f"centroids ({ax:.2f},{ay:.2f}) vs ({bx:.2f},{by:.2f})")
    count = _count_in(q)
    if count is not None and nouns:
        if colors:
            found = len(measure.blobs(colors[0]))
            return Measured(found == count, f"{found} {colors[0]} blob(s)")
        # No colour named: some one colour must show exactly that many blobs.
        per_color = measure.foreground_counts()
        return Measured(count in per_color.values(), f"blobs per colour: {per_color}")
    if colors:
        color = colors[0]
        share = measure.share(color)
        return Measured(share >= MIN_SHARE, f"{100 * share:.1f}% {color} pixels")
    if nouns:  # presence: it cannot tell shapes apart, only that something stands on the backdrop
        found = sum(measure.foreground_counts().values())
        return Measured(found > 0, f"{found} foreground blob(s)")
    return Measured(None, "no colour or object this emulator can measure")


def questions_for_prompt(prompt: str) -> list[str]:
    """DSG-style atomic questions for a free prompt, as the emulator 'writes' them: objects it knows."""
    scene = parse_prompt(prompt)
    out: list[str] = []
    for group in scene.groups:
        if group.count == 1:
            out.append(f"Is there {article(group.noun)} {group.noun} in the image?")
            if group.color:
                out.append(f"Is the {group.noun} {group.color}?")
        else:
            word = NUMBER_WORDS.get(group.count, str(group.count))
            out.append(f"Are there exactly {word} {plural(group.noun)} in the image?")
            if group.color:
                out.append(f"Are the {plural(group.noun)} {group.color}?")
    if scene.surface is not None and scene.surface.color:
        out.append(f"Is the {scene.surface.kind} {scene.surface.color}?")
    return out

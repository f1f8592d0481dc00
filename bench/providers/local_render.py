"""An offline, deterministic stand-in for a text-to-image model: it draws what the prompt names.

The local provider exists so that a benchmark run needs no keys and no network,
yet still produces images whose quality, latency and prompt-following answer to
the parameters the way a real model's do:

- the prompt is parsed into groups of objects ("two red apples"), each drawn
  with a distinct shape, on a surface or background ("on a blue table");
- the seed fixes the layout (cells, sizes, jitter) and the starting noise;
- steps are refinement passes from seeded noise towards the clean drawing, each
  doing O(pixels) numpy work, so few steps leave visible noise and time grows
  with steps x pixels;
- guidance is strictness: below STRICT_GUIDANCE the drawing drifts from the
  prompt (wrong colour, off-by-one count, missing group) with a seeded
  probability that falls monotonically as guidance rises;
- variants trade speed for detail (see VARIANTS): how the clean drawing is made,
  and how much each refinement pass costs.

Everything here is a pure function of its arguments: same inputs, same bytes.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]
FloatArray = npt.NDArray[np.float32]

# ---- vocabulary ------------------------------------------------------------------------

COLORS: dict[str, Color] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (245, 215, 30),
    "green": (40, 160, 60),
    "blue": (35, 75, 215),
    "purple": (130, 50, 170),
    "pink": (245, 130, 180),
    "brown": (125, 80, 40),
    "black": (25, 25, 25),
    "white": (250, 250, 250),
    "gray": (128, 128, 128),
    "cyan": (20, 190, 210),
    "magenta": (215, 40, 170),
}
_COLOR_ALIASES = {"grey": "gray", "violet": "purple", "turquoise": "cyan"}

COUNT_WORDS: dict[str, int] = {
    "a": 1,
    "an": 1,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
}
MAX_COUNT = 10
# A plural with no count word ("apples on a table") means more than one.
PLURAL_DEFAULT_COUNT = 2

# Object noun -> the colour it has when the prompt names none.
OBJECTS: dict[str, str] = {
    "apple": "red",
    "ball": "orange",
    "cube": "blue",
    "car": "red",
    "tree": "green",
    "house": "yellow",
    "cat": "gray",
    "dog": "brown",
    "cup": "white",
    "star": "yellow",
    "flower": "pink",
    "bird": "blue",
    "book": "green",
    "chair": "brown",
    "clock": "black",
    "banana": "yellow",
    "bottle": "green",
    "umbrella": "purple",
    "fish": "orange",
    "heart": "red",
    "circle": "cyan",
    "square": "magenta",
    "triangle": "green",
}
_OBJECT_SYNONYMS = {"box": "cube", "sphere": "ball", "mug": "cup", "kitten": "cat", "puppy": "dog"}

# Surface noun -> (colour when the prompt names none, fraction of the height it covers from the bottom).
SURFACES: dict[str, tuple[str, float]] = {
    "background": ("white", 1.0),
    "backdrop": ("white", 1.0),
    "wall": ("white", 1.0),
    "sky": ("cyan", 1.0),
    "table": ("brown", 0.4),
    "desk": ("brown", 0.4),
    "floor": ("gray", 0.4),
    "ground": ("brown", 0.45),
    "field": ("green", 0.55),
    "grass": ("green", 0.55),
    "meadow": ("green", 0.55),
}
PAPER: Color = (236, 233, 225)  # the backdrop when the prompt names no background


def _noun_forms() -> dict[str, tuple[str, bool]]:
    """Every accepted spelling -> (canonical noun, is plural). Regular plurals only: -s and -es."""
    forms: dict[str, tuple[str, bool]] = {}
    for word, canonical in [*((n, n) for n in OBJECTS), *_OBJECT_SYNONYMS.items()]:
        forms[word + "es"] = (canonical, True)
        forms[word + "s"] = (canonical, True)
    forms["puppies"] = ("dog", True)
    forms.update({word: (canonical, False) for word, canonical in _OBJECT_SYNONYMS.items()})
    forms.update({noun: (noun, False) for noun in OBJECTS})  # a singular wins over a look-alike plural form
    return forms


_NOUN_FORMS = _noun_forms()
_TOKEN = re.compile(r"[a-z]+|\d+")


# ---- parsing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectGroup:
    """`count` objects of one kind; `color` None means the object's natural colour (OBJECTS)."""

    count: int
    noun: str
    color: str | None = None

    @property
    def resolved_color(self) -> str:
        return self.color or OBJECTS[self.noun]


@dataclass(frozen=True)
class Surface:
    kind: str
    color: str | None = None

    @property
    def resolved_color(self) -> str:
        return self.color or SURFACES[self.kind][0]

    @property
    def coverage(self) -> float:
        return SURFACES[self.kind][1]


@dataclass(frozen=True)
class Scene:
    groups: tuple[ObjectGroup, ...] = ()
    surface: Surface | None = None


def _count_of(token: str) -> int | None:
    if token.isdigit():
        value = int(token)
        return value if 1 <= value <= MAX_COUNT else None
    return COUNT_WORDS.get(token)


def named_words(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(object nouns, colours) named anywhere in `text`, canonical spellings: what a negative prompt bans."""
    tokens = _TOKEN.findall(text.lower())
    nouns = frozenset(_NOUN_FORMS[t][0] for t in tokens if t in _NOUN_FORMS)
    colors = frozenset(_COLOR_ALIASES.get(t, t) for t in tokens if t in COLORS or t in _COLOR_ALIASES)
    return nouns, colors


def parse_prompt(prompt: str) -> Scene:
    """Read counts, colours, objects and one surface from free text; unknown words are ignored.

    A count and a colour apply to the next object (or surface) noun and are then
    forgotten, so "two red apples and a yellow banana" gives two groups. A colour
    followed by a surface noun ("on a blue table", "blue background") colours the
    surface instead; the first surface named wins.
    """
    groups: list[ObjectGroup] = []
    surface: Surface | None = None
    count: int | None = None
    color: str | None = None
    for token in _TOKEN.findall(prompt.lower()):
        token_count = _count_of(token)
        if token_count is not None:
            count = token_count
        elif token in COLORS or token in _COLOR_ALIASES:
            color = _COLOR_ALIASES.get(token, token)
        elif token in _NOUN_FORMS:
            noun, plural = _NOUN_FORMS[token]
            default = PLURAL_DEFAULT_COUNT if plural else 1
            groups.append(ObjectGroup(count or default, noun, color))
            count, color = None, None
        elif token in SURFACES:
            surface = surface or Surface(token, color)
            count, color = None, None
    return Scene(tuple(groups), surface)


# ---- interpretation: negative prompt, guidance drift, abstract fallback ----------------

STRICT_GUIDANCE = 3.0  # at or above this, the drawing follows the prompt exactly
MAX_DRIFT = 0.6  # drift probability per group and per kind of mistake at guidance 0


def drift_probability(guidance: float) -> float:
    """Chance that one group's colour (or count) comes out wrong: 0.6 at 0, falling linearly to 0 at 3.

    Non-increasing in guidance by construction. Missing a whole group has half this chance.
    """
    return MAX_DRIFT * min(max((STRICT_GUIDANCE - guidance) / STRICT_GUIDANCE, 0.0), 1.0)


def _allowed_colors(banned: frozenset[str]) -> list[str]:
    allowed = [c for c in COLORS if c not in banned]
    return allowed or ["gray"]


def _avoid(color: str, banned: frozenset[str]) -> str:
    """`color` if allowed, else the next allowed palette colour (stable: the output stays deterministic)."""
    if color not in banned:
        return color
    names = list(COLORS)
    start = names.index(color)
    for step in range(1, len(names)):
        candidate = names[(start + step) % len(names)]
        if candidate not in banned:
            return candidate
    return "gray"


def _drift_group(
    group: ObjectGroup, p: float, rng: np.random.Generator, banned: frozenset[str]
) -> ObjectGroup:
    # Every random number is drawn whatever p is: the same seed then makes the same
    # mistakes at every guidance below the threshold, and a higher guidance makes a
    # subset of them, which is what keeps prompt-following monotone in guidance.
    u_color, u_count, u_drop = rng.random(3)
    # Off by one either way, but never down to none: a missing group is u_drop's job.
    off_by = 1 if rng.random() < 0.5 or group.count == 1 else -1
    others = [c for c in _allowed_colors(banned) if c != group.resolved_color] or ["gray"]
    wrong_color = others[int(rng.integers(len(others)))]
    color = wrong_color if u_color < p else group.resolved_color
    count = group.count + off_by if u_count < p else group.count
    return ObjectGroup(0 if u_drop < p / 2 else count, group.noun, _avoid(color, banned))


def _abstract_scene(prompt: str) -> Scene:
    """Circles, squares and triangles picked from a hash of the prompt, for prompts naming no object."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    shapes = ["circle", "square", "triangle"]
    colors = [c for c in COLORS if c not in ("white", "gray", "black")]  # visible on the paper backdrop
    groups = tuple(
        ObjectGroup(
            int(rng.integers(1, 4)), shapes[int(rng.integers(3))], colors[int(rng.integers(len(colors)))]
        )
        for _ in range(int(rng.integers(2, 4)))
    )
    return Scene(groups)


def interpret(prompt: str, *, seed: int, guidance: float, negative_prompt: str | None = None) -> Scene:
    """The scene that is actually drawn: parsed, minus the negative prompt, drifted by low guidance.

    Returned groups have resolved colours (never None). Objects named in the
    negative prompt are dropped; colours named there are replaced by the next
    palette colour (the object stays, its colour does not).
    """
    scene = parse_prompt(prompt)
    surface = scene.surface
    if not scene.groups:
        scene = Scene(_abstract_scene(prompt).groups, surface)
    banned_nouns, banned_colors = named_words(negative_prompt or "")
    rng = np.random.default_rng([seed, 2])
    p = drift_probability(guidance)
    groups = [_drift_group(g, p, rng, banned_colors) for g in scene.groups if g.noun not in banned_nouns]
    if surface is not None:
        surface = replace(surface, color=_avoid(surface.resolved_color, banned_colors))
    return Scene(tuple(g for g in groups if g.count > 0), surface)


# ---- layout ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    noun: str
    color: str
    box: Box  # in unit coordinates (0..1 of width and height)


def layout(scene: Scene, *, seed: int, aspect: float) -> tuple[Placement, ...]:
    """One cell per object in a grid shaped to the image, cells and jitter chosen by the seed.

    Objects stay inside their own cell, so they never overlap: counts stay countable.
    """
    items = [(g.noun, g.resolved_color) for g in scene.groups for _ in range(g.count)]
    if not items:
        return ()
    cols = max(1, math.ceil(math.sqrt(len(items) * aspect)))
    rows = math.ceil(len(items) / cols)
    rng = np.random.default_rng([seed, 1])
    cells = rng.permutation(rows * cols)[: len(items)]
    cell_w, cell_h = 1.0 / cols, 1.0 / rows
    placements = []
    for (noun, color), cell in zip(items, cells, strict=True):
        side = rng.uniform(0.55, 0.85) * min(cell_w * aspect, cell_h)  # square in pixels
        w, h = side / aspect, side
        cx = (cell % cols + 0.5) * cell_w + rng.uniform(-1, 1) * (cell_w - w) / 2
        cy = (cell // cols + 0.5) * cell_h + rng.uniform(-1, 1) * (cell_h - h) / 2
        placements.append(Placement(noun, color, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)))
    return tuple(placements)


# ---- drawing ---------------------------------------------------------------------------


def _mix(color: Color, other: Color, t: float) -> Color:
    r, g, b = (round(a + (o - a) * t) for a, o in zip(color, other, strict=True))
    return (r, g, b)


def lighter(color: Color) -> Color:
    return _mix(color, (255, 255, 255), 0.35)


def darker(color: Color) -> Color:
    return _mix(color, (0, 0, 0), 0.4)


def _gray(color: Color) -> Color:
    luma = round(0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2])
    return (luma, luma, luma)


class Pen:
    """ImageDraw primitives in fractions of an object's box, with the variant's style applied.

    Shapes are written once in unit coordinates; the pen maps them to pixels, adds
    outlines for the quality variant and turns every colour gray for nocolor.
    """

    def __init__(self, draw: ImageDraw.ImageDraw, box: Box, *, outline: bool, gray: bool) -> None:
        self.draw, self.box, self.gray = draw, box, gray
        size = min(box[2] - box[0], box[3] - box[1])
        self.width = max(1, round(size * 0.03)) if outline else 0

    def color(self, color: Color | str) -> Color:
        rgb = COLORS[color] if isinstance(color, str) else color
        return _gray(rgb) if self.gray else rgb

    def _xy(self, fx: float, fy: float) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + fx * (x1 - x0), y0 + fy * (y1 - y0))

    def _rect(self, f: Box) -> Box:
        (a, b), (c, d) = self._xy(f[0], f[1]), self._xy(f[2], f[3])
        return (a, b, c, d)

    def _style(self, color: Color | str) -> tuple[Color, Color | None]:
        fill = self.color(color)
        return fill, (darker(fill) if self.width else None)

    def shadow(self) -> None:
        """A contact shadow under the object, so it sits on the surface rather than floating."""
        self.draw.ellipse(self._rect((0.1, 0.9, 0.9, 1.0)), fill=self.color((90, 85, 80)))

    def ellipse(self, f: Box, color: Color | str) -> None:
        fill, outline = self._style(color)
        self.draw.ellipse(self._rect(f), fill=fill, outline=outline, width=self.width)

    def rect(self, f: Box, color: Color | str) -> None:
        fill, outline = self._style(color)
        self.draw.rectangle(self._rect(f), fill=fill, outline=outline, width=self.width)

    def polygon(self, points: Sequence[tuple[float, float]], color: Color | str) -> None:
        fill, outline = self._style(color)
        self.draw.polygon([self._xy(x, y) for x, y in points], fill=fill, outline=outline, width=self.width)

    def pieslice(self, f: Box, start: float, end: float, color: Color | str) -> None:
        fill, outline = self._style(color)
        self.draw.pieslice(self._rect(f), start, end, fill=fill, outline=outline, width=self.width)

    def line(self, points: Sequence[tuple[float, float]], color: Color | str, thickness: float) -> None:
        width = max(1, round(thickness * (self.box[2] - self.box[0])))
        self.draw.line([self._xy(x, y) for x, y in points], fill=self.color(color), width=width)


def _ring(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, n: int = 12
) -> Iterator[tuple[float, float]]:
    for i in range(n + 1):
        angle = math.radians(start + (end - start) * i / n)
        yield (cx + rx * math.cos(angle), cy + ry * math.sin(angle))


def _apple(pen: Pen, c: Color) -> None:
    pen.ellipse((0.1, 0.2, 0.9, 0.95), c)
    pen.rect((0.46, 0.04, 0.54, 0.25), "brown")
    pen.ellipse((0.54, 0.06, 0.78, 0.2), "green")


def _ball(pen: Pen, c: Color) -> None:
    pen.ellipse((0.1, 0.1, 0.9, 0.9), c)


def _cube(pen: Pen, c: Color) -> None:
    pen.rect((0.1, 0.3, 0.7, 0.9), c)
    pen.polygon([(0.1, 0.3), (0.3, 0.1), (0.9, 0.1), (0.7, 0.3)], lighter(c))
    pen.polygon([(0.7, 0.3), (0.9, 0.1), (0.9, 0.7), (0.7, 0.9)], darker(c))


def _car(pen: Pen, c: Color) -> None:
    pen.polygon([(0.25, 0.46), (0.35, 0.22), (0.68, 0.22), (0.8, 0.46)], lighter(c))
    pen.rect((0.05, 0.45, 0.95, 0.75), c)
    pen.ellipse((0.14, 0.62, 0.36, 0.84), "black")
    pen.ellipse((0.64, 0.62, 0.86, 0.84), "black")


def _tree(pen: Pen, c: Color) -> None:
    pen.rect((0.42, 0.55, 0.58, 0.95), "brown")
    pen.ellipse((0.1, 0.05, 0.9, 0.7), c)


def _house(pen: Pen, c: Color) -> None:
    pen.rect((0.15, 0.45, 0.85, 0.95), c)
    pen.polygon([(0.05, 0.48), (0.5, 0.08), (0.95, 0.48)], darker(c))
    pen.rect((0.42, 0.68, 0.58, 0.95), "brown")


def _cat(pen: Pen, c: Color) -> None:
    pen.polygon([(0.16, 0.5), (0.2, 0.05), (0.48, 0.3)], c)
    pen.polygon([(0.84, 0.5), (0.8, 0.05), (0.52, 0.3)], c)
    pen.ellipse((0.15, 0.25, 0.85, 0.9), c)
    pen.ellipse((0.32, 0.48, 0.42, 0.58), "black")
    pen.ellipse((0.58, 0.48, 0.68, 0.58), "black")


def _dog(pen: Pen, c: Color) -> None:
    pen.ellipse((0.2, 0.15, 0.8, 0.85), c)
    pen.ellipse((0.05, 0.2, 0.3, 0.7), darker(c))
    pen.ellipse((0.7, 0.2, 0.95, 0.7), darker(c))
    pen.ellipse((0.43, 0.55, 0.57, 0.67), "black")


def _cup(pen: Pen, c: Color) -> None:
    pen.line(list(_ring(0.68, 0.55, 0.2, 0.17, -90, 90)), c, 0.07)
    pen.rect((0.15, 0.25, 0.7, 0.9), c)


def _star(pen: Pen, c: Color) -> None:
    points = [
        (
            0.5 + (0.45 if i % 2 == 0 else 0.19) * math.sin(i * math.pi / 5),
            0.53 - (0.45 if i % 2 == 0 else 0.19) * math.cos(i * math.pi / 5),
        )
        for i in range(10)
    ]
    pen.polygon(points, c)


def _flower(pen: Pen, c: Color) -> None:
    pen.line([(0.5, 0.45), (0.5, 0.98)], "green", 0.06)
    for px, py in _ring(0.5, 0.35, 0.2, 0.2, -90, 198, n=4):
        pen.ellipse((px - 0.15, py - 0.15, px + 0.15, py + 0.15), c)
    pen.ellipse((0.4, 0.25, 0.6, 0.45), darker(c))


def _bird(pen: Pen, c: Color) -> None:
    pen.ellipse((0.1, 0.35, 0.72, 0.8), c)
    pen.ellipse((0.55, 0.2, 0.85, 0.5), c)
    pen.polygon([(0.84, 0.3), (0.98, 0.37), (0.84, 0.43)], "orange")
    pen.polygon([(0.2, 0.5), (0.5, 0.45), (0.35, 0.7)], darker(c))


def _book(pen: Pen, c: Color) -> None:
    pen.rect((0.15, 0.1, 0.85, 0.9), c)
    pen.rect((0.15, 0.1, 0.26, 0.9), darker(c))
    pen.rect((0.78, 0.13, 0.85, 0.87), "white")


def _chair(pen: Pen, c: Color) -> None:
    pen.rect((0.2, 0.05, 0.32, 0.6), c)
    pen.rect((0.2, 0.5, 0.8, 0.6), c)
    pen.rect((0.2, 0.6, 0.27, 0.95), darker(c))
    pen.rect((0.73, 0.6, 0.8, 0.95), darker(c))


def _clock(pen: Pen, c: Color) -> None:
    pen.ellipse((0.05, 0.05, 0.95, 0.95), c)
    pen.ellipse((0.15, 0.15, 0.85, 0.85), "white")
    pen.line([(0.5, 0.5), (0.5, 0.22)], "black", 0.04)
    pen.line([(0.5, 0.5), (0.7, 0.6)], "black", 0.04)


def _banana(pen: Pen, c: Color) -> None:
    outer = list(_ring(0.5, 0.2, 0.45, 0.65, 10, 170))
    inner = list(_ring(0.5, 0.2, 0.38, 0.45, 170, 10))
    pen.polygon(outer + inner, c)


def _bottle(pen: Pen, c: Color) -> None:
    pen.rect((0.42, 0.1, 0.58, 0.4), c)
    pen.polygon([(0.42, 0.3), (0.58, 0.3), (0.7, 0.42), (0.3, 0.42)], c)
    pen.rect((0.3, 0.4, 0.7, 0.95), c)
    pen.rect((0.4, 0.03, 0.6, 0.1), darker(c))


def _umbrella(pen: Pen, c: Color) -> None:
    pen.line([(0.5, 0.4), (0.5, 0.85), *_ring(0.42, 0.85, 0.08, 0.08, 0, 180, n=6)], "black", 0.04)
    pen.pieslice((0.05, 0.1, 0.95, 0.75), 180, 360, c)


def _fish(pen: Pen, c: Color) -> None:
    pen.polygon([(0.62, 0.5), (0.95, 0.2), (0.95, 0.8)], darker(c))
    pen.ellipse((0.05, 0.25, 0.72, 0.75), c)
    pen.ellipse((0.18, 0.4, 0.26, 0.48), "black")


def _heart(pen: Pen, c: Color) -> None:
    pen.polygon([(0.12, 0.45), (0.88, 0.45), (0.5, 0.92)], c)
    pen.ellipse((0.08, 0.1, 0.52, 0.58), c)
    pen.ellipse((0.48, 0.1, 0.92, 0.58), c)


def _circle(pen: Pen, c: Color) -> None:
    pen.ellipse((0.05, 0.05, 0.95, 0.95), c)


def _square(pen: Pen, c: Color) -> None:
    pen.rect((0.1, 0.1, 0.9, 0.9), c)


def _triangle(pen: Pen, c: Color) -> None:
    pen.polygon([(0.05, 0.92), (0.5, 0.08), (0.95, 0.92)], c)


SHAPES: dict[str, Callable[[Pen, Color], None]] = {
    "apple": _apple,
    "ball": _ball,
    "cube": _cube,
    "car": _car,
    "tree": _tree,
    "house": _house,
    "cat": _cat,
    "dog": _dog,
    "cup": _cup,
    "star": _star,
    "flower": _flower,
    "bird": _bird,
    "book": _book,
    "chair": _chair,
    "clock": _clock,
    "banana": _banana,
    "bottle": _bottle,
    "umbrella": _umbrella,
    "fish": _fish,
    "heart": _heart,
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
}


# ---- variants and refinement -----------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """How a variant trades speed for detail."""

    scale: float  # drawing resolution / output resolution (< 1: drawn small, then upsampled)
    supersample: int  # the clean drawing is made this many times larger, then reduced (anti-aliasing)
    outlines: bool  # outlines and contact shadows
    blur_taps: int  # taps of the binomial blur in each refinement pass: more work, smoother result
    gray: bool  # every colour drawn as its gray (luminance)


VARIANTS: dict[str, Variant] = {
    "fast": Variant(scale=0.5, supersample=1, outlines=False, blur_taps=3, gray=False),
    "quality": Variant(scale=1.0, supersample=2, outlines=True, blur_taps=5, gray=False),
    # A deliberately degraded model: the fast renderer with every colour gray. It exists to
    # plant a prompt-following (CLIP score) drop in regression-gate tests; never a real choice.
    "nocolor": Variant(scale=0.5, supersample=1, outlines=False, blur_taps=3, gray=True),
}

NOISE_STD = 72.0  # of the starting noise, in 8-bit levels
PASS_RATE = 0.25  # fraction of the remaining distance to the clean drawing closed per pass
# Binomial blur weights, centre first, then one per offset on each side.
_BINOMIAL = {3: (0.5, 0.25), 5: (0.375, 0.25, 0.0625)}


@dataclass(frozen=True)
class RenderStats:
    """The work a render did, counted as it went (for tests and for reasoning about latency)."""

    passes: int
    pixel_work: int  # sum over passes of pixels x channels x blur taps
    draw_size: tuple[int, int]  # where the clean drawing was made, before it was scaled to the output


def _background(size: tuple[int, int], surface: Surface | None, gray: bool) -> Image.Image:
    def tone(c: Color) -> Color:
        return _gray(c) if gray else c

    image = Image.new("RGB", size, tone(PAPER))
    if surface is not None:
        top = round(size[1] * (1.0 - surface.coverage))
        ImageDraw.Draw(image).rectangle((0, top, size[0], size[1]), fill=tone(COLORS[surface.resolved_color]))
    return image


def _draw_clean(
    scene: Scene, placements: Sequence[Placement], size: tuple[int, int], variant: Variant
) -> Image.Image:
    """The noise-free drawing at `size`, supersampled for anti-aliasing when the variant asks for it."""
    ss = variant.supersample
    big = (size[0] * ss, size[1] * ss)
    image = _background(big, scene.surface, variant.gray)
    draw = ImageDraw.Draw(image)
    for item in placements:
        x0, y0, x1, y1 = item.box
        box = (x0 * big[0], y0 * big[1], x1 * big[0], y1 * big[1])
        pen = Pen(draw, box, outline=variant.outlines, gray=variant.gray)
        if variant.outlines:
            pen.shadow()
        SHAPES[item.noun](pen, pen.color(item.color))
    return image.reduce(ss) if ss > 1 else image


def _axis_slice(axis: int, start: int | None, stop: int | None) -> tuple[slice, ...]:
    return (slice(None),) * axis + (slice(start, stop),)


def _blur_axis(a: FloatArray, weights: Sequence[float], axis: int) -> FloatArray:
    """Symmetric blur along one axis, edge pixels repeated. `weights` is the centre then each offset."""
    out = a * np.float32(weights[0])
    for offset, w in enumerate(weights[1:], start=1):
        w32 = np.float32(w)
        out[_axis_slice(axis, offset, None)] += a[_axis_slice(axis, None, -offset)] * w32
        out[_axis_slice(axis, None, -offset)] += a[_axis_slice(axis, offset, None)] * w32
        # Clamped edges: the first and last `offset` pixels read the edge pixel instead.
        out[_axis_slice(axis, None, offset)] += a[_axis_slice(axis, None, 1)] * w32
        out[_axis_slice(axis, -offset, None)] += a[_axis_slice(axis, -1, None)] * w32
    return out


def _blur(a: FloatArray, taps: int, gain: float = 1.0) -> FloatArray:
    """Separable binomial blur over both image axes, times `gain`. O(pixels x taps)."""
    weights = [w * gain for w in _BINOMIAL[taps]]
    return _blur_axis(_blur_axis(a, weights, 0), _BINOMIAL[taps], 1)


def refine(clean: FloatArray, *, steps: int, seed: int, variant: Variant) -> tuple[FloatArray, int]:
    """Start from seeded noise and take `steps` passes towards `clean`.

    The image after pass k is clean + residual_k, with residual_{k+1} =
    (1 - PASS_RATE) * blur(residual_k): each pass closes a quarter of the distance
    and smooths what is left, so 4 steps leave visible blotchy noise and ~30 leave
    none. Tracking the residual rather than the image is the same arithmetic, one
    subtraction cheaper per pass. Returns the image and the pixel work counted.
    """
    h, w, _ = clean.shape
    channels = 1 if variant.gray else 3  # gray noise for a gray drawing: no colour sneaks back in
    rng = np.random.default_rng([seed, 3])
    noise = rng.standard_normal((h, w, channels), dtype=np.float32) * np.float32(NOISE_STD)
    # A gray drawing has three equal channels, so one carries it all (and a third of the work).
    residual = noise + np.float32(127.5) - clean[..., :channels]
    keep = 1.0 - PASS_RATE
    work = 0
    for _ in range(steps):
        residual = _blur(residual, variant.blur_taps, gain=keep)
        work += h * w * channels * variant.blur_taps
    return clean + residual, work


# ---- entry points ----------------------------------------------------------------------


def _draw_size(width: int, height: int, variant: Variant) -> tuple[int, int]:
    return (max(16, round(width * variant.scale)), max(16, round(height * variant.scale)))


def render_with_stats(
    prompt: str,
    *,
    width: int,
    height: int,
    seed: int,
    steps: int,
    guidance: float,
    variant: str,
    negative_prompt: str | None = None,
    ignore_colors: bool = False,
) -> tuple[Image.Image, RenderStats]:
    """`render`, also returning the work it counted."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if width < 1 or height < 1 or steps < 0:
        raise ValueError(f"need width, height >= 1 and steps >= 0; got {width}x{height}, steps={steps}")
    seed %= 2**64  # numpy seeds must be non-negative; some APIs pass -1 or other negative seeds
    style = VARIANTS[variant]
    if ignore_colors:
        style = replace(style, gray=True)
    scene = interpret(prompt, seed=seed, guidance=guidance, negative_prompt=negative_prompt)
    size = _draw_size(width, height, style)
    drawing = _draw_clean(scene, layout(scene, seed=seed, aspect=width / height), size, style)
    if drawing.size != (width, height):
        drawing = drawing.resize((width, height), Image.Resampling.BILINEAR)
    # Refinement runs at the output size for every variant: steps then cost time in
    # proportion to output pixels, as they do on a real model, and that cost outgrows
    # PNG-encoding the noise that fewer steps leave (which is slower than encoding a
    # clean image): end-to-end latency grows with steps.
    clean = np.asarray(drawing, dtype=np.float32)
    pixels, work = refine(clean, steps=steps, seed=seed, variant=style)
    image = Image.fromarray(np.clip(pixels + np.float32(0.5), 0, 255).astype(np.uint8), "RGB")
    return image, RenderStats(steps, work, size)


def render(
    prompt: str,
    *,
    width: int,
    height: int,
    seed: int,
    steps: int,
    guidance: float,
    variant: str,
    negative_prompt: str | None = None,
    ignore_colors: bool = False,
) -> Image.Image:
    """Draw the prompt as an RGB image of exactly width x height. Deterministic in all arguments."""
    image, _ = render_with_stats(
        prompt,
        width=width,
        height=height,
        seed=seed,
        steps=steps,
        guidance=guidance,
        variant=variant,
        negative_prompt=negative_prompt,
        ignore_colors=ignore_colors,
    )
    return image


def encode_png(image: Image.Image) -> bytes:
    # Level 1: noisy images compress badly whatever the level, and the higher levels cost
    # more than the render itself at 512x512. PIL's PNG output is deterministic for fixed input.
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def render_png(
    prompt: str,
    width: int,
    height: int,
    seed: int,
    steps: int = 4,
    guidance: float = 7.0,
    variant: str = "fast",
) -> bytes:
    """PNG bytes of `render`: the entry point the HTTP emulators serve images from."""
    return encode_png(
        render(prompt, width=width, height=height, seed=seed, steps=steps, guidance=guidance, variant=variant)
    )

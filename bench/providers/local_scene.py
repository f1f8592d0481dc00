"""What the local generator draws for a prompt: the prompt parsed into groups of objects on a
surface, changed by guidance (drift) and the negative prompt, and laid out by the seed.

Part of the offline `local` provider (see bench/providers/local_render.py); pure functions.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, replace

import numpy as np

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]

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

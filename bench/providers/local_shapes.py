"""How the local generator draws each object it knows: one function per shape, in unit
coordinates of the object's box, through a Pen that applies the variant's style.

Part of the offline `local` provider (see bench/providers/local_render.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

from PIL import ImageDraw

from bench.providers.local_scene import COLORS, Box, Color

# ---- drawing ---------------------------------------------------------------------------


def _mix(color: Color, other: Color, t: float) -> Color:
    r, g, b = (round(a + (o - a) * t) for a, o in zip(color, other, strict=True))
    return (r, g, b)


def lighter(color: Color) -> Color:
    return _mix(color, (255, 255, 255), 0.35)


def darker(color: Color) -> Color:
    return _mix(color, (0, 0, 0), 0.4)


def grayscale(color: Color) -> Color:
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
        return grayscale(rgb) if self.gray else rgb

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

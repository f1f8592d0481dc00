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

The scene (what is drawn) is bench/providers/local_scene.py; the shapes (how each object is
drawn) are bench/providers/local_shapes.py; this module refines and encodes the picture.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from bench.providers.local_scene import (
    COLORS,
    PAPER,
    Color,
    Placement,
    Scene,
    Surface,
    interpret,
    layout,
)
from bench.providers.local_shapes import SHAPES, Pen, grayscale

FloatArray = npt.NDArray[np.float32]

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
        return grayscale(c) if gray else c

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

"""How the report's plots look and what they must say: palette, axis scales, labels, caveats.

Rules here are the ones a test can check: a log axis when positive values span more
than 10×, axis limits never below zero for quantities that cannot be negative, labels
placed where they overlap nothing already drawn, and every figure stamped with its
caveats (in the image and in the PNG/SVG metadata), so a PNG copied out of the page
keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

# Okabe-Ito (minus its yellow, unreadable on white) plus Tol's wine: 8 hues, no greys.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#882255",
)  # fmt: skip
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
LOG_SPAN = 10.0  # log axis when the positive values span more than this factor
SYNTHETIC_NOTE = "Synthetic: images from the offline `local` generator (drawings, not a real model)."


def style(i: int) -> dict[str, Any]:
    """Series i: colour cycles fastest, then marker, then line style: 8 x 8 = 64 distinct pairs."""
    return {
        "color": PALETTE[i % len(PALETTE)],
        "marker": MARKERS[(i // len(PALETTE)) % len(MARKERS)],
        "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)],
    }


def target_styles(targets: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {t: style(i) for i, t in enumerate(sorted({str(t) for t in targets}))}


# ---- axes ------------------------------------------------------------------------------------
def choose_scale(values: Iterable[float], span: float = LOG_SPAN) -> str:
    """'log' when the finite positive values span more than `span`× and none is zero or negative;
    'symlog' when they span that much but zeros are present (a free target beside paid ones);
    else 'linear'."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    pos = v[v > 0]
    if pos.size < 2 or pos.max() / pos.min() <= span:
        return "linear"
    return "log" if pos.size == v.size else "symlog"


def apply_scale(
    ax: Any, axis: str, values: Sequence[float], *, nonnegative: bool, span: float = LOG_SPAN
) -> str:
    """Set the x or y scale by `choose_scale`; for a non-negative quantity on a linear axis, start at
    0 (an all-zero axis shows 0 to 1, never -0.04 to 0.04). Returns the scale chosen."""
    scale = choose_scale(values, span)
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    set_lim = ax.set_xlim if axis == "x" else ax.set_ylim
    if scale == "log":
        set_scale("log")
        lo, hi = float(v.min()), float(v.max())
        set_lim(lo / 1.5, hi * 2.5)  # room for a value label after the largest
    elif scale == "symlog":
        linthresh = float(v[v > 0].min())
        set_scale("symlog", linthresh=linthresh, linscale=0.5)
        set_lim(0.0, float(v.max()) * 2.5)
    elif nonnegative:
        hi = float(v.max()) if v.size else 0.0
        set_lim(0.0, hi * 1.12 if hi > 0 else 1.0)
    return scale


# ---- caveats -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Caveats:
    synthetic: bool = False
    random_init: bool = False
    emulated: bool = False
    fid_small_n: int | None = None  # the smallest group n behind a FID, when below the reliable minimum
    poll_interval_s: float | None = None

    def lines(self) -> list[str]:
        out = []
        if self.synthetic:
            out.append("SYNTHETIC images (local generator drawings), not a real model's output")
        if self.emulated:
            out.append("EMULATOR data: answers from a protocol emulator on this machine, not the provider")
        if self.random_init:
            out.append("RANDOM-INIT CLIP weights: quality scores exercise the pipeline and mean nothing")
        if self.fid_small_n is not None:
            from bench.metrics.fid import FID_MIN_RELIABLE_N

            out.append(
                f"FID from n={self.fid_small_n} images, below the {FID_MIN_RELIABLE_N} it needs: biased upwards"
            )
        if self.poll_interval_s is not None:
            out.append(f"POLLED latency: measured to within {self.poll_interval_s:g} s (the poll interval)")
        return out

    def text(self) -> str:
        return "; ".join(self.lines())

    @classmethod
    def of(cls, summary: pd.DataFrame, records: pd.DataFrame) -> Caveats:
        from bench.metrics.fid import FID_MIN_RELIABLE_N
        from bench.metrics.fingerprint import is_random_init

        def any_true(frame: pd.DataFrame, col: str) -> bool:
            return col in frame and bool(frame[col].fillna(False).astype(bool).any())

        fps = records.get("clip_fingerprint", pd.Series(dtype=object)).dropna()
        small = None
        if "fid" in summary and "n_images" in summary:
            scored = summary[summary["fid"].notna()]
            if not scored.empty and int(scored["n_images"].min()) < FID_MIN_RELIABLE_N:
                small = int(scored["n_images"].min())
        polled = records.get("poll_interval_s", pd.Series(dtype=float)).dropna()
        return cls(
            synthetic=any_true(records, "synthetic") or any_true(summary, "synthetic"),
            random_init=any(is_random_init(str(f)) for f in fps.unique()),
            emulated=any_true(records, "emulated"),
            fid_small_n=small,
            poll_interval_s=float(polled.max()) if not polled.empty else None,
        )


def stamp(fig: Figure, caveats: Caveats) -> float:
    """Caveat lines at the bottom of the figure; returns the figure fraction they take."""
    lines = caveats.lines()
    if not lines:
        return 0.0
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=7, color="#a33", ha="left", va="bottom", wrap=True)
    height_in = fig.get_figheight()
    return min(0.3, (len(lines) * 0.13 + 0.05) / height_in)


def png_metadata(caveats: Caveats, title: str) -> dict[str, str]:
    return {"Title": title, "Description": caveats.text() or "no caveats", "Software": "t2i-bench"}


def svg_metadata(caveats: Caveats, title: str) -> dict[str, str]:
    return {"Title": title, "Description": caveats.text() or "no caveats"}


def renderer_of(fig: Figure) -> Any:
    """The Agg renderer (text extents are only known once drawn)."""
    return getattr(fig.canvas, "get_renderer")()  # noqa: B009  (Agg-only method, untyped on the base)


# ---- labels ------------------------------------------------------------------------------------
def ranges(numbers: Sequence[int]) -> str:
    """[1, 2, 3, 5] -> '1-3,5': a compact label for points that sit together."""
    nums = sorted(numbers)
    out, start, prev = [], nums[0], nums[0]
    for n in [*nums[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        out.append(str(start) if start == prev else f"{start}-{prev}")
        if n is not None:
            start = prev = n
    return ",".join(out)


OFFSETS = ((6, 6), (6, -12), (-6, 6), (-6, -12), (10, -3), (-10, -3), (0, 12), (0, -16), (16, 14), (16, -20))


def place_labels(fig: Figure, ax: Any, points: Sequence[tuple[Any, ...]], fontsize: float = 7) -> list[Any]:
    """Annotate each (x, y, text[, colour]) at the first of several offsets where its box overlaps no label
    placed before it and stays inside the axes; the last offset is used if none is free. Points that
    share a spot should be merged into one label first (see `cluster`)."""
    renderer = renderer_of(fig)
    frame = ax.get_window_extent(renderer)
    placed: list[Bbox] = []
    texts = []
    for x, y, label, *colour in points:  # colour: optional 4th item
        ann = None
        for dx, dy in OFFSETS:
            if ann is not None:
                ann.remove()
            ann = ax.annotate(
                label, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                ha="left" if dx >= 0 else "right", color=colour[0] if colour else "#111",
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8}, zorder=6,
            )  # fmt: skip
            box = ann.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(b) for b in placed):
                break
        assert ann is not None
        placed.append(ann.get_window_extent(renderer))
        texts.append(ann)
    return texts


def cluster(ax: Any, xs: Any, ys: Any, radius_px: float = 9.0) -> list[list[int]]:
    """Indices of points within radius_px of each other on screen (greedy, in order)."""
    disp = ax.transData.transform(np.column_stack([xs, ys]))
    groups: list[list[int]] = []
    centres: list[np.ndarray[Any, Any]] = []
    for i, p in enumerate(disp):
        for g, c in zip(groups, centres, strict=True):
            if np.hypot(*(p - c)) <= radius_px:
                g.append(i)
                break
        else:
            groups.append([i])
            centres.append(p)
    return groups


def boxes_overlap(texts: Sequence[Any], fig: Figure) -> int:
    """How many pairs of the given texts overlap on the rendered figure (0 = readable)."""
    renderer = renderer_of(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    return sum(1 for i in range(len(boxes)) for j in range(i + 1, len(boxes)) if boxes[i].overlaps(boxes[j]))

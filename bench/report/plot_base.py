"""What every report plot shares: the title/legend/caveat finish, the empty-panel message, group
numbers, the Pareto frontier and Wilson intervals. plots and quality_plots both import this (and
not each other's internals), so the two modules form no import circle."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import binomtest

from bench.report.plot_style import Caveats, stamp


def finish(fig: Figure, title: str, caveats: Caveats, *, legend_axes: list[Any] | None = None) -> Figure:
    """Title, legend (outside the data), caveat stamp, then the layout."""
    fig.suptitle(title, fontsize=11)
    if legend_axes:
        handles, labels = [], []
        for ax in legend_axes:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels and not lab.startswith("_"):
                    handles.append(h)
                    labels.append(lab)
        if handles:
            # Beside the last axes, outside the data; tight_layout makes room for it.
            legend_axes[-1].legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0,
                                   fontsize=7, frameon=False, ncol=1 if len(labels) <= 16 else 2)  # fmt: skip
    bottom = stamp(fig, caveats)
    fig.tight_layout(rect=(0, bottom + 0.01, 1, 0.95))
    return fig


def empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=10, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


def pareto_front(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.intp]]:
    """Indices of the points no other point beats (lower-or-equal x and higher-or-equal y, one strictly),
    sorted by x. NaNs are never on the front."""
    idx = [i for i in range(len(x)) if np.isfinite(x[i]) and np.isfinite(y[i])]
    front = []
    for i in idx:
        dominated = any(x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]) for j in idx if j != i)
        if not dominated:
            front.append(i)
    return np.array(sorted(front, key=lambda i: (x[i], -y[i])), dtype=np.intp)


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a rate k/n (scipy's reference implementation); NaNs when n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def group_numbers(summary: pd.DataFrame) -> list[int]:
    """1-based group numbers: the report table's '#' column uses the same."""
    return list(range(1, len(summary) + 1))

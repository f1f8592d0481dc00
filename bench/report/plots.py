"""The report's plots (matplotlib, Agg backend), each written as PNG and SVG.

Readability rules (bench.report.plot_style): groups are numbered (the same numbers as
the report's table) and the key sits beside the plot, so 36 groups never stack 36
labels; labels go where they overlap nothing; the Pareto frontier is a step line with
its points ringed (visible with one point); axes go log when values span over 10×
(steps: log2 when the grid doubles) and never below zero for non-negative
quantities; rates carry Wilson intervals; "no failures" is said in words. Every
figure is stamped with its caveats (synthetic, emulator data, random-init weights,
FID below its minimum n, polled latency), in the image and in the file's metadata.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench import stats
from bench.decide.signals import SHARE_SCORES
from bench.report.plot_base import empty, finish, group_numbers, pareto_front, wilson
from bench.report.plot_style import (
    PALETTE,
    SYNTHETIC_NOTE,
    Caveats,
    apply_scale,
    cluster,
    place_labels,
    png_metadata,
    ranges,
    renderer_of,
    stamp,
    style,
    svg_metadata,
    target_styles,
)
from bench.report.quality_plots import cost_vs_latency
from bench.report.summary import requests_of

__all__ = [
    "PALETTE",
    "PLOTS",
    "SYNTHETIC_NOTE",
    "group_numbers",
    "pareto_front",
    "style",
    "wilson",
    "write_plots",
]

QUALITY = ("clip_mean", "clip_ci_low", "clip_ci_high", "CLIP score (mean, 95% CI over prompts)")


def _key_text(summary: pd.DataFrame, shown: set[int]) -> str:
    lines = []
    for num, label in zip(group_numbers(summary), summary["group"], strict=True):
        mark = "" if num in shown else "  (not plotted)"
        lines.append(f"{num:>3}  {label}{mark}")
    return "\n".join(lines)


def _quality_scatter(
    summary: pd.DataFrame,
    xcol: str,
    xlabel: str,
    title: str,
    err: tuple[str, str] | None,
    caveats: Caveats,
    quality: tuple[str, str, str, str] = QUALITY,
) -> Figure:
    ycol, ylo, yhi, ylabel = quality
    n = len(summary)
    fig = plt.figure(figsize=(11.0, max(5.5, 0.13 * n + 2.0)))
    grid = fig.add_gridspec(1, 2, width_ratios=(3.0, 1.35))
    ax, side = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    side.axis("off")
    numbered = summary.assign(_num=group_numbers(summary)).reset_index(drop=True)
    s = numbered[numbered[ycol].notna() & numbered[xcol].notna()].reset_index(drop=True)
    if s.empty:
        empty(
            ax,
            f"No group has both a quality score and {xlabel}\n"
            "(run `bench score RUN_DIR` for CLIP; unknown costs stay unknown)",
        )
        return finish(fig, title, caveats)
    styles = target_styles(summary["target"])
    for target, grp in s.groupby("target", sort=True):
        st = styles[str(target)]
        yerr = np.vstack([grp[ycol] - grp[ylo], grp[yhi] - grp[ycol]]) if ylo in grp else None
        xerr = np.vstack([grp[xcol] - grp[err[0]], grp[err[1]] - grp[xcol]]) if err else None
        ax.errorbar(
            grp[xcol], grp[ycol],
            yerr=None if yerr is None else np.clip(np.nan_to_num(yerr, posinf=0.0, neginf=0.0), 0, None),
            # An unbounded side (a p90 of too few requests has no upper bound) is not drawn;
            # the report's table shows it as inf.
            xerr=None if xerr is None else np.clip(np.nan_to_num(xerr, posinf=0.0, neginf=0.0), 0, None),
            fmt=st["marker"], color=st["color"], label=str(target), alpha=0.85, capsize=2, markersize=6,
            clip_on=False,  # a point at cost 0 sits on the axis: draw it whole
        )  # fmt: skip
    x, y = s[xcol].to_numpy(float), s[ycol].to_numpy(float)
    scale = apply_scale(ax, "x", list(x), nonnegative=True)
    front = pareto_front(x, y)
    fx, fy = x[front], y[front]
    # The staircase: the best quality reachable at each cost; carried to the right edge.
    right = ax.get_xlim()[1]
    ax.step([*fx, right], [*fy, fy[-1]], where="post", color="black", linewidth=1.3, zorder=3)
    ax.scatter(fx, fy, s=220, facecolors="none", edgecolors="black", linewidths=1.6, zorder=4, clip_on=False,
               label=f"Pareto frontier ({len(front)} group{'s' if len(front) != 1 else ''})")  # fmt: skip
    # An unbounded side of an interval (too few prompts) is not drawn and does not set the limits.
    _verdict_marks(ax, s, x, y)
    ylo_v = np.nanmin(np.where(np.isfinite(s[ylo]), s[ylo], y)) if ylo in s else np.nanmin(y)
    yhi_v = np.nanmax(np.where(np.isfinite(s[yhi]), s[yhi], y)) if yhi in s else np.nanmax(y)
    set_quality_limits(ax, float(ylo_v), float(yhi_v))
    ax.set_xlabel(xlabel + ("" if scale == "linear" else f" ({scale} scale: values span > 10×)"))
    if np.all(x == 0):
        ax.text(0.5, 0.97, f"every plotted group has {xlabel.split(' (')[0]} 0", transform=ax.transAxes,
                ha="center", va="top", fontsize=8, color="#555")  # fmt: skip
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout(rect=(0, stamp_height(fig, caveats), 1, 0.95))
    # Numbers, not names, at the points: points sharing a spot get one label ("1-12").
    spots = cluster(ax, x, y)
    nums = s["_num"].to_numpy(int)
    place_labels(
        fig, ax, [(float(x[g[0]]), float(y[g[0]]), ranges([int(nums[i]) for i in g])) for g in spots]
    )
    hidden = n - len(s)
    if hidden:
        ax.text(0.99, 0.01, f"{hidden} group(s) not plotted: unknown {xlabel.split(' (')[0]} or no score",
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7)  # fmt: skip
    handles, labels = ax.get_legend_handles_labels()
    legend = side.legend(handles, labels, loc="upper left", fontsize=7, frameon=False,
                         ncol=1 if len(labels) <= 12 else 2)  # fmt: skip
    # The key goes right under the legend, whatever its height.
    box = legend.get_window_extent(renderer_of(fig)).transformed(side.transAxes.inverted())
    side.text(0.0, box.y0 - 0.02, "Key (# = report table row)\n" + _key_text(summary, set(s["_num"])),
              fontsize=6.5, family="monospace", va="top", ha="left", transform=side.transAxes)  # fmt: skip
    fig.suptitle(title, fontsize=11)
    stamp(fig, caveats)
    return fig


def set_quality_limits(ax: Any, low: float, high: float) -> None:
    """Y limits with room around the data, readable when every group scores the same: a spread of zero
    gets a pad of 5% of the value (at least 0.05), and ticks never turn into an offset ("1e-6 + 1").
    A share that sits in [0, 1] keeps its axis inside [0, 1] (plus the pad)."""
    spread = high - low
    pad = spread * 0.12 if spread > 0 else max(abs(high) * 0.05, 0.05)
    lo, hi = low - pad, high + pad
    if low >= 0.0 and high <= 1.0:
        lo, hi = max(lo, -0.02), min(hi, 1.02)
    ax.set_ylim(lo, hi)
    ax.ticklabel_format(axis="y", useOffset=False, style="plain")


def _verdict_marks(ax: Any, s: pd.DataFrame, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> None:
    """Ring the non-inferior groups and star the recommended one (summary column `_verdict`)."""
    if "_verdict" not in s:
        return
    role = s["_verdict"].to_numpy(str)
    for which, kw in (
        ("non-inferior", {"s": 360, "facecolors": "none", "edgecolors": PALETTE[2], "linewidths": 2.2,
                          "linestyle": "--", "label": "as good as the best (within the margin)"}),
        ("recommended", {"s": 420, "marker": "*", "facecolors": "none", "edgecolors": PALETTE[3],
                         "linewidths": 1.8, "label": "recommended"}),
    ):  # fmt: skip
        at = np.flatnonzero((role == which) | ((which == "non-inferior") & (role == "recommended")))
        if at.size:
            ax.scatter(x[at], y[at], zorder=5, clip_on=False, **kw)


def stamp_height(fig: Figure, caveats: Caveats) -> float:
    lines = len(caveats.lines())
    return 0.0 if not lines else min(0.3, (lines * 0.13 + 0.05) / fig.get_figheight()) + 0.01


def quality_vs_cost(summary: pd.DataFrame, caveats: Caveats | None = None) -> Figure:
    return _quality_scatter(
        summary, "cost_per_1k_usd", "cost per 1,000 images (USD)", "Quality vs cost, with the Pareto frontier",
        None, caveats or Caveats.of(summary, summary), summary.attrs.get("quality_axis", QUALITY),
    )  # fmt: skip


def quality_vs_latency(summary: pd.DataFrame, caveats: Caveats | None = None) -> Figure:
    return _quality_scatter(
        summary, "latency_p90_s", "p90 latency (s, 95% CI)", "Quality vs p90 latency, with the Pareto frontier",
        ("latency_p90_ci_low", "latency_p90_ci_high"), caveats or Caveats.of(summary, summary),
        summary.attrs.get("quality_axis", QUALITY),
    )  # fmt: skip


def latency_ecdf(records: pd.DataFrame, caveats: Caveats) -> Figure:
    fig, ax = plt.subplots(figsize=(9.5, 5.2))
    title = "Latency distribution per target (ECDF), p90 marked"
    ok = records[(records["status"] == "ok") & records["latency_s"].notna()]
    if ok.empty:
        empty(ax, "No successful requests: no latencies")
        return finish(fig, title, caveats)
    ok = requests_of(ok)
    styles = target_styles(ok["target"])
    p90s = []
    for target, grp in ok.groupby("target", sort=True):
        st = styles[str(target)]
        v = np.sort(grp["latency_s"].to_numpy(float))
        poll = grp.get("poll_interval_s", pd.Series(dtype=float)).dropna()
        polled = f", polled ≤{poll.max():g} s" if not poll.empty else ""
        ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=st["color"],
                linestyle=st["linestyle"], label=f"{target} (n={len(v)}{polled})")  # fmt: skip
        p90 = float(np.percentile(v, 90))
        ax.plot([p90], [0.9], marker=st["marker"], color=st["color"], markersize=7, markeredgecolor="black")
        p90s.append((p90, 0.9, f"p90 {p90:.2f} s", st["color"]))
    apply_scale(ax, "x", list(ok["latency_s"].astype(float)), nonnegative=True)
    ax.set_ylim(0, 1.02)
    ax.axhline(0.9, color="gray", linewidth=0.7, linestyle=":")
    ax.text(0.005, 0.885, "90% of requests", transform=ax.get_yaxis_transform(), fontsize=7, color="gray",
            va="top", ha="left")  # fmt: skip
    ax.set_xlabel("end-to-end latency per request (s)")
    ax.set_ylabel("fraction of requests ≤ latency")
    ax.grid(alpha=0.3, which="both")
    finish(fig, title, caveats, legend_axes=[ax])
    place_labels(fig, ax, p90s)
    return fig


def _param_scale(ax: Any, values: list[float]) -> None:
    """Steps and guidance grids usually double: log2 once the values span 4× or more."""
    v = sorted({x for x in values if np.isfinite(x)})
    if len(v) >= 2 and v[0] > 0 and v[-1] / v[0] >= 4:
        ax.set_xscale("log", base=2)
        ax.set_xticks(v, [f"{x:g}" for x in v])
        ax.set_xlim(v[0] / 1.25, v[-1] * 1.25)
    elif v:
        ax.set_xlim(max(0.0, v[0] - 1.0) if v[0] >= 0 else v[0] - 1.0, v[-1] + 1.0)


def clip_vs_params(records: pd.DataFrame, caveats: Caveats) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 4.8), sharey=True)
    title = "CLIP score against steps and guidance, per model"
    ok = (
        records[(records["status"] == "ok") & records["clip_score"].notna()]
        if "clip_score" in records
        else records.iloc[:0]
    )
    styles = target_styles(records["target"])
    for ax, param, unit in ((axes[0], "steps", "inference steps"), (axes[1], "guidance", "guidance scale")):
        sub = ok[ok[param].notna()]
        if sub.empty:
            empty(ax, f"No CLIP scores with {param} sent")
            continue
        means = sub.groupby(["target", param])["clip_score"].mean().reset_index()
        for target, grp in means.groupby("target", sort=True):
            st = styles[str(target)]
            ax.plot(grp[param], grp["clip_score"], color=st["color"], marker=st["marker"],
                    linestyle=st["linestyle"], label=str(target))  # fmt: skip
        _param_scale(ax, list(sub[param].astype(float)))
        ax.set_xlabel(unit)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CLIP score (mean over prompts, seeds, other settings)")
    return finish(fig, title, caveats, legend_axes=list(axes))


def cost_per_1k(summary: pd.DataFrame, caveats: Caveats) -> Figure:
    n = len(summary)
    fig, ax = plt.subplots(figsize=(9.5, max(3.0, 0.26 * n + 1.6)))
    styles = target_styles(summary["target"])
    y = np.arange(n)
    values = summary["cost_per_1k_usd"].to_numpy(float)
    colors = [styles[str(t)]["color"] for t in summary["target"]]
    scale = apply_scale(ax, "x", list(values), nonnegative=True)
    base = ax.get_xlim()[0] if scale == "log" else 0.0
    ax.barh(y, np.where(np.isnan(values), 0.0, values - base), left=base, color=colors)
    for yi, v in zip(y, values, strict=True):
        ax.text(base if np.isnan(v) else float(v), float(yi), " unknown" if np.isnan(v) else f" ${v:,.2f}",
                va="center", fontsize=7)  # fmt: skip
    labels = [f"{i}  {g}" for i, g in zip(group_numbers(summary), summary["group"], strict=True)]
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("USD per 1,000 images" + ("" if scale == "linear" else f" ({scale} scale)")
                  + " — unknown = no price and none reported")  # fmt: skip
    ax.grid(alpha=0.3, axis="x", which="both")
    return finish(fig, "Cost per 1,000 images", caveats)


def _rates(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Per value of `by`: requests, errors, refusals, with Wilson intervals."""
    rows = []
    for key, g in frame.groupby(by, sort=True):
        n = len(g)
        err, ref = int((g["status"] == "error").sum()), int((g["status"] == "refused").sum())
        rows.append({by: key, "n": n, "error": err / n, "refused": ref / n, "n_error": err, "n_refused": ref,
                     "error_ci": wilson(err, n), "refused_ci": wilson(ref, n)})  # fmt: skip
    return pd.DataFrame(rows).set_index(by)


def _rate_bars(ax: Any, rates: pd.DataFrame, name: str) -> None:
    y = np.arange(len(rates))
    for off, col, colour, label, hatch in ((-0.2, "error", PALETTE[3], "error rate", None),
                                           (0.2, "refused", PALETTE[0], "refusal rate", "//")):  # fmt: skip
        lo = np.array([c[0] for c in rates[f"{col}_ci"]])
        hi = np.array([c[1] for c in rates[f"{col}_ci"]])
        v = rates[col].to_numpy(float)
        ax.barh(y + off, 100 * v, height=0.4, color=colour, label=label, hatch=hatch, alpha=0.85)
        ax.errorbar(100 * v, y + off, xerr=100 * np.vstack([v - lo, hi - v]), fmt="none", ecolor="black",
                    capsize=2, linewidth=0.8, label="_")  # fmt: skip
    ax.set_yticks(y, [f"{i} (n={n})" for i, n in zip(rates.index, rates["n"], strict=True)], fontsize=7)
    ax.invert_yaxis()
    top = max(c[1] for col in ("error_ci", "refused_ci") for c in rates[col])
    ax.set_xlim(0, max(5.0, 100 * float(top) * 1.1))
    ax.set_xlabel(f"% of requests sent, by {name} (bars: 95% Wilson interval)")
    ax.grid(alpha=0.3, axis="x")


def failure_rates(records: pd.DataFrame, caveats: Caveats) -> Figure:
    attempted = requests_of(records[records["status"] != "skipped"])
    n_cat = attempted["category"].nunique() if "category" in attempted else 0
    failures = int(attempted["status"].isin(["error", "refused"]).sum())
    quiet = attempted.empty or failures == 0  # a short figure that says so, not an empty panel
    fig, axes = plt.subplots(1, 2, figsize=(11.0, 2.2 if quiet else max(4.2, 0.35 * n_cat + 1.8)))
    title = "Error and refusal rates"
    if quiet:
        for ax in axes:
            ax.axis("off")
        what = "No requests were sent." if attempted.empty else (
            f"No failures: 0 errors and 0 refusals in {len(attempted)} requests.\n"
            f"(With n={len(attempted)}, the 95% Wilson interval of the failure rate is "
            f"0–{100 * wilson(0, len(attempted))[1]:.1f}%.)"
        )  # fmt: skip
        fig.text(0.5, 0.55, what, ha="center", va="center", fontsize=12)
        return finish(fig, title, caveats)
    for ax, col, name in ((axes[0], "provider", "provider"), (axes[1], "category", "prompt category")):
        sub = attempted.assign(**{col: attempted[col].fillna("(none)")})
        _rate_bars(ax, _rates(sub, col), name)
    return finish(fig, title, caveats, legend_axes=list(axes))


def by_category(
    records: pd.DataFrame, caveats: Caveats, quality_column: tuple[str, str] = ("clip_score", "CLIP score")
) -> Figure:
    """Quality (the report's per-image signal) and refusal rate by prompt category, per target."""
    attempted = requests_of(records[records["status"] != "skipped"]).assign(
        category=lambda d: d["category"].fillna("(none)")
    )
    cats = sorted(attempted["category"].unique())
    targets = sorted(attempted["target"].unique())
    fig, axes = plt.subplots(1, 2, figsize=(11.0, max(4.2, 0.28 * len(cats) * max(1, len(targets)) ** 0.5 + 2.0)),
                             sharey=True)  # fmt: skip
    title = "Quality and refusal rate by prompt category, per target"
    if attempted.empty:
        for ax in axes:
            empty(ax, "No requests were sent")
        return finish(fig, title, caveats)
    styles = target_styles(targets)
    pos = {c: i for i, c in enumerate(cats)}
    step = 0.7 / max(1, len(targets))
    top_rate = 0.05
    ok = records[(records["status"] == "ok")].assign(category=lambda d: d["category"].fillna("(none)"))
    column, label = quality_column
    has_q = bool(column) and column in ok and ok[column].notna().any()
    for k, t in enumerate(targets):
        st = styles[t]
        off = -0.35 + step * (k + 0.5)
        if has_q:
            sel = ok[(ok["target"] == t) & ok[column].notna()]
            mean = sel.groupby("category")[column].mean()
            if column in SHARE_SCORES:  # a share: Clopper-Pearson (prompts as clusters), inside [0, 1]
                cis = [stats.share_ci(g[column].to_numpy(float), clusters=g["prompt_id"].astype(str).to_numpy())
                       for _, g in sel.groupby("category")]  # fmt: skip
                err = np.array(
                    [[m - c.low, c.high - m] for m, c in zip(mean.to_numpy(float), cis, strict=True)]
                ).T
            else:
                sem = sel.groupby("category")[column].sem().to_numpy(float)
                err = np.vstack([1.96 * sem, 1.96 * sem])
            ys = [pos[c] + off for c in mean.index]
            axes[0].errorbar(mean.to_numpy(float), ys, xerr=np.nan_to_num(err),
                             fmt=st["marker"], color=st["color"], capsize=2, markersize=5, label=t)  # fmt: skip
        a = attempted[attempted["target"] == t]
        rows = [(c, int((g["status"] == "refused").sum()), len(g)) for c, g in a.groupby("category")]
        rates = np.array([r / n for _, r, n in rows])
        ci = np.array([wilson(r, n) for _, r, n in rows])
        ys = [pos[c] + off for c, _, _ in rows]
        top_rate = max(top_rate, float(ci[:, 1].max()))
        axes[1].errorbar(100 * rates, ys, xerr=100 * np.vstack([rates - ci[:, 0], ci[:, 1] - rates]),
                         fmt=st["marker"], color=st["color"], capsize=2, markersize=5,
                         label=t if not has_q else "_")  # fmt: skip
    if not has_q:
        empty(axes[0], "No per-image quality signal in this run" + (f" ({label})" if label else ""))
    else:
        how = (
            "Clopper-Pearson 95%, prompts as clusters"
            if column in SHARE_SCORES
            else "mean ± 1.96 SE over images"
        )
        axes[0].set_xlabel(f"{label.split(' (')[0]} by category ({how})")
        axes[0].grid(alpha=0.3, axis="x")
    axes[1].set_yticks(range(len(cats)), [str(c) for c in cats], fontsize=7)
    axes[1].tick_params(labelleft=True)
    axes[1].set_ylim(len(cats) - 0.5, -0.5)
    axes[1].set_xlim(0, 100 * top_rate * 1.1)
    axes[1].set_xlabel("refusal rate % (95% Wilson interval)")
    axes[1].grid(alpha=0.3, axis="x")
    return finish(fig, title, caveats, legend_axes=list(axes))


Maker = Callable[[pd.DataFrame, pd.DataFrame, Caveats], Figure]
PLOTS: dict[str, tuple[str, Maker]] = {
    "quality_vs_cost": ("Quality vs cost", lambda s, r, c: quality_vs_cost(s, c)),
    "quality_vs_latency": ("Quality vs p90 latency", lambda s, r, c: quality_vs_latency(s, c)),
    "latency_ecdf": ("Latency ECDF", lambda s, r, c: latency_ecdf(r, c)),
    "clip_vs_params": ("CLIP vs steps and guidance", lambda s, r, c: clip_vs_params(r, c)),
    "cost_per_1k": ("Cost per 1,000 images", lambda s, r, c: cost_per_1k(s, c)),
    "failure_rates": ("Error and refusal rates", lambda s, r, c: failure_rates(r, c)),
    "by_category": (
        "Quality and refusals by prompt category",
        lambda s, r, c: by_category(r, c, s.attrs.get("per_image") or ("clip_score", "CLIP score")),
    ),
    "cost_vs_latency": ("Cost vs p90 latency", lambda s, r, c: cost_vs_latency(s, c)),
}
QUALITY_PLOTS = ("quality_vs_cost", "quality_vs_latency")


def _skipped(records: pd.DataFrame, quality: tuple[str, str, str, str] | None) -> set[str]:
    """Plots that would be empty boxes: the frontiers without a quality axis, CLIP views without CLIP.
    (Cost vs latency is always drawn: without a quality axis it is what the run measured.)"""
    from bench.metrics.fingerprint import is_random_init

    skip = set() if quality is not None else set(QUALITY_PLOTS)
    clip = records[records["clip_score"].notna()] if "clip_score" in records else records.iloc[0:0]
    fps = clip.get("clip_fingerprint", pd.Series(dtype=object)).dropna()
    if clip.empty or (quality is None and any(is_random_init(str(f)) for f in fps)):
        skip.add("clip_vs_params")
    return skip


def write_plots(
    summary: pd.DataFrame,
    records: pd.DataFrame,
    out_dir: Path,
    quality: tuple[str, str, str, str] | None = QUALITY,
    *,
    per_image: tuple[str, str] | None = None,
) -> dict[str, Path]:
    """Every plot as out_dir/<name>.png and .svg, caveats in the image and the metadata;
    returns name -> SVG path. `quality` is the y axis of the frontier plots (columns of `summary`:
    value, interval low, high, label); None: the run has no quality signal, so no frontier plots."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.attrs["quality_axis"] = quality
    # The by-category plot's per-image column: the report's signal when it is per image.
    summary.attrs["per_image"] = (
        per_image
        if per_image and per_image[0]
        else (
            ("clip_score", "CLIP score")
            if quality is None or quality[3].startswith("CLIP")
            else ("", quality[3])
        )
    )
    skip = _skipped(records, quality)
    caveats = Caveats.of(summary, records)
    written: dict[str, Path] = {}
    with plt.rc_context({"svg.fonttype": "none", "figure.dpi": 100}):
        for name, (title, make) in PLOTS.items():
            if name in skip:
                for stale in (out_dir / f"{name}.png", out_dir / f"{name}.svg"):
                    stale.unlink(missing_ok=True)  # an earlier report's version would mislead
                continue
            fig = make(summary, records, caveats)
            try:
                fig.savefig(out_dir / f"{name}.png", dpi=120, bbox_inches="tight",
                            metadata=png_metadata(caveats, title))  # fmt: skip
                fig.savefig(
                    out_dir / f"{name}.svg", bbox_inches="tight", metadata=svg_metadata(caveats, title)
                )
            finally:
                plt.close(fig)
            written[name] = out_dir / f"{name}.svg"
    return written

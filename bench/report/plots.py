"""The report's plots (matplotlib, Agg backend), each written as PNG and SVG.

Colour-blind-safe palette (matplotlib's 'tableau-colorblind10'); beyond ten
series the marker and line style change too, so 20 targets stay distinguishable.
Legends sit outside the axes so they never cover data. Synthetic data is said so
in a note under each figure.
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

PALETTE: list[str] = list(plt.style.library["tableau-colorblind10"]["axes.prop_cycle"].by_key()["color"])
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", ":", "-.")
SYNTHETIC_NOTE = "Synthetic: images from the offline `local` generator (drawings, not a real model)."


def style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of series i: distinct for at least 80 series."""
    return {
        "color": PALETTE[i % len(PALETTE)],
        "marker": MARKERS[(i // len(PALETTE)) % len(MARKERS)],
        "linestyle": LINESTYLES[(i // len(PALETTE)) % len(LINESTYLES)],
    }


def target_styles(targets: list[str]) -> dict[str, dict[str, Any]]:
    return {t: style(i) for i, t in enumerate(sorted(set(targets)))}


def _finish(fig: Figure, ax_list: list[Any], title: str, synthetic: bool, legend: bool = True) -> Figure:
    fig.suptitle(title + (" [synthetic]" if synthetic else ""), fontsize=11)
    if legend:
        handles, labels = [], []
        for ax in ax_list:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels and not lab.startswith("_"):
                    handles.append(h)
                    labels.append(lab)
        if handles:
            ncol = 1 if len(labels) <= 14 else 2
            fig.legend(
                handles,
                labels,
                loc="upper left",
                bbox_to_anchor=(1.0, 0.92),
                fontsize=7,
                ncol=ncol,
                frameon=False,
            )
    if synthetic:
        fig.text(0.01, 0.005, SYNTHETIC_NOTE, fontsize=7, style="italic", ha="left", va="bottom")
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    return fig


def _empty(ax: Any, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, fontsize=9, wrap=True)
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


def _quality_scatter(
    summary: pd.DataFrame, xcol: str, xlabel: str, title: str, err: tuple[str, str] | None
) -> Figure:
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    synthetic = bool(summary["synthetic"].any())
    s = summary[summary["clip_mean"].notna() & summary[xcol].notna()].reset_index(drop=True)
    hidden = len(summary) - len(s)
    if s.empty:
        _empty(
            ax,
            f"No group has both a CLIP score and {xlabel}\n(run `bench score RUN_DIR` for CLIP; unknown costs stay unknown)",
        )
        return _finish(fig, [ax], title, synthetic, legend=False)
    styles = target_styles(list(summary["target"]))
    for target, grp in s.groupby("target", sort=True):
        st = styles[str(target)]
        yerr = np.vstack([grp["clip_mean"] - grp["clip_ci_low"], grp["clip_ci_high"] - grp["clip_mean"]])
        xerr = None
        if err is not None:
            xerr = np.vstack([grp[xcol] - grp[err[0]], grp[err[1]] - grp[xcol]])
        ax.errorbar(
            grp[xcol],
            grp["clip_mean"],
            yerr=np.nan_to_num(yerr),
            xerr=None if xerr is None else np.nan_to_num(xerr),
            fmt=st["marker"],
            color=st["color"],
            label=str(target),
            alpha=0.85,
            capsize=2,
            markersize=6,
        )
    x, y = s[xcol].to_numpy(float), s["clip_mean"].to_numpy(float)
    front = pareto_front(x, y)
    ax.step(x[front], y[front], where="post", color="black", linewidth=1.2, label="Pareto frontier")
    for i in front[:12]:
        ax.annotate(
            str(s.loc[i, "group"]), (x[i], y[i]), textcoords="offset points", xytext=(4, 4), fontsize=6
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("CLIP score (mean, 95% CI over prompts)")
    ax.grid(alpha=0.3)
    if hidden:
        ax.text(
            0.99,
            0.01,
            f"{hidden} group(s) not shown: unknown cost or no CLIP score",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
        )
    return _finish(fig, [ax], title, synthetic)


def quality_vs_cost(summary: pd.DataFrame) -> Figure:
    return _quality_scatter(
        summary,
        "cost_per_1k_usd",
        "cost per 1,000 images (USD)",
        "Quality vs cost, with the Pareto frontier",
        None,
    )


def quality_vs_latency(summary: pd.DataFrame) -> Figure:
    return _quality_scatter(
        summary,
        "latency_p90_s",
        "p90 latency (s, 95% CI)",
        "Quality vs p90 latency, with the Pareto frontier",
        ("latency_p90_ci_low", "latency_p90_ci_high"),
    )


def latency_ecdf(records: pd.DataFrame) -> Figure:
    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    ok = records[(records["status"] == "ok") & records["latency_s"].notna()]
    synthetic = bool(records["synthetic"].fillna(False).any())
    if ok.empty:
        _empty(ax, "No successful requests: no latencies")
        return _finish(fig, [ax], "Latency distribution per target (ECDF)", synthetic, legend=False)
    styles = target_styles(list(ok["target"]))
    for target, grp in ok.groupby("target", sort=True):
        st = styles[str(target)]
        v = np.sort(grp["latency_s"].to_numpy(float))
        ax.step(
            v,
            np.arange(1, len(v) + 1) / len(v),
            where="post",
            color=st["color"],
            linestyle=st["linestyle"],
            label=f"{target} (n={len(v)})",
        )
    ax.set_xlabel("end-to-end latency per image (s)")
    ax.set_ylabel("fraction of requests ≤ latency")
    ax.axhline(0.9, color="gray", linewidth=0.6, linestyle=":")
    ax.grid(alpha=0.3)
    return _finish(fig, [ax], "Latency distribution per target (ECDF)", synthetic)


def clip_vs_params(records: pd.DataFrame) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.5), sharey=True)
    ok = (
        records[(records["status"] == "ok") & records["clip_score"].notna()]
        if "clip_score" in records
        else records.iloc[:0]
    )
    synthetic = bool(records["synthetic"].fillna(False).any())
    styles = target_styles(list(records["target"]))
    for ax, param, unit in ((axes[0], "steps", "inference steps"), (axes[1], "guidance", "guidance scale")):
        sub = ok[ok[param].notna()]
        if sub.empty:
            _empty(ax, f"No CLIP scores with {param} sent")
            continue
        means = sub.groupby(["target", param])["clip_score"].mean().reset_index()
        for target, grp in means.groupby("target", sort=True):
            st = styles[str(target)]
            ax.plot(
                grp[param],
                grp["clip_score"],
                color=st["color"],
                marker=st["marker"],
                linestyle=st["linestyle"],
                label=str(target),
            )
        ax.set_xlabel(unit)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("CLIP score (mean over prompts, seeds, other settings)")
    return _finish(fig, list(axes), "CLIP score against steps and guidance, per model", synthetic)


def cost_per_1k(summary: pd.DataFrame) -> Figure:
    n = len(summary)
    fig, ax = plt.subplots(figsize=(8.5, max(2.5, 0.28 * n + 1.2)))
    synthetic = bool(summary["synthetic"].any())
    styles = target_styles(list(summary["target"]))
    y = np.arange(n)
    values = summary["cost_per_1k_usd"].to_numpy(float)
    colors = [styles[str(t)]["color"] for t in summary["target"]]
    ax.barh(y, np.nan_to_num(values), color=colors)
    for yi, v in zip(y, values, strict=True):
        ax.text(
            0.0 if np.isnan(v) else float(v),
            float(yi),
            " unknown" if np.isnan(v) else f" ${v:,.2f}",
            va="center",
            fontsize=7,
        )
    ax.set_yticks(y, [str(g) for g in summary["group"]], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("USD per 1,000 images (unknown = no price and none reported)")
    ax.grid(alpha=0.3, axis="x")
    return _finish(fig, [ax], "Cost per 1,000 images", synthetic, legend=False)


def failure_rates(records: pd.DataFrame) -> Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.5))
    attempted = records[records["status"] != "skipped"]
    synthetic = bool(records["synthetic"].fillna(False).any())
    for ax, col, name in ((axes[0], "provider", "provider"), (axes[1], "category", "prompt category")):
        sub = attempted.assign(**{col: attempted[col].fillna("(none)")})
        if sub.empty:
            _empty(ax, "No attempted requests")
            continue
        rates = sub.groupby(col).agg(
            error=("status", lambda s: float((s == "error").mean())),
            refused=("status", lambda s: float((s == "refused").mean())),
            n=("status", "size"),
        )
        y = np.arange(len(rates))
        ax.barh(y - 0.2, 100 * rates["error"], height=0.4, color=PALETTE[0], label="error rate")
        ax.barh(
            y + 0.2, 100 * rates["refused"], height=0.4, color=PALETTE[1], label="refusal rate", hatch="//"
        )
        ax.set_yticks(y, [f"{i} (n={n})" for i, n in zip(rates.index, rates["n"], strict=True)], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, max(5.0, 100 * float(rates[["error", "refused"]].to_numpy().max()) * 1.15))
        ax.set_xlabel(f"% of attempted requests, by {name}")
        ax.grid(alpha=0.3, axis="x")
    return _finish(fig, list(axes), "Error and refusal rates", synthetic)


PLOTS: dict[str, tuple[str, Callable[[pd.DataFrame, pd.DataFrame], Figure]]] = {
    "quality_vs_cost": ("Quality vs cost", lambda s, r: quality_vs_cost(s)),
    "quality_vs_latency": ("Quality vs p90 latency", lambda s, r: quality_vs_latency(s)),
    "latency_ecdf": ("Latency ECDF", lambda s, r: latency_ecdf(r)),
    "clip_vs_params": ("CLIP vs steps and guidance", lambda s, r: clip_vs_params(r)),
    "cost_per_1k": ("Cost per 1,000 images", lambda s, r: cost_per_1k(s)),
    "failure_rates": ("Error and refusal rates", lambda s, r: failure_rates(r)),
}


def write_plots(summary: pd.DataFrame, records: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """Every plot as out_dir/<name>.png and .svg; returns name -> SVG path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    with plt.rc_context({"svg.fonttype": "none", "figure.dpi": 100}):
        for name, (_, make) in PLOTS.items():
            fig = make(summary, records)
            try:
                fig.savefig(out_dir / f"{name}.png", dpi=120, bbox_inches="tight")
                fig.savefig(out_dir / f"{name}.svg", bbox_inches="tight")
            finally:
                plt.close(fig)
            written[name] = out_dir / f"{name}.svg"
    return written

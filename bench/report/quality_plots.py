"""Cost against latency: the trade-off every run measures, and all a report can show without a quality signal."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench.report.plot_base import empty, finish, group_numbers, pareto_front
from bench.report.plot_style import Caveats, cluster, place_labels, ranges, target_styles


def cost_vs_latency(summary: pd.DataFrame, caveats: Caveats) -> Figure:
    """p90 latency against cost per 1,000 images; the frontier joins the groups no other is both faster and cheaper than."""
    fig, ax = plt.subplots(figsize=(9.0, 5.5))
    s = summary.assign(_num=group_numbers(summary))
    s = s[s["latency_p90_s"].notna() & s["cost_per_1k_usd"].notna()].reset_index(drop=True)
    if s.empty:
        empty(ax, "No group has both a known cost and a latency")
        return finish(fig, "Cost vs p90 latency", caveats)
    styles = target_styles(summary["target"])
    for target, grp in s.groupby("target", sort=True):
        st = styles[str(target)]
        ax.scatter(grp["latency_p90_s"], grp["cost_per_1k_usd"], marker=st["marker"], color=st["color"],
                   label=str(target), alpha=0.85)  # fmt: skip
    x, y = s["latency_p90_s"].to_numpy(float), s["cost_per_1k_usd"].to_numpy(float)
    front = pareto_front(x, -y)  # lower latency and lower cost are both better
    ax.step(x[front], y[front], where="post", color="black", linewidth=1.2,
            label=f"frontier: no group both faster and cheaper ({len(front)})")  # fmt: skip
    ax.set_xlabel("p90 latency (s)")
    ax.set_ylabel("cost per 1,000 images (USD)")
    ax.set_ylim(bottom=min(0.0, float(np.nanmin(y))))
    ax.grid(alpha=0.3)
    has_quality = summary.attrs.get("quality_axis") is not None
    title = "Cost vs p90 latency" + ("" if has_quality else " (no quality signal in this run)")
    out = finish(fig, title, caveats, legend_axes=[ax])
    # Numbers where they overlap nothing; points on one spot share one label ("7-8").
    nums = s["_num"].to_numpy(int)
    place_labels(fig, ax, [(float(x[g[0]]), float(y[g[0]]), ranges([int(nums[i]) for i in g]))
                           for g in cluster(ax, x, y)])  # fmt: skip
    return out

"""Per-group summary of records.parquet, as a DataFrame and as a terminal table."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bench.store import RECORDS

DEFAULT_GROUP_KEYS = ("target", "steps", "guidance", "size")


def load_records(run_dir: Path) -> pd.DataFrame:
    path = run_dir / RECORDS
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run_dir} a run folder (made by `bench run`)?")
    return pd.read_parquet(path)


def summarize(records: pd.DataFrame, group_keys: Sequence[str] = DEFAULT_GROUP_KEYS) -> pd.DataFrame:
    """One row per group: counts, rates, latency percentiles, cost and mean CLIP score.

    Groups key on NaN too (a model without steps has steps=NaN), so `dropna=False`.
    Percentiles use ok rows only: a refusal's latency is not an image's latency.
    """
    keys = [k for k in group_keys if k in records.columns]
    rows = []
    for key, group in records.groupby(keys, dropna=False, sort=True):
        key_tuple = key if isinstance(key, tuple) else (key,)
        attempted = group[group["status"] != "skipped"]
        ok = attempted[attempted["status"] == "ok"]
        n_attempted = len(attempted)
        latency = ok["latency_s"].to_numpy(dtype=float)
        cost = ok["cost_usd"].to_numpy(dtype=float)
        clip = ok["clip_score"].to_numpy(dtype=float) if "clip_score" in ok else np.array([])
        row = dict(zip(keys, key_tuple, strict=True))
        row.update(
            n=len(group),
            n_ok=len(ok),
            ok_rate=len(ok) / n_attempted if n_attempted else np.nan,
            refusal_rate=float((attempted["status"] == "refused").mean()) if n_attempted else np.nan,
            error_rate=float((attempted["status"] == "error").mean()) if n_attempted else np.nan,
            latency_p50_s=float(np.percentile(latency, 50)) if latency.size else np.nan,
            latency_p90_s=float(np.percentile(latency, 90)) if latency.size else np.nan,
            # Unknown cost stays unknown: a group with any unpriced image has no mean cost.
            cost_per_image_usd=float(cost.mean()) if cost.size and not np.isnan(cost).any() else np.nan,
            clip_mean=float(np.nanmean(clip)) if clip.size and not np.isnan(clip).all() else np.nan,
            synthetic=bool(group["synthetic"].any()) if "synthetic" in group else False,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def format_table(summary: pd.DataFrame) -> str:
    """A plain-text table (no colour codes) that reads the same in a terminal and a CI log."""
    if summary.empty:
        return "(no records)"
    shown = summary.copy()
    for col in ("ok_rate", "refusal_rate", "error_rate"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{100 * v:.0f}%")
    for col in ("latency_p50_s", "latency_p90_s"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v:.3f}")
    if "cost_per_image_usd" in shown:
        shown["cost_per_image_usd"] = shown["cost_per_image_usd"].map(
            lambda v: "unknown" if pd.isna(v) else f"${v:.4f}"
        )
    if "clip_mean" in shown:
        shown["clip_mean"] = shown["clip_mean"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    for col in ("steps", "guidance"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: "default" if pd.isna(v) else f"{v:g}")
    shown = shown.drop(columns=[c for c in ("synthetic", "error_rate") if c in shown])
    text = shown.to_string(index=False)
    if summary.get("synthetic", pd.Series(dtype=bool)).any():
        text += (
            "\n(synthetic: images from the offline `local` generator are drawings, not a real model's output)"
        )
    return text

"""Per-group summary of records.parquet (+ metrics.parquet), as a DataFrame and as a terminal table.

A group is a target and a parameter setting (steps, guidance, size). Intervals
come from bench.stats: CLIP means get the studentized bootstrap resampling whole
prompts (images of one prompt are not independent); latency percentiles get the
order-statistic (binomial) interval, whose upper bound is +inf when the group is
too small to bound a tail percentile (at 95%, a p90 needs 36 requests, a p99
368). Unknown numbers (cost without a price, unscored CLIP) stay NaN and print
as "unknown" / "-", never as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench import stats
from bench.group_names import DEFAULT_GROUP_KEYS as DEFAULT_GROUP_KEYS
from bench.group_names import group_label as group_label
from bench.report.runs import RunSet

if TYPE_CHECKING:
    from bench.arena.ratings import ArenaRatings

METRIC_COLUMNS = ("fid", "kid_mean", "kid_std", "n_reference", "reference_id", "fid_fingerprint")
# Preference models and the VLM judge, per group from metrics.parquet (bench/metrics/quality.py).
QUALITY_METRIC_COLUMNS = (
    *tuple(
        f"{m}_{s}"
        for m in ("pickscore", "hpsv2", "judge_adherence", "judge_rubric")
        for s in ("mean", "ci_low", "ci_high", "n")
    ),
    "pickscore_fingerprint",
    "hpsv2_fingerprint",
    "judge_fingerprint",
    "judge_cost_usd",
)
SUMMARY_FILE = "summary.parquet"


@dataclass(frozen=True)
class StatsSettings:
    n_boot: int = 1000
    confidence: float = 0.95
    seed: int = 0
    # Replayed (cached) rows carry another run's latency: left out of latency statistics unless asked.
    include_cached_latency: bool = False


def load_records(run_dir: Path) -> pd.DataFrame:
    """records.parquet of a run folder, or of every run of a sweep folder, concatenated."""
    return RunSet.load(run_dir).records


def _cost(cost: np.ndarray[Any, np.dtype[np.float64]]) -> float:
    # Unknown cost stays unknown: a group with any unpriced image has no mean cost.
    return float(cost.mean()) if cost.size and not np.isnan(cost).any() else float("nan")


def requests_of(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per request (a request with k images has k ok rows): the counting unit of rates."""
    if "request_key" not in rows or rows.empty:
        return rows
    return rows.drop_duplicates(subset="request_key", keep="last")


def finish_times(rows: pd.DataFrame) -> pd.Series:
    """started_at + latency (UTC) per row; NaT where either is unknown."""
    start = pd.to_datetime(rows["started_at"], utc=True)
    return start + pd.to_timedelta(rows["latency_s"].astype(float), unit="s")


def live_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows this run actually sent (not replayed from the response cache)."""
    if "cached" not in rows:
        return rows
    return rows[~rows["cached"].fillna(False).astype(bool)]


def live_throughput(records: pd.DataFrame) -> float:
    """Requests finished per wall-clock second: finished requests over the time from the first
    start to the last finish, summed over runs (a sweep's runs are sequential, so their idle gaps
    between jobs do not count). NaN when no request has a start and a latency."""
    att = requests_of(live_rows(records[records["status"] != "skipped"]))
    if att.empty or "started_at" not in att:
        return float("nan")
    runs = att.groupby("run_path", dropna=False) if "run_path" in att else [("", att)]
    finished, span = 0, 0.0
    for _, rows in runs:
        known = rows[rows["started_at"].notna() & rows["latency_s"].notna()]
        if known.empty:
            continue
        end = finish_times(known).max()
        begin = pd.to_datetime(known["started_at"], utc=True).min()
        finished += len(known)
        span += float((end - begin).total_seconds())
    return finished / span if span > 0 else float("nan")


def _group_row(group: pd.DataFrame, st: StatsSettings) -> dict[str, Any]:
    attempted = group[group["status"] != "skipped"]
    ok = attempted[attempted["status"] == "ok"]
    requests = requests_of(attempted)
    n_req = len(requests)
    attempts = requests["attempts"].astype(float) if "attempts" in requests else pd.Series(dtype=float)
    timed = ok if st.include_cached_latency else live_rows(ok)
    latency = timed["latency_s"].to_numpy(dtype=float)
    lat = stats.percentile_ci(
        latency, (50.0, 90.0, 99.0), n_boot=st.n_boot, confidence=st.confidence, seed=st.seed
    )
    clip_values = ok["clip_score"].to_numpy(dtype=float) if "clip_score" in ok else np.array([])
    clip = stats.bootstrap_ci(
        clip_values,
        n_boot=st.n_boot,
        confidence=st.confidence,
        seed=st.seed,
        clusters=ok["prompt_id"].astype(str).to_numpy() if len(ok) else None,
    )
    fps = sorted({str(f) for f in ok.get("clip_fingerprint", pd.Series(dtype=object)).dropna()})
    busy_s = float(np.nansum(latency))
    cost = _cost(ok["cost_usd"].to_numpy(dtype=float))
    status = requests["status"]
    # Shares get Clopper-Pearson intervals over requests, prompts as clusters (bench.stats.share_ci).
    prompts = requests["prompt_id"].astype(str).to_numpy() if "prompt_id" in requests else None
    ok_ci = stats.share_ci(
        np.asarray(status == "ok", dtype=np.float64), confidence=st.confidence, clusters=prompts
    )
    refused_ci = stats.share_ci(
        np.asarray(status == "refused", dtype=np.float64), confidence=st.confidence, clusters=prompts
    )
    poll = group.get("poll_interval_s", pd.Series(dtype=float)).astype(float)
    row: dict[str, Any] = {
        "provider": str(group["provider"].iloc[0]),
        "model": str(group["model"].iloc[0]),
        "synthetic": bool(group["synthetic"].fillna(False).any()),
        "emulated": bool(group.get("emulated", pd.Series(dtype=bool)).fillna(False).astype(bool).any()),
        # n: requests sent (skipped ones are not); images: what came back. Rates are per request.
        "n": n_req,
        "n_ok": int((status == "ok").sum()),
        "n_images": len(ok),
        "n_prompts": int(ok["prompt_id"].nunique()),
        "ok_rate": float((status == "ok").mean()) if n_req else np.nan,
        "refusal_rate": float((status == "refused").mean()) if n_req else np.nan,
        "ok_rate_ci_low": ok_ci.low,
        "ok_rate_ci_high": ok_ci.high,
        "refusal_rate_ci_low": refused_ci.low,
        "refusal_rate_ci_high": refused_ci.high,
        "error_rate": float((status == "error").mean()) if n_req else np.nan,
        "skipped": int(requests_of(group[group["status"] == "skipped"]).shape[0]),
        # Requests replayed from the response cache (counted in n; their latency is another run's).
        "n_cached": n_req - len(requests_of(live_rows(attempted))),
        "retries": int((attempts - 1).clip(lower=0).sum()) if n_req else 0,
        "retry_rate": float((attempts > 1).mean()) if n_req else np.nan,
        "mean_attempts": float(attempts.mean()) if n_req else np.nan,
        # 1 / mean latency: one request stream's pace, not what the target delivered (see
        # live_req_per_s for that).
        "stream_img_per_s": len(timed) / busy_s if busy_s > 0 else np.nan,
        "poll_interval_max_s": float(poll.max()) if poll.notna().any() else np.nan,
        "cost_per_image_usd": cost,
        "cost_per_1k_usd": cost * 1000.0,
        "clip_mean": clip.estimate,
        "clip_ci_low": clip.low,
        "clip_ci_high": clip.high,
        "clip_n": clip.n,
        "clip_fingerprint": fps[0] if len(fps) == 1 else (";".join(fps) if fps else None),
    }
    for q, name in ((50.0, "p50"), (90.0, "p90"), (99.0, "p99")):
        iv = lat[q]
        row[f"latency_{name}_s"] = iv.estimate
        row[f"latency_{name}_ci_low"] = iv.low
        row[f"latency_{name}_ci_high"] = iv.high
    return row


def summarize(
    records: pd.DataFrame,
    group_keys: Sequence[str] = DEFAULT_GROUP_KEYS,
    *,
    metrics: pd.DataFrame | None = None,
    settings: StatsSettings | None = None,
) -> pd.DataFrame:
    """One row per group: counts, rates, latency percentiles with CIs, throughput, cost, CLIP with CI,
    and FID/KID and fingerprints from metrics.parquet when given.

    Groups key on NaN too (a model without steps has steps=NaN), so `dropna=False`.
    Percentiles use ok rows only: a refusal's latency is not an image's latency.
    `stream_img_per_s` is one request stream's pace (ok images per second of summed
    latency, 1 / mean latency). `live_req_per_s` is what the target delivered: its
    requests finished per wall-clock second (from started_at and latency), per target,
    not per group, because a sweep's groups of one target run interleaved.
    """
    st = settings or StatsSettings()
    keys = [k for k in group_keys if k in records.columns]
    rows = []
    for key, group in records.groupby(keys, dropna=False, sort=True):
        key_tuple = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(keys, key_tuple, strict=True))
        row["group"] = group_label(row)
        row.update(_group_row(group, st))
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    if "target" in records:
        live = {str(t): live_throughput(g) for t, g in records.groupby("target", sort=False)}
        out["live_req_per_s"] = [live.get(str(t), np.nan) for t in out["target"]]
    out = _attach_metrics(out, keys, metrics)
    return out


def _attach_metrics(summary: pd.DataFrame, keys: list[str], metrics: pd.DataFrame | None) -> pd.DataFrame:
    """FID/KID columns from metrics.parquet, joined on the group keys (NaN keys match NaN)."""
    if metrics is None or metrics.empty or not set(keys) <= set(metrics.columns):
        for col in METRIC_COLUMNS:
            summary[col] = np.nan if col not in ("reference_id", "fid_fingerprint") else None
        return summary
    cols = [c for c in (*METRIC_COLUMNS, *QUALITY_METRIC_COLUMNS) if c in metrics.columns]
    right = metrics[[*keys, *cols]].drop_duplicates(subset=keys)
    merged = summary.merge(right, on=keys, how="left")
    for col in METRIC_COLUMNS:
        if col not in merged:
            merged[col] = np.nan
    return merged


def summarize_runs(
    runs: RunSet, settings: StatsSettings | None = None, *, arena: ArenaRatings | None = None
) -> pd.DataFrame:
    """summarize() plus the arena columns (arena_elo with its interval, arena_votes) from the folder's
    votes.jsonl files (or from `arena`, already computed)."""
    from bench.arena.report import arena_ratings, attach_arena

    st = settings or StatsSettings()
    summary = summarize(runs.records, metrics=runs.metrics, settings=st)
    if arena is None:
        arena = arena_ratings(runs, n_boot=st.n_boot, confidence=st.confidence, seed=st.seed)
    return attach_arena(summary, arena, [k for k in DEFAULT_GROUP_KEYS if k in summary.columns])


def _fmt(v: Any, spec: str, missing: str = "-") -> str:
    return missing if v is None or pd.isna(v) else format(v, spec)


TABLE_WIDTH = 120  # the terminal table fits a 120-column terminal (columns are dropped, never names cut)


def _pct(v: Any) -> str:
    return _fmt(100 * v, ".0f") + "%" if not pd.isna(v) else "-"


def _interval_text(s: pd.DataFrame, column: str, low: str, high: str, spec: str) -> list[str]:
    lows = s[low] if low in s else pd.Series(np.nan, index=s.index)
    highs = s[high] if high in s else pd.Series(np.nan, index=s.index)
    return [
        "-" if pd.isna(m) else (f"{m:{spec}}" + ("" if pd.isna(lo) else f" [{lo:{spec}}, {hi:{spec}}]"))
        for m, lo, hi in zip(s[column], lows, highs, strict=True)
    ]


def format_table(summary: pd.DataFrame, signal: str | None = None, *, emulated_judge: bool = False) -> str:
    """A plain-text table (no colour codes) that reads the same in a terminal and a CI log, at most
    120 columns wide. `signal`: the quality signal the verdict rests on (bench.decide.signals name),
    shown with its interval; without one, CLIP when it has values. Groups are named by their label."""
    from bench.decide.signals import AXES, SHORT_NAME

    if summary.empty:
        return "(no records)"
    s = summary
    zero = pd.Series(0, index=s.index)
    cols: dict[str, Any] = {
        "group": s["group"] if "group" in s else s["target"].astype(str),
        "requests": s["n"],
    }
    optional: list[str] = []  # dropped last-first while the table is too wide
    images = s.get("n_images", s["n"])
    for count, values in (("images", images), ("skipped", s.get("skipped", zero)),
                          ("retries", s.get("retries", zero)), ("replayed", s.get("n_cached", zero))):  # fmt: skip
        if (count == "images" and (values != s["n"]).any()) or (
            count != "images" and (values.fillna(0) != 0).any()
        ):
            cols[count] = values
    cols["ok"] = s["ok_rate"].map(_pct)
    cols["refused"] = s["refusal_rate"].map(_pct)
    cols["p50 s"] = s["latency_p50_s"].map(lambda v: _fmt(v, ".3f"))
    cols["p90 s"] = s["latency_p90_s"].map(lambda v: _fmt(v, ".3f"))
    if "live_req_per_s" in s:
        cols["target req/s"] = s["live_req_per_s"].map(lambda v: _fmt(v, ".2f"))
        optional.append("target req/s")
    cols["$/1k img"] = s["cost_per_image_usd"].map(lambda v: _fmt(1000 * v, ".2f", "unknown"))
    name = (
        signal if signal in AXES else ("clip" if "clip_mean" in s and s["clip_mean"].notna().any() else None)
    )
    if name is not None and AXES[name][0] in s:
        column, low, high = AXES[name][:3]
        spec = ".0f" if name == "arena_elo" else (".1f" if name == "fid" else ".3g")
        head = SHORT_NAME[name] + ("*" if emulated_judge and name.startswith("judge_") else "") + " [95% CI]"
        cols[head] = _interval_text(s, column, low or f"{column}_low", high or f"{column}_high", spec)
    if name != "clip" and "clip_mean" in s and s["clip_mean"].notna().any():
        cols["CLIP [95% CI]"] = _interval_text(s, "clip_mean", "clip_ci_low", "clip_ci_high", ".2f")
        optional.insert(0, "CLIP [95% CI]")
    if "fid" in s and s["fid"].notna().any() and name != "fid":
        cols["FID"] = s["fid"].map(lambda v: _fmt(v, ".1f"))
        optional.insert(0, "FID")
    optional.append("p50 s")
    shown = pd.DataFrame(cols)
    while optional and max(len(line) for line in shown.to_string(index=False).splitlines()) > TABLE_WIDTH:
        shown = shown.drop(columns=[optional.pop()])
    text = shown.to_string(index=False)
    if emulated_judge and name is not None and name.startswith("judge_"):
        text += "\n(* emulated judge: the chat emulator measuring pixels stands in for a VLM; not a model's opinion)"
    if summary.get("synthetic", pd.Series(dtype=bool)).any():
        text += (
            "\n(synthetic: images from the offline `local` generator are drawings, not a real model's output)"
        )
    if summary.get("emulated", pd.Series(dtype=bool)).any():
        text += (
            "\n(emulated: some targets answered from a protocol emulator on this machine, not the provider)"
        )
    polled = summary.get("poll_interval_max_s", pd.Series(dtype=float)).dropna()
    if not polled.empty:
        text += (
            f"\n(latency of polled targets is measured by polling, to within {polled.max():g} s: "
            "the last poll interval)"
        )
    fps = summary.get("clip_fingerprint", pd.Series(dtype=object)).dropna()
    if any("random-init" in str(f) for f in fps):
        text += "\n(CLIP scores come from RANDOM-INIT weights: fine for tests, meaningless as quality)"
    return text

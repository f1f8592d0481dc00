"""Write a folder's report: summary.parquet, plots/ (PNG + SVG) and report.html.

Entry point for `bench report PATH` and the end of `bench run`:
`write_report(path, report_cfg)`. PATH is a run folder or a sweep folder
(Hydra multirun); a sweep's runs are merged into one report at its root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.arena.agreement import Agreement, preferred_signal
from bench.arena.agreement_report import agreement_html, folder_agreement, gold_html, preference_line
from bench.arena.report import arena_html, arena_ratings
from bench.cache import format_age
from bench.decide.io import write_verdict
from bench.decide.trace import adaptive_trace, trace_html
from bench.decide.verdict import Verdict
from bench.report.html import render_report
from bench.report.plots import write_plots
from bench.report.quality import axis_note, axis_of, choose_axis, plotted, self_referenced
from bench.report.runs import RunSet
from bench.report.summary import SUMMARY_FILE, StatsSettings, summarize_runs
from bench.report.verdict import folder_verdict
from bench.report.verdict_html import verdict_html

REPORT_FILE = "report.html"
PLOTS_DIR = "plots"


@dataclass(frozen=True)
class ReportOutput:
    root: Path
    summary: pd.DataFrame
    summary_path: Path
    html_path: Path
    plots: dict[str, Path]
    verdict: Verdict
    verdict_path: Path
    agreement: Agreement | None = None  # the automated signals against the votes (None: no votes)


def stats_settings(cfg: Mapping[str, Any] | None) -> StatsSettings:
    cfg = cfg or {}
    return StatsSettings(
        n_boot=int(cfg.get("n_boot", 1000)),
        confidence=float(cfg.get("confidence", 0.95)),
        seed=int(cfg.get("seed", 0)),
        include_cached_latency=bool(cfg.get("include_cached_latency", False)),
    )


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _notes(runs: RunSet, include_cached_latency: bool = False) -> list[str]:
    notes = [f"{len(runs.records)} records from {len(runs.run_dirs)} run(s) under {runs.root}"]
    records = runs.records
    if "cached" in records and records["cached"].fillna(False).astype(bool).any():
        replays = records[records["cached"].fillna(False).astype(bool)]
        replayed = replays["request_key"].nunique()
        how = "included in" if include_cached_latency else "left out of"
        ages = pd.to_numeric(replays.get("cache_age_s", pd.Series(dtype=float))).dropna()
        oldest = f", the oldest {format_age(float(ages.to_numpy().max()))} old" if len(ages) else ""
        notes.append(
            f"{replayed} request(s) were replayed from the response cache{oldest} (column `replayed`): not sent "
            f"again, their cost is the original's, and their latencies are {how} the latency statistics "
            "(report.include_cached_latency)."
        )
    if runs.clip_fingerprint:
        notes.append(f"CLIP fingerprint: {runs.clip_fingerprint}")
        if "random-init" in runs.clip_fingerprint:
            notes.append(
                "CLIP weights are RANDOM-INIT: the scores exercise the pipeline and mean nothing as quality."
            )
    else:
        notes.append("No CLIP scores (run `bench score RUN_DIR`).")
    if runs.fid_fingerprint:
        notes.append(f"FID/KID fingerprint: {runs.fid_fingerprint}")
    return notes


def write_report(path: Path, cfg: Mapping[str, Any] | None = None) -> ReportOutput:
    """Summarise the run or sweep at `path` and write summary.parquet, plots/ and report.html there."""
    cfg = cfg or {}
    runs = RunSet.load(Path(path))
    st = stats_settings(cfg)
    exclude_flagged = bool(cfg.get("arena_exclude_flagged", False))
    arena = arena_ratings(
        runs, n_boot=st.n_boot, confidence=st.confidence, seed=st.seed, exclude_flagged=exclude_flagged
    )
    summary = summarize_runs(runs, st, arena=arena)
    root = runs.root
    summary_path = root / SUMMARY_FILE
    tmp = summary_path.with_name(f".{SUMMARY_FILE}.{os.getpid()}.tmp")
    summary.to_parquet(tmp, index=False)
    os.replace(tmp, summary_path)
    wanted = str(cfg.get("quality_metric", "auto"))
    agreement = folder_agreement(
        runs, n_boot=st.n_boot, confidence=st.confidence, seed=st.seed, exclude_flagged=exclude_flagged
    )
    trusted = preferred_signal(agreement)
    preferred = trusted.signal if trusted else ""
    verdict = folder_verdict(runs, summary, cfg, arena=arena)
    verdict_path = write_verdict(root, verdict)
    # The plots' quality axis is the verdict's signal; without one, the best available (it may be one
    # the verdict refused, e.g. random-init CLIP asked for by name: plotted, never decided on).
    axis = (
        axis_of(summary, verdict.signal)
        if verdict.signal
        else choose_axis(summary, wanted, self_reference=self_referenced(runs.metrics), preferred=preferred)
    )
    why = ""
    if axis is not None and wanted == "auto" and axis.name == preferred:
        why = preference_line(agreement)
    label = axis.label if axis else ""  # axis_of names an emulated judge as such
    svgs = write_plots(
        marked(plotted(summary, axis), verdict) if axis else summary,
        runs.records,
        root / PLOTS_DIR,
        ("_quality", "_quality_low", "_quality_high", label) if axis else None,
        per_image=(verdict_signal_column(verdict, axis.name if axis else ""), label),
    )
    title = f"t2i-bench report: {root.resolve().name}"
    page = render_report(
        title,
        summary,
        runs.records,
        svgs,
        root=root,
        notes=[
            axis_note(summary, wanted, axis, why),
            *_notes(runs, stats_settings(cfg).include_cached_latency),
        ],
        max_per_cell=int(cfg.get("max_images_per_cell", 4)),
        extra_sections=trace_html(adaptive_trace(root))
        + arena_html(arena)
        + gold_html(runs, exclude_flagged)
        + agreement_html(agreement),
        verdict_section=verdict_html(verdict),
        quality_columns=(axis.column,) if axis else (),
    )
    html_path = root / REPORT_FILE
    _atomic_write_text(html_path, page)
    return ReportOutput(root, summary, summary_path, html_path, dict(svgs), verdict, verdict_path, agreement)


def marked(summary: pd.DataFrame, verdict: Verdict) -> pd.DataFrame:
    """`_verdict` per group for the plots: recommended, non-inferior, or ""."""
    roles = {g: "non-inferior" for g in verdict.non_inferior}
    if verdict.recommended:
        roles[verdict.recommended] = "recommended"
    return summary.assign(_verdict=[roles.get(str(g), "") for g in summary["group"]])


def verdict_signal_column(verdict: Verdict, axis_name: str) -> str:
    """The per-image records column of the report's quality signal ("" for group-level ones)."""
    from bench.decide.signals import PER_IMAGE_COLUMN

    return PER_IMAGE_COLUMN.get(verdict.signal or axis_name, "")

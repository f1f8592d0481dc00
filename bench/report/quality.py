"""The quality axis of a report: which signal the frontier plots and the notebook's pick use.

`report.quality_metric` names it (clip, pickscore, hpsv2, judge_adherence, judge_rubric,
arena_elo, fid, kid); `auto` (the default) takes the best signal the run has, in the
order of QUALITY_ORDER: human votes first, then the judge, preference models, CLIP with
real weights, and KID/FID against an independent reference. Signals that would mislead
are never picked automatically: random-init CLIP (its scores mean nothing) and FID/KID
against one of the run's own targets (that measures likeness to the reference target,
not quality), though either can be chosen by name. When nothing qualifies, the report
says in one line what would supply a signal and the plots show cost and latency alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.errors import ConfigError
from bench.metrics.fingerprint import is_random_init
from bench.report.quality_axes import AXES, CHOICES, QUALITY_ORDER


@dataclass(frozen=True)
class QualityAxis:
    name: str
    column: str  # the summary column plotted
    low: str  # its interval columns ("" when it has none)
    high: str
    label: str
    higher_is_better: bool = True

    def as_plot_tuple(self) -> tuple[str, str, str, str]:
        return (self.column, self.low, self.high, self.label)


NO_SIGNAL = (
    "No quality signal in this run, so the plots show cost and latency alone. To get one: rate images "
    "with `bench rate RUN_DIR`, point a VLM judge at a chat endpoint (metrics.judge.enabled=true "
    "metrics.judge.target=openai:gpt-4.1-mini, or `bench emulate chat` offline), or provide CLIP / "
    "PickScore / HPSv2 weights (metrics.clip.pretrained=/path, see the README's Quality metrics)."
)


def _interval(summary: pd.DataFrame, column: str, low: str, high: str) -> tuple[str, str]:
    """The interval columns the summary really has (arena columns may be named *_low / *_high)."""
    if low and low in summary:
        return low, high
    alt_low, alt_high = f"{column}_low", f"{column}_high"
    return (alt_low, alt_high) if alt_low in summary else ("", "")


def self_referenced(metrics: pd.DataFrame | None) -> bool:
    """True when FID/KID were computed against one of the run's own targets (`kind: target`)."""
    if metrics is None or "reference_id" not in metrics:
        return False
    return any(str(r).startswith("target:") for r in metrics["reference_id"].dropna())


def axis_of(summary: pd.DataFrame, name: str) -> QualityAxis:
    column, low, high, label, better, fp_col = AXES[name]
    low, high = _interval(summary, column, low, high)
    if fp_col == "judge_fingerprint" and fp_col in summary:
        from bench.judge.config import EMULATED_LABEL, is_emulated

        if any(is_emulated(str(f)) for f in summary[fp_col].dropna()):
            # The built-in chat emulator measured pixels: never let a plot pass that off as a VLM.
            label = label.replace("VLM judge", f"{EMULATED_LABEL} (bench emulate chat, not a VLM)")
    return QualityAxis(name, column, low, high, label, better)


def has_values(summary: pd.DataFrame, name: str) -> bool:
    column = AXES[name][0]
    return column in summary and bool(pd.to_numeric(summary[column], errors="coerce").notna().any())


def misleading(summary: pd.DataFrame, name: str, self_reference: bool) -> str:
    """Why a present signal must not be picked automatically ("" when it may)."""
    fp_col = AXES[name][5]
    if name == "clip" and fp_col in summary and any(is_random_init(str(f)) for f in summary[fp_col].dropna()):
        return "CLIP weights are random-init"
    if name in ("fid", "kid") and self_reference:
        return "the FID/KID reference is one of the run's own targets"
    return ""


def choose_axis(
    summary: pd.DataFrame, wanted: str = "auto", *, self_reference: bool = False, preferred: str = ""
) -> QualityAxis | None:
    """The axis for `report.quality_metric` (auto: the best available), or None when there is none.

    `preferred`: the automated signal the team's own votes trust (bench.arena.agreement.preferred_signal,
    enough votes and the best agreement): `auto` takes it first, ahead of the default order.
    """
    if wanted not in CHOICES:
        raise ConfigError("report.quality_metric", wanted, f"use one of {', '.join(CHOICES)}")
    if wanted != "auto":
        return axis_of(summary, wanted) if has_values(summary, wanted) else None
    if preferred and has_values(summary, preferred) and not misleading(summary, preferred, self_reference):
        return axis_of(summary, preferred)
    for name in QUALITY_ORDER:
        if has_values(summary, name) and not misleading(summary, name, self_reference):
            return axis_of(summary, name)
    return None


def axis_note(summary: pd.DataFrame, wanted: str, axis: QualityAxis | None, why: str = "") -> str:
    """The report's one line about the quality axis (`why`: the votes' reason, when they chose it)."""
    if axis is None:
        if wanted != "auto":
            return f"report.quality_metric={wanted} has no values in this run. " + NO_SIGNAL
        return NO_SIGNAL
    how = (
        "chosen by report.quality_metric"
        if wanted != "auto"
        else f"report.quality_metric=auto prefers it: {why}"
        if why
        else "the best signal available (report.quality_metric=auto)"
    )
    direction = "" if axis.higher_is_better else "; lower is better, so the frontier plots it negated"
    return f"Quality axis: {axis.label} — {how}{direction}."


def plotted(summary: pd.DataFrame, axis: QualityAxis) -> pd.DataFrame:
    """The summary with `_quality`, `_quality_low`, `_quality_high` columns, higher = better (FID/KID negated)."""
    out = summary.copy()
    sign = 1.0 if axis.higher_is_better else -1.0
    values = pd.to_numeric(out[axis.column], errors="coerce") * sign
    out["_quality"] = values
    if axis.low and axis.high:
        lo = pd.to_numeric(out[axis.low], errors="coerce") * sign
        hi = pd.to_numeric(out[axis.high], errors="coerce") * sign
        out["_quality_low"], out["_quality_high"] = np.fmin(lo, hi), np.fmax(lo, hi)
    else:
        out["_quality_low"], out["_quality_high"] = values, values
    return out

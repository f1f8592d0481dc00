"""Gate checks for the per-image quality signals beside CLIP: PickScore, HPSv2, the VLM judge.

Each is the CLIP check's rule on its own column: the interval of mean(candidate - baseline)
over matched images from a sign-flip permutation test over whole prompts (bench/permutation.py);
the check fails when the interval's upper bound lies below -max_drop. Scores are compared only
when both runs carry them under one fingerprint (same judge model and templates, same
preference-model weights); otherwise the check is refused (exit 2) or skipped with a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from bench.metrics.fingerprint import require_same

# score column -> (label, fingerprint column, default max_drop)
QUALITY_CHECKS: dict[str, tuple[str, str, float]] = {
    "pickscore": ("PickScore", "pickscore_fingerprint", 0.2),
    "hpsv2": ("HPSv2.1", "hpsv2_fingerprint", 0.005),
    "judge_adherence": ("judge adherence", "judge_fingerprint", 0.05),
    "judge_rubric": ("judge rubric", "judge_fingerprint", 0.5),
}


def max_drops(gate_cfg: Mapping[str, Any]) -> dict[str, float | None]:
    """gate.<metric>.max_drop for each signal (null: reported, never fails)."""
    out: dict[str, float | None] = {}
    for metric, (_, _, default) in QUALITY_CHECKS.items():
        block = dict(gate_cfg.get(metric) or {})
        value = block.get("max_drop", default)
        out[metric] = None if value is None else float(value)
    return out


def comparable(base: pd.DataFrame, cand: pd.DataFrame, notes: list[str]) -> tuple[list[str], dict[str, str]]:
    """The signals both runs scored under one fingerprint; raises FingerprintMismatch when they differ."""
    metrics: list[str] = []
    fps: dict[str, str] = {}
    for metric, (label, fp_col, _) in QUALITY_CHECKS.items():
        have = [metric in df and df[metric].notna().any() for df in (base, cand)]
        if not any(have):
            continue
        if not all(have):
            which = "baseline" if have[0] else "candidate"
            notes.append(
                f"only the {which} has {label} scores: that check is skipped (score both runs alike)"
            )
            continue
        values = [*base[fp_col].dropna().astype(str), *cand[fp_col].dropna().astype(str)]
        fps[metric] = require_same(values, f"{label} scores of baseline and candidate")
        metrics.append(metric)
    return metrics, fps


def paired_drop(
    gate: Any,
    target: str,
    pairs: pd.DataFrame,
    metric: str,
    max_drop: float | None,
    info: bool,
    check_cls: Any,
    column: str | None = None,
) -> Any:
    """The Check for one per-image score (`column`, default `metric`) on one target's matched pairs
    (ok in both runs, scored in both): CLIP's rule, shared by every per-image quality signal."""
    col = column or metric
    ok = pairs[(pairs["status_b"] == "ok") & (pairs["status_c"] == "ok")]
    ok = ok[ok[f"{col}_b"].notna() & ok[f"{col}_c"].notna()]
    rule = "-" if max_drop is None else f"fail if upper bound < -{max_drop:g}"
    if ok.empty:
        nan = np.nan
        return check_cls(
            target, metric, nan, nan, nan, nan, nan, False, 0, "skipped", rule, "no scored pairs"
        )
    d = gate._shift(
        ok[f"{col}_b"].to_numpy(float),
        ok[f"{col}_c"].to_numpy(float),
        ok["prompt_id"].astype(str).to_numpy(),
    )
    fail = max_drop is not None and not np.isnan(d.delta.high) and d.delta.high < -max_drop
    status = "info" if info else ("FAIL" if fail else "pass")
    return check_cls(
        target,
        metric,
        d.baseline,
        d.candidate,
        d.delta.estimate,
        d.delta.low,
        d.delta.high,
        False,
        len(ok),
        status,
        rule,
    )

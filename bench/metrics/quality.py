"""The quality signals beside CLIP: preference models (PickScore, HPSv2.1) and the VLM judge.

Called by score_run after CLIP. Each signal adds per-image columns to records.parquet
and a per-group mean with a 95% interval (bootstrap over prompts) to metrics.parquet.
A signal that cannot be computed this time (disabled, no weights, no endpoint) leaves
its stored columns as they were: re-scoring never overwrites a score with NaN.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import stats
from bench.metrics.config import MetricsConfig
from bench.records import RECORD_SCHEMA

# per-image score column -> its fingerprint column
SCORE_COLUMNS: dict[str, str] = {
    "pickscore": "pickscore_fingerprint",
    "hpsv2": "hpsv2_fingerprint",
    "judge_adherence": "judge_fingerprint",
    "judge_rubric": "judge_fingerprint",
}


@dataclass
class QualityResult:
    columns: pd.DataFrame  # aligned with the ok records; only the columns computed this pass
    fingerprints: dict[str, Any] = field(default_factory=dict)  # id -> details
    lines: list[str] = field(default_factory=list)


def write_record_columns(path: Path, columns: pd.DataFrame, positions: np.ndarray[Any, Any]) -> None:
    """Set `columns` (one value per ok row, at `positions` of the table) in records.parquet; others null."""
    table = pq.read_table(path)
    n = table.num_rows
    for col in columns.columns:
        typ = RECORD_SCHEMA.field(col).type
        values: list[Any] = [None] * n
        for pos, v in zip(positions, columns[col].tolist(), strict=True):
            values[int(pos)] = (
                None if v is None or (isinstance(v, float) and np.isnan(v) and typ != pa.float64()) else v
            )
        arr = pa.array(values, type=typ)
        idx = table.schema.get_field_index(col)
        table = table.set_column(idx, col, arr) if idx >= 0 else table.append_column(pa.field(col, typ), arr)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def score_quality(
    run_dir: Path,
    cfg: MetricsConfig,
    ok: pd.DataFrame,
    ok_positions: np.ndarray[Any, Any],
    notes: list[str],
    *,
    budget_usd: float | None = None,
) -> QualityResult:
    result = QualityResult(columns=pd.DataFrame(index=ok.index))
    if ok.empty:
        return result
    if cfg.judge.enabled:
        from bench.judge.score import judge_details, judge_images, write_answers

        cols, answers, report = judge_images(ok, run_dir, cfg.judge, cfg.resolved_cache_dir(), budget_usd)
        write_answers(run_dir, answers, ok)
        result.columns = result.columns.join(cols)
        result.fingerprints[report.fingerprint] = judge_details(cfg.judge)
        result.lines.append(report.line())
        notes.append(report.line())
    if len(result.columns.columns):
        write_record_columns(run_dir / "records.parquet", result.columns, ok_positions)
    return result


def group_means(
    rows: list[dict[str, Any]], ok: pd.DataFrame, keys: list[str], cfg: MetricsConfig
) -> list[dict[str, Any]]:
    """Add <signal>_mean / _ci_low / _ci_high / _n / _fingerprint per group row for every stored signal."""
    present = [c for c in SCORE_COLUMNS if c in ok and ok[c].notna().any()]
    if not present:
        return rows
    grouped = dict(iter(ok.groupby(keys, dropna=False, sort=True))) if keys else {(): ok}
    for row in rows:
        key = tuple(row[k] for k in keys)
        grp = _find_group(grouped, key)
        for col in present:
            values = grp[col].to_numpy(dtype=np.float64) if grp is not None else np.array([])
            ci = stats.bootstrap_ci(
                values,
                n_boot=cfg.stats.n_boot,
                confidence=cfg.stats.confidence,
                seed=cfg.stats.seed,
                clusters=grp["prompt_id"].astype(str).to_numpy() if grp is not None else None,
            )
            fps = sorted({str(f) for f in (grp[SCORE_COLUMNS[col]].dropna() if grp is not None else [])})
            row.update(
                {
                    f"{col}_mean": ci.estimate,
                    f"{col}_ci_low": ci.low,
                    f"{col}_ci_high": ci.high,
                    f"{col}_n": ci.n,
                    SCORE_COLUMNS[col]: fps[0] if len(fps) == 1 else (";".join(fps) or None),
                }
            )
        if "judge_cost_usd" in ok and grp is not None:
            cost = grp["judge_cost_usd"].to_numpy(dtype=np.float64)
            row["judge_cost_usd"] = float(cost.sum()) if len(cost) and np.isfinite(cost).all() else np.nan
    return rows


def _find_group(grouped: Mapping[Any, pd.DataFrame], key: tuple[Any, ...]) -> pd.DataFrame | None:
    def same(a: Any, b: Any) -> bool:
        return bool((pd.isna(a) and pd.isna(b)) or a == b)

    for k, grp in grouped.items():
        kt = k if isinstance(k, tuple) else (k,)
        if len(kt) == len(key) and all(same(a, b) for a, b in zip(kt, key, strict=True)):
            return grp
    return None

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
from bench.decide.signals import SHARE_SCORES
from bench.metrics.cache import EmbeddingCache
from bench.metrics.config import MetricsConfig, PreferenceConfig, ReferenceConfig
from bench.metrics.errors import WeightsError
from bench.metrics.images import decoded_chunks, text_key
from bench.metrics.notes import note
from bench.metrics.preference import (
    SCORERS,
    PreferenceModel,
    details,
    load_model,
    resolve_weights,
)
from bench.records import RECORD_SCHEMA

# per-image score column -> its fingerprint column
SCORE_COLUMNS: dict[str, str] = {
    "pickscore": "pickscore_fingerprint",
    "hpsv2": "hpsv2_fingerprint",
    "judge_adherence": "judge_fingerprint",
    "judge_rubric": "judge_fingerprint",
}


SCALE_KEY = "scale:logit"  # PickScore's logit scale, cached beside its embeddings


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


def preset_reference(
    ref: ReferenceConfig | None, records: pd.DataFrame, notes: list[str]
) -> ReferenceConfig | None:
    """The FID/KID reference to use: a preset `kind: target, if_present: true` the run lacks is dropped, with a note."""
    if ref is None or ref.kind != "target" or not ref.if_present:
        return ref
    if ref.target in set(records["target"].dropna().astype(str)):
        return ref
    notes.append(
        f"FID/KID skipped: the preset reference target {ref.target} is not a target of this run "
        "(set metrics.fid.reference to one that is)"
    )
    return None


def score_quality(
    run_dir: Path,
    cfg: MetricsConfig,
    ok: pd.DataFrame,
    ok_positions: np.ndarray[Any, Any],
    notes: list[str],
    *,
    max_cost_usd: float | None = None,
) -> QualityResult:
    result = QualityResult(columns=pd.DataFrame(index=ok.index))
    if ok.empty:
        return result
    for kind in SCORERS:
        pcfg: PreferenceConfig = getattr(cfg, kind)
        if pcfg.enabled:
            _score_preference(kind, pcfg, run_dir, cfg, ok, notes, result)
    if cfg.judge.enabled:
        from bench.judge.score import judge_images, write_answers

        cols, answers, report = judge_images(ok, run_dir, cfg.judge, cfg.resolved_cache_dir(), max_cost_usd)
        write_answers(run_dir, answers, ok)
        result.columns = result.columns.join(cols)
        result.fingerprints[report.fingerprint] = report.details
        result.lines.append(report.line())
        notes.append(report.line())
    if len(result.columns.columns):
        write_record_columns(run_dir / "records.parquet", result.columns, ok_positions)
    return result


def _score_preference(
    kind: str,
    pcfg: PreferenceConfig,
    run_dir: Path,
    cfg: MetricsConfig,
    ok: pd.DataFrame,
    notes: list[str],
    result: QualityResult,
) -> None:
    """PickScore or HPSv2 per ok image; embeddings cached by (sha256, fingerprint) like CLIP's."""
    from bench.metrics.fingerprint import fingerprint_id

    cache_dir = cfg.resolved_cache_dir()
    try:
        weights = resolve_weights(kind, pcfg, cache_dir)
    except WeightsError as exc:
        note(notes, f"{kind} is NaN for this run: {exc}", stacklevel=3)
        return  # stored scores (if any) stay as they were
    info = details(kind, pcfg, weights)
    fp = fingerprint_id(kind, info)
    items = list(
        dict(
            zip(ok["image_sha256"].astype(str), (run_dir / str(p) for p in ok["image_path"]), strict=True)
        ).items()
    )
    prompts = list(dict.fromkeys(ok["prompt"].astype(str)))
    cache = EmbeddingCache(cache_dir)
    model: PreferenceModel | None = None
    try:
        found = cache.get_many(fp, [k for k, _ in items] + [text_key(p) for p in prompts])
        todo = [(k, path) for k, path in items if k not in found]
        for chunk in decoded_chunks(todo):
            model = model or load_model(kind, pcfg, weights)
            emb = model.encode_images([im for _, im in chunk])
            new = {k: e for (k, _), e in zip(chunk, emb, strict=True)}
            cache.put_many(fp, new)
            found.update(new)
        missing = [p for p in prompts if text_key(p) not in found]
        if missing:
            model = model or load_model(kind, pcfg, weights)
            new = {text_key(p): e for p, e in zip(missing, model.encode_texts(missing), strict=True)}
            cache.put_many(fp, new)
            found.update(new)
        if model is not None and kind == "pickscore":
            cache.put_many(fp, {SCALE_KEY: np.array([model.scale], np.float32)})
    finally:
        cache.close()
    scale = model.scale if model is not None else _cached_scale(kind, fp, cache_dir, pcfg, weights)
    img = np.stack([found[str(s)] for s in ok["image_sha256"]])
    txt = np.stack([found[text_key(str(p))] for p in ok["prompt"]])
    cos = (img.astype(np.float64) * txt.astype(np.float64)).sum(-1)
    result.columns[kind] = scale * cos
    result.columns[f"{kind}_fingerprint"] = fp
    result.fingerprints[fp] = info
    computed = len(todo)
    line = f"{kind} on {len(ok)} images ({computed} computed) [{fp}]"
    result.lines.append(line)
    notes.append(line)


def _cached_scale(kind: str, fp: str, cache_dir: Path, pcfg: PreferenceConfig, weights: Any) -> float:
    """PickScore's logit scale is part of the weights; kept beside the embeddings so a cached re-score needs no model."""
    if kind != "pickscore":
        return 1.0
    cache = EmbeddingCache(cache_dir)
    try:
        got = cache.get_many(fp, [SCALE_KEY])
        if SCALE_KEY in got:
            return float(got[SCALE_KEY][0])
        scale = load_model(kind, pcfg, weights).scale
        cache.put_many(fp, {SCALE_KEY: np.array([scale], np.float32)})
        return scale
    finally:
        cache.close()


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
            clusters = grp["prompt_id"].astype(str).to_numpy() if grp is not None else None
            if col in SHARE_SCORES:  # a share per image: an interval inside [0, 1] (bench.stats.share_ci)
                ci = stats.share_ci(values, confidence=cfg.stats.confidence, clusters=clusters)
            else:
                ci = stats.bootstrap_ci(values, n_boot=cfg.stats.n_boot, confidence=cfg.stats.confidence,
                                        seed=cfg.stats.seed, clusters=clusters)  # fmt: skip
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

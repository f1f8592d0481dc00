"""Score a run: CLIP per image into records.parquet, FID/KID and CLIP means per group into metrics.parquet.

Entry point for `bench run` (after generation) and `bench score RUN_DIR`:
`score_run(run_dir, metrics_cfg)`. Everything expensive is cached by content
hash and fingerprint, so re-scoring an unchanged run computes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import stats
from bench.errors import ConfigError
from bench.group_names import group_label
from bench.metrics import clip as clipmod
from bench.metrics import inception
from bench.metrics.cache import EmbeddingCache
from bench.metrics.config import MetricsConfig, parse_metrics_config, with_resolved_devices
from bench.metrics.errors import MetricsError, WeightsError
from bench.metrics.fid import (
    FID_MIN_RELIABLE_N,
    fid_from_stats,
    gaussian_stats,
    kernel_inception_distance,
    kid_subset_size,
)
from bench.metrics.fid_replicates import (
    MAX_EIG_DIM,
    fid_replicates,
    image_weights,
    kid_replicates,
    prompt_draws,
)
from bench.metrics.fingerprint import fingerprint_id
from bench.metrics.images import decoded_chunks, text_key
from bench.metrics.notes import note
from bench.metrics.quality import group_means, preset_reference, score_quality
from bench.metrics.reference import ReferenceSet, images_of, resolve_reference
from bench.records import RECORD_SCHEMA

log = logging.getLogger("bench.metrics")
F32 = npt.NDArray[np.float32]
METRICS_FILE = "metrics.parquet"
FINGERPRINTS_META = b"t2i_bench_fingerprints"


@dataclass(frozen=True)
class ScoreReport:
    run_dir: Path
    n_images: int
    clip_fingerprint: str | None
    clip_scored: int  # images with a finite CLIP score
    clip_computed: int  # image embeddings computed now (the rest came from the cache)
    clip_mean: float
    fid_fingerprint: str | None
    reference_id: str | None
    groups: int
    fid_groups: int
    inception_computed: int
    elapsed_s: float
    notes: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        clip = (
            f"CLIP {self.clip_mean:.2f} on {self.clip_scored}/{self.n_images} images "
            f"({self.clip_computed} computed) [{self.clip_fingerprint}]"
            if self.clip_fingerprint
            else "CLIP not scored"
        )
        fid = (
            f"FID/KID for {self.fid_groups}/{self.groups} groups vs {self.reference_id} "
            f"({self.inception_computed} images computed) [{self.fid_fingerprint}]"
            if self.fid_fingerprint
            else "FID/KID not computed"
        )
        return f"scored {self.run_dir} in {self.elapsed_s:.1f}s: {clip}\n  {fid}" + "".join(
            f"\n  note: {n}" for n in self.notes
        )


@dataclass
class _ClipState:
    fingerprint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    weights: clipmod.ClipWeights | None = None
    model: clipmod.ClipModel | None = None
    computed: int = 0


@dataclass
class _InceptionState:
    fingerprint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    extractor: inception.InceptionExtractor | None = None
    computed: int = 0


class _Scorer:
    """Holds the models (loaded only when something is missing from the cache) for one scoring pass."""

    def __init__(self, cfg: MetricsConfig, cache: EmbeddingCache, cache_dir: Path) -> None:
        self.cfg, self.cache, self.cache_dir = cfg, cache, cache_dir
        self.clip = _ClipState()
        self.inc = _InceptionState()

    def clip_model(self) -> clipmod.ClipModel:
        if self.clip.model is None:
            assert self.clip.weights is not None
            self.clip.model = clipmod.load_clip_model(self.cfg.clip, self.clip.weights)
        return self.clip.model

    def extractor(self) -> inception.InceptionExtractor:
        if self.inc.extractor is None:
            fc = self.cfg.fid
            self.inc.extractor = inception.load_extractor(
                fc.weights, batch_size=fc.batch_size, device=fc.device, cache_dir=self.cache_dir
            )
        return self.inc.extractor

    def embed_images(self, items: list[tuple[str, Path]], *, want_clip: bool, want_inc: bool) -> None:
        """Fill the cache for images missing under either fingerprint; each image is decoded once."""
        unique = list(dict(items).items())
        keys = [k for k, _ in unique]
        clip_missing: set[str] = set()
        inc_missing: set[str] = set()
        if want_clip and self.clip.fingerprint:
            clip_missing = set(keys) - set(self.cache.get_many(self.clip.fingerprint, keys))
        if want_inc and self.inc.fingerprint:
            inc_missing = set(keys) - set(self.cache.get_many(self.inc.fingerprint, keys))
        todo = [(k, p) for k, p in unique if k in clip_missing or k in inc_missing]
        for chunk in decoded_chunks(todo):
            clip_part = [(k, im) for k, im in chunk if k in clip_missing]
            if clip_part and self.clip.fingerprint:
                emb = self.clip_model().encode_images([im for _, im in clip_part])
                self.cache.put_many(
                    self.clip.fingerprint, {k: e for (k, _), e in zip(clip_part, emb, strict=True)}
                )
                self.clip.computed += len(clip_part)
            inc_part = [(k, im) for k, im in chunk if k in inc_missing]
            if inc_part and self.inc.fingerprint:
                feats = self.extractor().features([inception.to_uint8_chw(im) for _, im in inc_part])
                self.cache.put_many(
                    self.inc.fingerprint, {k: f for (k, _), f in zip(inc_part, feats, strict=True)}
                )
                self.inc.computed += len(inc_part)

    def inception_features(self, items: list[tuple[str, Path]]) -> F32:
        assert self.inc.fingerprint is not None
        self.embed_images(items, want_clip=False, want_inc=True)
        found = self.cache.get_many(self.inc.fingerprint, [k for k, _ in items])
        return np.stack([found[k] for k, _ in items]).astype(np.float32)

    def text_embeddings(self, prompts: list[str]) -> dict[str, F32]:
        assert self.clip.fingerprint is not None
        distinct = list(dict.fromkeys(prompts))
        keys = {p: text_key(p) for p in distinct}
        found = self.cache.get_many(self.clip.fingerprint, keys.values())
        missing = [p for p in distinct if keys[p] not in found]
        if missing:
            emb = self.clip_model().encode_texts(missing)
            new = {keys[p]: e for p, e in zip(missing, emb, strict=True)}
            self.cache.put_many(self.clip.fingerprint, new)
            found.update(new)
        return {p: found[keys[p]] for p in distinct}


def _warn(notes: list[str], message: str) -> None:
    note(notes, message, stacklevel=4)


def _score_clip(
    scorer: _Scorer,
    ok: pd.DataFrame,
    items: list[tuple[str, Path]],
    notes: list[str],
    *,
    require_weights: bool = False,
) -> pd.DataFrame:
    """clip_score / clip_fingerprint / clip_truncated for the ok rows (index aligned with `ok`)."""
    cfg = scorer.cfg.clip
    out = pd.DataFrame(
        index=ok.index, data={"clip_score": np.nan, "clip_fingerprint": None, "clip_truncated": None}
    )
    try:
        scorer.clip.weights = clipmod.resolve_clip_weights(cfg, scorer.cache_dir)
    except WeightsError as exc:
        if require_weights:
            raise
        _warn(notes, f"clip_score is NaN for this run: {exc}")
    prompts = [str(p) for p in ok["prompt"]]
    # Truncation depends only on the tokenizer, which ships with open_clip: known even without weights.
    tokenizer = clipmod.load_tokenizer(cfg.backbone)
    truncated = {p: clipmod.is_truncated(tokenizer, p) for p in dict.fromkeys(prompts)}
    out["clip_truncated"] = [truncated[p] for p in prompts]
    if scorer.clip.weights is None or ok.empty:
        return out
    scorer.clip.details = clipmod.clip_details(cfg, scorer.clip.weights)
    scorer.clip.fingerprint = fingerprint_id("clip", scorer.clip.details)
    scorer.embed_images(items, want_clip=True, want_inc=scorer.inc.fingerprint is not None)
    image_emb = scorer.cache.get_many(scorer.clip.fingerprint, [k for k, _ in items])
    text_emb = scorer.text_embeddings(prompts)
    img = np.stack([image_emb[k] for k, _ in items])
    txt = np.stack([text_emb[p] for p in prompts])
    out["clip_score"] = clipmod.clip_score_from_embeddings(img, txt)
    out["clip_fingerprint"] = scorer.clip.fingerprint
    n_trunc = sum(truncated.values())
    if n_trunc:
        notes.append(f"{n_trunc} prompt(s) longer than the CLIP text context were truncated (clip_truncated)")
    return out


def _write_records(
    path: Path, table: pa.Table, clip_cols: pd.DataFrame, ok_positions: npt.NDArray[np.intp]
) -> None:
    n = table.num_rows
    values: dict[str, list[Any]] = {
        "clip_score": [float("nan")] * n,
        "clip_fingerprint": [None] * n,
        "clip_truncated": [None] * n,
    }
    for col in values:
        for pos, v in zip(ok_positions, clip_cols[col].tolist(), strict=True):
            values[col][int(pos)] = None if (col != "clip_score" and v is None) else v
    for col, data in values.items():
        arr = pa.array(data, type=RECORD_SCHEMA.field(col).type)
        idx = table.schema.get_field_index(col)
        table = (
            table.set_column(idx, col, arr) if idx >= 0 else table.append_column(pa.field(col, arr.type), arr)
        )
    metadata = dict(table.schema.metadata or {})
    metadata.setdefault(b"t2i_bench_schema_version", RECORD_SCHEMA.metadata[b"t2i_bench_schema_version"])
    table = table.replace_schema_metadata(metadata)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def _group_rows(
    scorer: _Scorer,
    ok: pd.DataFrame,
    items: list[tuple[str, Path]],
    reference: ReferenceSet | None,
    notes: list[str],
) -> list[dict[str, Any]]:
    cfg = scorer.cfg
    keys = list(cfg.fid.group_by)
    missing = [k for k in keys if k not in ok.columns]
    if missing:
        raise ConfigError("metrics.fid.group_by", keys, f"{missing} are not records.parquet columns")
    feats = scorer.inception_features(items) if reference is not None else None
    rows: list[dict[str, Any]] = []
    small: list[str] = []
    no_kid_std: list[str] = []
    positions = {idx: i for i, idx in enumerate(ok.index)}
    # Bootstrap replicates for the decision (bench.decide): one seeded draw of the run's prompts,
    # shared by every group. Not against one of the run's own targets: the decision refuses
    # FID/KID as quality there (likeness to that target), so the replicates would cost for nothing.
    want_boot = reference is not None and not reference.id.startswith("target:") and "prompt_id" in ok
    order, counts = (
        prompt_draws(ok["prompt_id"].astype(str).tolist(), cfg.stats.n_boot, cfg.stats.seed)
        if want_boot
        else ([], None)
    )
    too_big: list[str] = []
    for group_key, grp in ok.groupby(keys, dropna=False, sort=True) if keys else [((), ok)]:
        key_tuple = group_key if isinstance(group_key, tuple) else (group_key,)
        row: dict[str, Any] = dict(zip(keys, key_tuple, strict=True))
        row["n"] = len(grp)
        row["n_prompts"] = int(grp["prompt_id"].nunique()) if "prompt_id" in grp else len(grp)
        scores = grp["clip_score"].to_numpy(dtype=np.float64)
        ci = stats.bootstrap_ci(
            scores,
            n_boot=cfg.stats.n_boot,
            confidence=cfg.stats.confidence,
            seed=cfg.stats.seed,
            clusters=grp["prompt_id"].astype(str).to_numpy() if "prompt_id" in grp else None,
        )
        row.update(
            clip_n=ci.n,
            clip_mean=ci.estimate,
            clip_ci_low=ci.low,
            clip_ci_high=ci.high,
            clip_fingerprint=scorer.clip.fingerprint,
        )
        row.update(
            fid=np.nan,
            kid_mean=np.nan,
            kid_std=np.nan,
            kid_subset_size=np.nan,
            n_reference=np.nan,
            reference_id=None,
            fid_fingerprint=None,
            fid_boot=None,
            kid_boot=None,
        )
        if reference is not None and feats is not None:
            g = feats[[positions[i] for i in grp.index]]
            row.update(
                reference_id=reference.id,
                fid_fingerprint=scorer.inc.fingerprint,
                n_reference=reference.stats.n or np.nan,
            )
            if len(g) >= 2 and cfg.fid.enabled:
                row["fid"] = fid_from_stats(gaussian_stats(g), reference.stats)
            if cfg.kid.enabled and reference.features is not None and len(g) >= 2:
                kid = kernel_inception_distance(
                    reference.features,
                    g,
                    subset_size=kid_subset_size(cfg.kid.subset_size, len(reference.features), len(g)),
                    subsets=cfg.kid.subsets,
                    seed=cfg.kid.seed,
                )
                # Unknown is NaN: a std over identical subsets is not a measure of anything.
                row.update(
                    kid_mean=kid.mean,
                    kid_std=kid.std if kid.std_informative else np.nan,
                    kid_subset_size=kid.subset_size,
                )
                if not kid.std_informative:
                    no_kid_std.append(f"{group_label(row)}: n={len(g)}")
            if counts is not None and len(g) >= 2:
                weights = image_weights(grp["prompt_id"].astype(str).tolist(), order, counts)
                if cfg.fid.enabled and min(g.shape) <= MAX_EIG_DIM:
                    row["fid_boot"] = fid_replicates(g, reference.stats, weights).tolist()
                elif cfg.fid.enabled:
                    too_big.append(f"{group_label(row)}: n={len(g)}")
                if cfg.kid.enabled and reference.features is not None:
                    row["kid_boot"] = kid_replicates(g, reference.features, weights).tolist()
            if len(g) < FID_MIN_RELIABLE_N:
                small.append(f"{group_label(row)}: n={len(g)}")
        rows.append(row)
    if small:
        _warn(
            notes,
            f"FID is biased upwards below n={FID_MIN_RELIABLE_N} images per group; compare FIDs only at "
            f"equal n and read KID beside them. Small groups: {'; '.join(small[:5])}"
            + (f" (+{len(small) - 5} more)" if len(small) > 5 else ""),
        )
    if too_big:
        notes.append(
            f"FID has no bootstrap replicates (the decision cannot rest on it) where a group has over {MAX_EIG_DIM} "
            f"images: each replicate would need a {MAX_EIG_DIM}+ eigendecomposition; use KID. Groups: {'; '.join(too_big[:5])}"
        )
    if no_kid_std:
        notes.append(
            "KID std is NaN where a group has under 4 images: subsets cannot be smaller than the set, "
            f"so their spread says nothing. Groups: {'; '.join(no_kid_std[:5])}"
        )
    return rows


def _write_metrics(run_dir: Path, rows: list[dict[str, Any]], fingerprints: dict[str, Any]) -> None:
    table = pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[FINGERPRINTS_META] = json.dumps(fingerprints, sort_keys=True, default=str).encode()
    table = table.replace_schema_metadata(meta)
    path = run_dir / METRICS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def score_run(
    run_dir: Path,
    metrics_cfg: Mapping[str, Any] | MetricsConfig | None,
    *,
    require_weights: bool = False,
    providers: Mapping[str, Any] | None = None,
    max_cost_usd: float | None = None,
) -> ScoreReport:
    """Compute CLIP per ok image and FID/KID/CLIP-mean per group; write records.parquet and metrics.parquet.

    With `require_weights` (`bench score`), CLIP weights that fail to load raise WeightsError before
    anything is written, so stored scores are never replaced by NaN; `bench run` scores with NaN and a
    warning instead (a fresh run has no scores to lose). `providers` gives the judge its endpoint and
    key variable; `max_cost_usd` is the run folder's cap, which the judge's calls count against together
    with what the folder already spent (metrics.judge.max_cost_usd caps the judge's pass on top).
    """
    started = time.perf_counter()
    # Devices resolved here, before anything is read or written: `auto` becomes this machine's device
    # (recorded in the fingerprints), and a device it lacks is a ConfigError that leaves stored scores alone.
    cfg = with_resolved_devices(parse_metrics_config(metrics_cfg, providers))
    run_dir = Path(run_dir)
    records_path = run_dir / "records.parquet"
    if not records_path.is_file():
        raise MetricsError(f"{records_path} does not exist: nothing to score (run `bench run` first)")
    cache_dir = cfg.resolved_cache_dir()
    cache = EmbeddingCache(cache_dir)
    notes: list[str] = []
    try:
        table = pq.read_table(records_path)
        df = table.to_pandas()
        ok_mask = (df["status"] == "ok") & df["image_path"].notna()
        ok = df[ok_mask].copy()
        items = images_of(df, run_dir)
        scorer = _Scorer(cfg, cache, cache_dir)
        ref_cfg = preset_reference(cfg.fid.reference, df, notes)
        want_inception = (cfg.fid.enabled or cfg.kid.enabled) and ref_cfg is not None and len(ok) > 0
        if want_inception:
            scorer.inc.fingerprint, scorer.inc.details = inception.extractor_fingerprint(
                cfg.fid.weights, cfg.fid.device, cache_dir
            )
        elif cfg.fid.enabled or cfg.kid.enabled:
            log.info("FID/KID skipped: no metrics.fid.reference configured (a folder, .npz, run or target)")
        if cfg.clip.enabled:
            clip_cols = _score_clip(scorer, ok, items, notes, require_weights=require_weights)
            ok[["clip_score", "clip_fingerprint", "clip_truncated"]] = clip_cols
            _write_records(records_path, table, clip_cols, np.flatnonzero(ok_mask.to_numpy()))
        elif "clip_score" not in ok:
            ok["clip_score"] = np.nan
        reference: ReferenceSet | None = None
        if want_inception and ref_cfg is not None:
            assert scorer.inc.fingerprint is not None
            reference = resolve_reference(
                ref_cfg,
                run_dir=run_dir,
                run_records=df,
                fingerprint=scorer.inc.fingerprint,
                cache_dir=cache_dir,
                features_of=scorer.inception_features,
            )
            if reference.features is None and cfg.kid.enabled:
                notes.append(f"KID needs reference features; {reference.id} has statistics only (kid is NaN)")
        if not cfg.clip.enabled:
            ok["clip_score"] = np.nan
            scorer.clip.fingerprint = None
        # Preference models and the VLM judge (bench/metrics/quality.py): their own columns.
        quality = score_quality(
            run_dir, cfg, ok, np.flatnonzero(ok_mask.to_numpy()), notes, max_cost_usd=max_cost_usd
        )
        for col in quality.columns:
            ok[col] = quality.columns[col]
        rows = _group_rows(scorer, ok, items, reference, notes)
        rows = group_means(rows, ok, list(cfg.fid.group_by), cfg)
        fingerprints = {
            fp: d
            for fp, d in (
                (scorer.clip.fingerprint, scorer.clip.details),
                (scorer.inc.fingerprint, scorer.inc.details),
            )
            if fp
        }
        fingerprints.update(quality.fingerprints)
        _write_metrics(run_dir, rows, fingerprints)
        scored = ok["clip_score"].to_numpy(dtype=np.float64)
        finite = scored[np.isfinite(scored)]
        return ScoreReport(
            run_dir=run_dir,
            n_images=len(ok),
            clip_fingerprint=scorer.clip.fingerprint,
            clip_scored=int(finite.size),
            clip_computed=scorer.clip.computed,
            clip_mean=float(finite.mean()) if finite.size else float("nan"),
            fid_fingerprint=scorer.inc.fingerprint if reference is not None else None,
            reference_id=reference.id if reference is not None else None,
            groups=len(rows),
            fid_groups=sum(1 for r in rows if np.isfinite(r["fid"])),
            inception_computed=scorer.inc.computed,
            elapsed_s=time.perf_counter() - started,
            notes=tuple(notes),
        )
    finally:
        cache.close()


def read_fingerprints(run_dir: Path) -> dict[str, Any]:
    """Full fingerprint details by id, from metrics.parquet's schema metadata."""
    meta = pq.read_schema(Path(run_dir) / METRICS_FILE).metadata or {}
    raw = meta.get(FINGERPRINTS_META)
    return dict(json.loads(raw)) if raw else {}

"""Build record rows (dicts matching bench.records) from a job and its outcome."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.cache import NUMBER_FIELDS, CachedAnswer
from bench.errors import ProviderError
from bench.providers import observe
from bench.providers.base import GenerationResult
from bench.sweep import Job

NAN = math.nan


@dataclass(frozen=True)
class StoredOutcomeImage:
    path: str
    sha256: str
    format: str
    width: int
    height: int


def _num(value: float | int | None) -> float:
    return NAN if value is None else float(value)


def base_row(job: Job, run_id: str, started_at: dt.datetime, attempts: int) -> dict[str, Any]:
    """The row's common part; `emulated` and `poll_interval_s` come from what the adapter observed
    during this task's last attempt (bench.providers.observe; none for a skipped request)."""
    req = job.request
    seen = observe.current() or observe.Observation()
    return {
        "run_id": run_id,
        "request_key": job.key,
        "image_index": 0,
        "target": job.target.id,
        "provider": job.target.provider,
        "model": job.target.model,
        # An emulator draws with the local generator: its images are synthetic whatever the model says.
        "synthetic": job.spec.synthetic or seen.emulated,
        "emulated": seen.emulated,
        "prompt_id": job.prompt.id,
        "prompt": job.prompt.text,
        "suite": job.prompt.suite,
        "category": job.prompt.category,
        "negative_prompt": req.negative_prompt,
        "steps": _num(req.steps),
        "guidance": _num(req.guidance),
        "seed": _num(req.seed),
        "size": job.size.label if job.size else None,
        "width": _num(req.width),
        "height": _num(req.height),
        "aspect_ratio": req.aspect_ratio,
        "repeat": job.repeat,
        "left_out": json.dumps(dict(job.left_out), sort_keys=True) if job.left_out else None,
        "payload": json.dumps(dict(job.payload), sort_keys=True, default=str),
        "status": None,
        "error_type": None,
        "error_message": None,
        "http_status": NAN,
        "attempts": attempts,
        "started_at": started_at,
        "latency_s": NAN,
        "client_wait_s": seen.client_wait_s,
        "queue_s": NAN,
        "inference_s": NAN,
        "download_s": NAN,
        "poll_interval_s": seen.poll_interval_s,
        "cost_usd": NAN,
        "cost_source": "unknown",
        "billed": False,
        "price_unit": None,
        "price_rule": None,
        "image_path": None,
        "image_sha256": None,
        "image_format": None,
        "image_width": NAN,
        "image_height": NAN,
        "revised_prompt": None,
        "seed_used": NAN,
        "provider_request_id": None,
        "catalog_source": job.spec.catalog_source,
        "schema_sha256": job.spec.schema_sha256,
        "schema_unverified": job.spec.unverified,
        "clip_score": NAN,
        "clip_fingerprint": None,
        "clip_truncated": None,
        "device": None,
        "peak_gpu_memory_mb": NAN,
        "warmup_s": NAN,
        "software": None,
        "cached": False,
        "cache_age_s": NAN,
        "cache_origin_run": None,
    }


def ok_rows(
    job: Job,
    run_id: str,
    started_at: dt.datetime,
    attempts: int,
    result: GenerationResult,
    images: Sequence[StoredOutcomeImage],
    latency_s: float,
    cost_usd: float,
    cost_source: str,
) -> list[dict[str, Any]]:
    per_image_cost = cost_usd / len(images) if images and not math.isnan(cost_usd) else NAN
    rows = []
    for index, image in enumerate(images):
        row = base_row(job, run_id, started_at, attempts)
        row.update(
            image_index=index,
            status="ok",
            http_status=_num(result.http_status),
            latency_s=latency_s,
            queue_s=result.timings.queue_s,
            inference_s=result.timings.inference_s,
            download_s=result.timings.download_s,
            cost_usd=per_image_cost,
            cost_source=cost_source if not math.isnan(per_image_cost) else "unknown",
            image_path=image.path,
            image_sha256=image.sha256,
            image_format=image.format,
            image_width=float(image.width),
            image_height=float(image.height),
            revised_prompt=result.revised_prompt,
            seed_used=_num(result.seed_used),
            provider_request_id=result.provider_request_id,
        )
        if result.compute is not None:
            row.update(
                device=result.compute.device,
                peak_gpu_memory_mb=result.compute.peak_gpu_memory_mb,
                warmup_s=result.compute.warmup_s,
                software=json.dumps(dict(result.compute.versions), sort_keys=True),
            )
        rows.append(row)
    return rows


def replayed_rows(job: Job, run_id: str, answer: CachedAnswer) -> list[dict[str, Any]]:
    """A cached answer's rows for this run: the response fields from the cache, every request
    field (prompt id, category, suite, size, steps, seed, target, labels) from the current job."""
    rows = []
    for response in answer.responses:
        row = base_row(job, run_id, dt.datetime.now(dt.UTC), int(response.get("attempts") or 0))
        row.update(
            {
                name: (NAN if value is None else value) if name in NUMBER_FIELDS else value
                for name, value in response.items()
            }
        )
        row.update(
            synthetic=bool(job.spec.synthetic or response.get("emulated")),
            emulated=bool(response.get("emulated")),
            cached=True,
            cache_age_s=answer.age_s,
            cache_origin_run=answer.origin_run or None,
        )
        rows.append(row)
    return rows


def failed_row(
    job: Job,
    run_id: str,
    started_at: dt.datetime,
    attempts: int,
    error: ProviderError,
    message: str,
    latency_s: float,
) -> dict[str, Any]:
    row = base_row(job, run_id, started_at, attempts)
    row.update(
        status="refused" if error.error_type == "refused" else "error",
        error_type=error.error_type,
        error_message=message,
        http_status=_num(error.http_status),
        latency_s=latency_s,
        provider_request_id=error.provider_request_id,
    )
    return row


def skipped_row(job: Job, run_id: str, reason_type: str, message: str) -> dict[str, Any]:
    row = base_row(job, run_id, dt.datetime.now(dt.UTC), 0)
    row.update(status="skipped", error_type=reason_type, error_message=message)
    return row

"""The records.parquet schema: one row per generated image or failed attempt.

Columns are typed explicitly (not inferred from the first batch) so that a run
whose first rows are all errors still writes float timing columns, and two runs
always concatenate. Unknown numbers are NaN, never 0.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"
STATUSES = ("ok", "error", "refused", "skipped")
COST_SOURCES = ("reported", "price_api", "price_table", "unknown")

RECORD_FIELDS: list[tuple[str, pa.DataType]] = [
    ("run_id", pa.string()),
    ("request_key", pa.string()),
    ("image_index", pa.int32()),
    ("target", pa.string()),
    ("provider", pa.string()),
    ("model", pa.string()),
    ("synthetic", pa.bool_()),
    ("emulated", pa.bool_()),  # answered by a `bench emulate` protocol emulator (its response header said so)
    ("prompt_id", pa.string()),
    ("prompt", pa.string()),
    ("suite", pa.string()),
    ("category", pa.string()),
    ("negative_prompt", pa.string()),
    ("steps", pa.float64()),  # float so "not sent" is NaN, not a fake 0
    ("guidance", pa.float64()),
    ("seed", pa.float64()),
    ("size", pa.string()),
    ("width", pa.float64()),
    ("height", pa.float64()),
    ("aspect_ratio", pa.string()),
    ("repeat", pa.int32()),
    ("left_out", pa.string()),  # JSON {normalized param: reason} for values not sent to this model
    ("payload", pa.string()),  # JSON of the parameters sent (the key's input), prompt included
    ("status", pa.string()),
    ("error_type", pa.string()),
    ("error_message", pa.string()),
    ("http_status", pa.float64()),
    ("attempts", pa.int32()),
    ("started_at", pa.timestamp("us", tz="UTC")),
    ("latency_s", pa.float64()),
    ("client_wait_s", pa.float64()),  # lane slot -> request left (pool wait, connect); NaN without HTTP
    ("queue_s", pa.float64()),
    ("inference_s", pa.float64()),
    ("download_s", pa.float64()),
    (
        "poll_interval_s",
        pa.float64(),
    ),  # longest sleep between polls: latency is late by up to this; NaN if not polled
    ("cost_usd", pa.float64()),
    ("cost_source", pa.string()),
    # The provider billed this request (an answer, or a generation whose download or decode then
    # failed: a billed failure is final unless `bench run --retry-billed`).
    ("billed", pa.bool_()),
    # What a price-table or price-API cost was computed in: unit (image, megapixel, ...) and the
    # provider's billing rule (fal: megapixels rounded up per image). A unit bench cannot count
    # ("compute seconds") is named here, with the cost NaN.
    ("price_unit", pa.string()),
    ("price_rule", pa.string()),
    ("image_path", pa.string()),
    ("image_sha256", pa.string()),
    ("image_format", pa.string()),
    ("image_width", pa.float64()),
    ("image_height", pa.float64()),
    ("revised_prompt", pa.string()),
    ("seed_used", pa.float64()),
    ("provider_request_id", pa.string()),
    # Which model schema the request was validated and mapped with (bench.catalog.sources).
    ("catalog_source", pa.string()),  # shipped | fetched | user
    ("schema_sha256", pa.string()),
    (
        "schema_unverified",
        pa.bool_(),
    ),  # true: nobody published this schema (KidJig, unlisted OpenAI-style ids)
    # Filled by the metrics stage (bench score); NaN/null until scored.
    ("clip_score", pa.float64()),
    ("clip_fingerprint", pa.string()),
    ("clip_truncated", pa.bool_()),
    # Self-hosted generations (the diffusers provider); null/NaN for hosted APIs.
    ("device", pa.string()),  # the device's name, e.g. "NVIDIA H100 80GB HBM3"
    ("peak_gpu_memory_mb", pa.float64()),  # peak CUDA memory allocated during the call
    ("warmup_s", pa.float64()),  # the pipeline's warm-up call, excluded from inference_s
    ("software", pa.string()),  # JSON {library: version}
    # Replayed from the cross-run response cache (bench.cache): not sent by this run; latency,
    # timings and cost are the original request's.
    ("cached", pa.bool_()),
    ("cache_age_s", pa.float64()),  # how old the replayed answer was when replayed; NaN when sent
    ("cache_origin_run", pa.string()),  # the run that sent (and paid for) the replayed answer
    # Preference models and the VLM judge (bench/metrics/quality.py); NaN/null until scored.
    ("pickscore", pa.float64()),
    ("pickscore_fingerprint", pa.string()),
    ("hpsv2", pa.float64()),
    ("hpsv2_fingerprint", pa.string()),
    ("judge_adherence", pa.float64()),  # share of the judge's yes/no questions answered yes
    ("judge_rubric", pa.float64()),  # the judge's 1-10 rating
    ("judge_fingerprint", pa.string()),
    ("judge_cost_usd", pa.float64()),  # what this image's judge answers cost (NaN: unknown)
]

RECORD_SCHEMA = pa.schema(RECORD_FIELDS, metadata={b"t2i_bench_schema_version": SCHEMA_VERSION.encode()})
COLUMNS = [name for name, _ in RECORD_FIELDS]

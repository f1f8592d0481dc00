"""records.parquet: the documented columns and types, the schema version, config.yaml beside it."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from bench.cli import main
from bench.records import RECORD_SCHEMA, SCHEMA_VERSION

REQUIRED = [
    "run_id",
    "request_key",
    "target",
    "provider",
    "model",
    "prompt_id",
    "prompt",
    "suite",
    "category",
    "negative_prompt",
    "steps",
    "guidance",
    "seed",
    "width",
    "height",
    "repeat",
    "status",
    "error_type",
    "error_message",
    "http_status",
    "attempts",
    "started_at",
    "latency_s",
    "queue_s",
    "inference_s",
    "download_s",
    "cost_usd",
    "cost_source",
    "image_path",
    "image_sha256",
    "image_width",
    "image_height",
    "revised_prompt",
    "seed_used",
]


def test_run_writes_typed_records_with_schema_version_and_config(tmp_path: Path) -> None:
    assert (
        main(["run", "experiment=smoke", f"results_dir={tmp_path}", "run_name=r", "runner.progress=off"]) == 0
    )
    run = tmp_path / "r"
    table = pq.read_table(run / "records.parquet")
    assert table.schema.metadata[b"t2i_bench_schema_version"] == SCHEMA_VERSION.encode()
    assert table.schema.metadata[b"run_id"] == b"r"
    assert set(REQUIRED) <= set(table.column_names)
    assert table.schema.remove_metadata() == RECORD_SCHEMA.remove_metadata()
    df = table.to_pandas()
    assert len(df) == 4 and (df.status == "ok").all()
    row = df.iloc[0]
    assert row.image_path.startswith("images/") and (run / row.image_path).is_file()
    assert row.image_path.split("/")[-1].startswith(row.image_sha256)
    assert (row.image_width, row.image_height) == (256, 256)
    assert row.latency_s > 0 and row.inference_s > 0
    assert math.isnan(row.queue_s) or row.queue_s >= 0
    assert row.cost_usd == 0.0 and row.cost_source == "price_table"
    assert bool(row.synthetic) is True
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["targets"] == ["local:shapes-fast"] and cfg["sweep"]["steps"] == [4]


def test_a_failed_first_batch_still_writes_float_timings(tmp_path: Path) -> None:
    from bench.store import RunStore

    run = tmp_path / "r"
    run.mkdir()
    (run / "journal.jsonl").write_text('[{"request_key": "k", "status": "error", "latency_s": null}]\n')
    RunStore(run).write_records()
    table = pq.read_table(run / "records.parquet")
    assert str(table.schema.field("latency_s").type) == "double"
    assert table.num_rows == 1

"""Honest counts in the summary: requests vs images vs skipped, retries, live throughput."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from bench.report.summary import format_table, live_throughput, summarize

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _row(key: str, status: str, *, index: int = 0, attempts: int = 1, start_s: float = 0.0, latency: float = 1.0,
         target: str = "p:m") -> dict[str, object]:  # fmt: skip
    return {
        "request_key": key, "image_index": index, "target": target, "provider": "p", "model": "m",
        "synthetic": False, "prompt_id": key[:2], "prompt": "x", "category": "c", "steps": np.nan,
        "guidance": np.nan, "size": None, "status": status, "attempts": attempts if status != "skipped" else 0,
        "started_at": T0 + dt.timedelta(seconds=start_s), "latency_s": latency if status != "skipped" else np.nan,
        "cost_usd": 0.01 if status == "ok" else np.nan, "clip_score": np.nan, "clip_fingerprint": None,
    }  # fmt: skip


def _records() -> pd.DataFrame:
    rows = [
        _row("r1", "ok", index=0, start_s=0.0, latency=2.0),
        _row("r1", "ok", index=1, start_s=0.0, latency=2.0),  # the same request's second image
        _row("r2", "ok", attempts=3, start_s=1.0, latency=1.0),
        _row("r3", "error", attempts=2, start_s=2.0, latency=2.0),
        _row("r4", "refused", start_s=3.0, latency=1.0),
        *(_row(f"s{i}", "skipped") for i in range(6)),  # the budget cap stopped these
    ]
    return pd.DataFrame(rows)


def test_n_counts_requests_and_skipped_is_its_own_column() -> None:
    s = summarize(_records()).iloc[0]
    assert s["n"] == 4  # requests sent: skipped ones are not
    assert s["n_images"] == 3 and s["n_ok"] == 2 and s["skipped"] == 6
    assert s["ok_rate"] == pytest.approx(0.5) and s["refusal_rate"] == pytest.approx(0.25)
    assert s["error_rate"] == pytest.approx(0.25)
    assert s["retries"] == 3 and s["retry_rate"] == pytest.approx(0.5)
    assert s["mean_attempts"] == pytest.approx(7 / 4)
    text = format_table(summarize(_records()))
    header = text.splitlines()[0].split()
    assert header[:5] == ["group", "requests", "images", "skipped", "retries"]
    assert text.splitlines()[1].split()[1:5] == ["4", "3", "6", "3"]


def test_live_throughput_is_requests_per_wall_clock_second() -> None:
    # 4 requests from t=0 to the last finish at t=4: 1 request/s, whatever the concurrency.
    assert live_throughput(_records()) == pytest.approx(1.0)
    # Two sequential runs of a sweep: the gap between them is not the target's time.
    a, b = _records(), _records()
    a["run_path"], b["run_path"] = "0", "1"
    b["started_at"] = b["started_at"] + dt.timedelta(hours=1)
    assert live_throughput(pd.concat([a, b], ignore_index=True)) == pytest.approx(1.0)
    s = summarize(_records())
    assert s["live_req_per_s"].iloc[0] == pytest.approx(1.0)
    assert s["stream_img_per_s"].iloc[0] == pytest.approx(3 / 5)  # 3 images over 5 s of ok latency


def test_nothing_attempted_is_nan_not_zero() -> None:
    s = summarize(pd.DataFrame([_row(f"s{i}", "skipped") for i in range(3)])).iloc[0]
    assert s["n"] == 0 and s["skipped"] == 3
    assert np.isnan(s["ok_rate"]) and np.isnan(s["live_req_per_s"]) and np.isnan(s["mean_attempts"])

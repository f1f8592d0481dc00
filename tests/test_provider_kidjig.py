"""KidJig adapter against its emulator: generate, status, result; missing fields named."""

from __future__ import annotations

import math

import pytest
from _provider_harness import KEY, assert_images, emulator, generate, generate_error, knobs, make_provider

from bench.emulators.kidjig import create_app
from bench.errors import (
    AuthError,
    MalformedResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.request import ImageRequest

MODEL = "flux-pro-v1.1-ultra"
REQ = ImageRequest(prompt="a purple balloon in a grey sky", seed=2, aspect_ratio="16:9")
API = "/provider/api/v1/image"


def test_three_step_flow_with_reported_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(queue_s=(0.02, 0.02), inference_s=(0.02, 0.02)))) as (url, emu):
        result = generate(make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ)
    assert_images(result)
    assert result.cost_usd == pytest.approx(0.06 * 1024 * 576 / 1e6)
    assert math.isnan(result.timings.inference_s)
    rid = result.provider_request_id
    assert emu.calls[0] == f"POST {API}/generate/{MODEL}"
    assert f"GET {API}/status/{MODEL}/{rid}" in emu.calls
    assert emu.calls.index(f"GET {API}/result/{MODEL}/{rid}") > emu.calls.index(
        f"GET {API}/status/{MODEL}/{rid}"
    )


def test_cost_off_is_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(report_cost=False))) as (url, _):
        result = generate(make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ)
    assert math.isnan(result.cost_usd)


def test_missing_image_field_names_expectation_and_shows_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="missing_field"))) as (url, emu):
        error = generate_error(
            make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ, MalformedResponseError
        )
    assert "expected data.images[]" in error.message
    assert '"request_id"' in error.message and "Request processed successfully" in error.message
    assert next(iter(emu.jobs)) in error.message


def test_malformed_json(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="malformed_json"))) as (url, _):
        error = generate_error(
            make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ, MalformedResponseError
        )
    assert "expected a JSON result" in error.message


def test_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="refuse"))) as (url, _):
        error = generate_error(make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ, RefusedError)
    assert "content moderation" in error.message


def test_rate_limit_and_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="rate_limit", retry_after_s=4))) as (url, _):
        error = generate_error(
            make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ, RateLimitedError
        )
    assert error.retry_after_s == 4
    with emulator(create_app(knobs(fault="unavailable"))) as (url, _):
        error = generate_error(make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ, ServerError)
    assert error.http_status == 503


def test_hung_job_times_out_without_cancel(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("kidjig", "kidjig", url, monkeypatch, timeout_s=0.2)
        error = generate_error(provider, MODEL, REQ, ProviderTimeoutError)
    assert "no cancel" in error.message and emu.cancels == []


def test_wrong_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(api_key="right"))) as (url, _):
        error = generate_error(make_provider("kidjig", "kidjig", url, monkeypatch), MODEL, REQ, AuthError)
    assert error.http_status == 401 and KEY not in error.message

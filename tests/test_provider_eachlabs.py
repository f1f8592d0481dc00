"""Eachlabs adapter against its emulator: create, poll, output shapes, failure codes, cancel."""

from __future__ import annotations

import math

import pytest
from _provider_harness import (
    KEY,
    assert_images,
    emulator,
    generate,
    generate_error,
    interrupt_while_polling,
    knobs,
    make_provider,
)

from bench.emulators.eachlabs import create_app
from bench.errors import (
    AuthError,
    InvalidRequestError,
    MalformedResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.request import ImageRequest

MODEL = "flux-2-klein-4b-text-to-image"
REQ = ImageRequest(prompt="a white swan on dark water", seed=9, width=1024, height=1024, steps=4)


def test_create_poll_url_cost_and_predict_time(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(queue_s=(0.01, 0.01), inference_s=(0.03, 0.03)))) as (url, emu):
        result = generate(make_provider("eachlabs", "eachlabs", url, monkeypatch), MODEL, REQ)
    assert_images(result)
    assert result.cost_usd == pytest.approx(0.012 * 1024 * 1024 / 1e6)
    assert result.timings.inference_s == pytest.approx(0.03)
    assert emu.calls[0] == "POST /v1/prediction/"
    assert emu.jobs[str(result.provider_request_id)].extra["input"]["image_size"] == "square_hd"


def test_data_uri_list_and_cost_off(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(report_cost=False))) as (url, _):
        req = ImageRequest(prompt="two kites", num_images=2, extra={"sync_mode": True})
        result = generate(make_provider("eachlabs", "eachlabs", url, monkeypatch), MODEL, req)
    assert_images(result, 2)
    assert result.images[0].source_url is None
    assert math.isnan(result.cost_usd)


@pytest.mark.parametrize("legacy", [False, True])
def test_refusal(monkeypatch: pytest.MonkeyPatch, legacy: bool) -> None:
    with emulator(create_app(knobs(fault="refuse"), legacy=legacy)) as (url, _):
        provider = make_provider("eachlabs", "eachlabs", url, monkeypatch)
        error = generate_error(provider, MODEL, REQ, RefusedError)
    assert "safety filter" in error.message


def test_schema_checked_before_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    with emulator(create_app(knobs())) as (url, emu):
        provider = make_provider("eachlabs", "eachlabs", url, monkeypatch)
        spec = provider.model_spec(MODEL)
        bad = {"prompt": "x", "image_size": "giant"}
        with pytest.raises(InvalidRequestError, match="image_size"):
            asyncio.run(provider.generate(spec, bad, REQ))
        assert emu.calls == []


def test_rate_limit_and_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="rate_limit", retry_after_s=3))) as (url, _):
        error = generate_error(
            make_provider("eachlabs", "eachlabs", url, monkeypatch), MODEL, REQ, RateLimitedError
        )
    assert error.retry_after_s == 3 and "Account rate limited" in error.message
    with emulator(create_app(knobs(fault="server_error"))) as (url, _):
        generate_error(make_provider("eachlabs", "eachlabs", url, monkeypatch), MODEL, REQ, ServerError)


@pytest.mark.parametrize("fault", ["malformed_json", "missing_field"])
def test_malformed(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    with emulator(create_app(knobs(fault=fault))) as (url, _):
        error = generate_error(
            make_provider("eachlabs", "eachlabs", url, monkeypatch), MODEL, REQ, MalformedResponseError
        )
    assert "expected" in error.message


def test_hung_prediction_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("eachlabs", "eachlabs", url, monkeypatch, timeout_s=0.2)
        generate_error(provider, MODEL, REQ, ProviderTimeoutError)
    assert emu.cancels == list(emu.jobs)


def test_interrupt_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("eachlabs", "eachlabs", url, monkeypatch)
        interrupt_while_polling(
            provider, MODEL, REQ, lambda: any(c.startswith("GET /v1/prediction/") for c in emu.calls)
        )
        assert emu.cancels == list(emu.jobs)


def test_wrong_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(api_key="right"))) as (url, _):
        error = generate_error(make_provider("eachlabs", "eachlabs", url, monkeypatch), MODEL, REQ, AuthError)
    assert "Invalid or missing API key" in error.message and KEY not in error.message

"""Replicate adapter against its emulator: Prefer: wait, polling, cancel, problem details."""

from __future__ import annotations

import asyncio

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

from bench.emulators.catalog import find, replicate_version
from bench.emulators.replicate import create_app
from bench.errors import (
    AuthError,
    InvalidRequestError,
    MalformedResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.providers.base import Provider
from bench.request import ImageRequest

REQ = ImageRequest(prompt="a blue house by a lake", seed=11, aspect_ratio="16:9", steps=4)
SCHNELL = "black-forest-labs/flux-schnell"


def test_prefer_wait_answers_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(queue_s=(0.02, 0.02), inference_s=(0.04, 0.04)))) as (url, emu):
        result = generate(make_provider("replicate", "replicate", url, monkeypatch), SCHNELL, REQ)
    assert_images(result)
    assert emu.calls[0] == f"POST /v1/models/{SCHNELL}/predictions"
    assert not any(c.startswith("GET /v1/predictions") for c in emu.calls)  # no polling needed
    assert result.timings.inference_s == pytest.approx(0.04)
    assert result.timings.queue_s == pytest.approx(0.02, abs=1e-3)


def test_polling_without_prefer_wait_and_pinned_version(monkeypatch: pytest.MonkeyPatch) -> None:
    known = find("replicate", "black-forest-labs/flux-1.1-pro")
    assert known is not None  # a version the emulated API has (an unknown one is a 422, as at Replicate)
    options = {
        "prefer_wait_s": 0,
        "versions": {"black-forest-labs/flux-1.1-pro": replicate_version(known)["id"]},
    }
    with emulator(create_app(knobs(inference_s=(0.05, 0.05)))) as (url, emu):
        provider = make_provider("replicate", "replicate", url, monkeypatch, options=options)
        result = generate(provider, "black-forest-labs/flux-1.1-pro", REQ)
    assert_images(result)  # flux-1.1-pro answers a single URL string, not a list
    assert emu.calls[0] == "POST /v1/predictions"
    assert any(c.startswith("GET /v1/predictions/") for c in emu.calls)


def test_num_outputs_list(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs())) as (url, _):
        req = ImageRequest(prompt="three red apples", num_images=3, guidance=3.5)
        result = generate(
            make_provider("replicate", "replicate", url, monkeypatch), "black-forest-labs/flux-dev", req
        )
    assert_images(result, 3)


def test_nsfw_failure_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="refuse"))) as (url, _):
        error = generate_error(
            make_provider("replicate", "replicate", url, monkeypatch), SCHNELL, REQ, RefusedError
        )
    assert "NSFW content detected" in error.message


def test_throttle_retry_after_and_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="rate_limit", retry_after_s=30))) as (url, _):
        error = generate_error(
            make_provider("replicate", "replicate", url, monkeypatch), SCHNELL, REQ, RateLimitedError
        )
    assert error.retry_after_s == 30
    assert "throttled" in error.message
    with emulator(create_app(knobs(fault="server_error"))) as (url, _):
        error = generate_error(
            make_provider("replicate", "replicate", url, monkeypatch), SCHNELL, REQ, ServerError
        )
    assert error.http_status == 500


@pytest.mark.parametrize("fault", ["malformed_json", "missing_field"])
def test_malformed(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    with emulator(create_app(knobs(fault=fault))) as (url, _):
        provider = make_provider("replicate", "replicate", url, monkeypatch)
        error = generate_error(provider, SCHNELL, REQ, MalformedResponseError)
    assert "expected" in error.message


def test_hung_prediction_times_out_and_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("replicate", "replicate", url, monkeypatch, timeout_s=0.3)
        generate_error(provider, SCHNELL, REQ, ProviderTimeoutError)
    assert emu.cancels == list(emu.jobs)


def test_interrupt_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("replicate", "replicate", url, monkeypatch, options={"prefer_wait_s": 0})
        interrupt_while_polling(
            provider, SCHNELL, REQ, lambda: any(c.startswith("GET /v1/pred") for c in emu.calls)
        )
        assert emu.cancels == list(emu.jobs)


def test_wrong_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(api_key="right"))) as (url, _):
        error = generate_error(
            make_provider("replicate", "replicate", url, monkeypatch), SCHNELL, REQ, AuthError
        )
    assert KEY not in error.message and error.http_status == 401


def test_invalid_input_is_invalid_request(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send_without_prompt(provider: Provider) -> None:
        try:
            await provider.generate(provider.model_spec(SCHNELL), {"not_a_prompt": 1}, REQ)
        finally:
            await provider.aclose()

    with emulator(create_app(knobs())) as (url, _):
        provider = make_provider("replicate", "replicate", url, monkeypatch)
        with pytest.raises(InvalidRequestError) as info:
            asyncio.run(send_without_prompt(provider))
    assert info.value.http_status == 422 and "input.prompt" in info.value.message

"""fal queue adapter against its emulator: submit, status, result, cancel."""

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

from bench.emulators.fal import create_app
from bench.errors import (
    AuthError,
    DownloadError,
    MalformedResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.request import ImageRequest

REQ = ImageRequest(prompt="a yellow star over a green hill", seed=3, width=1024, height=768, steps=4)


def test_queue_flow_urls_and_inference_time(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(knobs(queue_s=(0.03, 0.03), inference_s=(0.05, 0.05)))
    with emulator(app) as (url, emu):
        provider = make_provider("fal", "fal", url, monkeypatch)
        result = generate(provider, "fal-ai/flux/schnell", REQ)
    assert_images(result)
    assert result.timings.inference_s == pytest.approx(0.05)
    assert math.isnan(result.timings.queue_s)
    assert math.isnan(result.cost_usd)  # fal reports no cost: the price table prices it
    assert result.seed_used == 3
    statuses = [c for c in emu.calls if c.endswith("/status")]
    assert len(statuses) >= 2  # it polled through IN_QUEUE/IN_PROGRESS
    # follow-up URLs live on the app path, without the endpoint's /schnell
    assert all(c.startswith("GET /fal-ai/flux/requests/") for c in statuses)
    assert emu.calls[0] == "POST /fal-ai/flux/schnell"


def test_sync_mode_data_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs())) as (url, _):
        provider = make_provider("fal", "fal", url, monkeypatch)
        req = ImageRequest(prompt="a cat", num_images=2, extra={"sync_mode": True})
        result = generate(provider, "fal-ai/flux/dev", req)
    assert_images(result, 2)
    assert result.images[0].source_url is None


def test_aspect_ratio_model(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs())) as (url, _):
        provider = make_provider("fal", "fal", url, monkeypatch)
        result = generate(
            provider, "fal-ai/flux-pro/v1.1-ultra", ImageRequest(prompt="a dog", aspect_ratio="16:9")
        )
    assert_images(result)


def test_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="refuse"))) as (url, _):
        provider = make_provider("fal", "fal", url, monkeypatch)
        error = generate_error(provider, "fal-ai/flux/schnell", REQ, RefusedError)
    assert "content checker" in error.message and "content_policy_violation" in error.message


def test_rate_limit_and_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="rate_limit", retry_after_s=2.5))) as (url, _):
        error = generate_error(
            make_provider("fal", "fal", url, monkeypatch), "fal-ai/flux/schnell", REQ, RateLimitedError
        )
    assert error.retry_after_s == 2.5
    with emulator(create_app(knobs(fault="unavailable"))) as (url, _):
        error = generate_error(
            make_provider("fal", "fal", url, monkeypatch), "fal-ai/flux/schnell", REQ, ServerError
        )
    assert error.http_status == 503 and "runner_scheduling_failure" in error.message


@pytest.mark.parametrize("fault", ["malformed_json", "missing_field"])
def test_malformed_result(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    with emulator(create_app(knobs(fault=fault))) as (url, _):
        error = generate_error(
            make_provider("fal", "fal", url, monkeypatch), "fal-ai/flux/dev", REQ, MalformedResponseError
        )
    assert "expected" in error.message


def test_expired_url(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="expired_url"))) as (url, emu):
        error = generate_error(
            make_provider("fal", "fal", url, monkeypatch), "fal-ai/flux/dev", REQ, DownloadError
        )
    assert "expired" in error.message and error.http_status == 404
    # Gone is gone: fetched once, and the generation was not submitted again.
    assert sum(c.startswith("GET /files/") for c in emu.calls) == 1
    assert sum(c.startswith("POST ") for c in emu.calls) == 1


def test_hung_job_times_out_and_is_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("fal", "fal", url, monkeypatch, timeout_s=0.2)
        error = generate_error(provider, "fal-ai/flux/schnell", REQ, ProviderTimeoutError)
    assert "cancel requested" in error.message
    assert emu.cancels == list(emu.jobs)
    assert any(c.startswith("PUT /fal-ai/flux/requests/") for c in emu.calls)


def test_interrupt_cancels_remote_job(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("fal", "fal", url, monkeypatch)
        interrupt_while_polling(
            provider, "fal-ai/flux/schnell", REQ, lambda: any("/status" in c for c in emu.calls)
        )
        assert emu.cancels == list(emu.jobs)


def test_wrong_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(api_key="right"))) as (url, _):
        error = generate_error(
            make_provider("fal", "fal", url, monkeypatch), "fal-ai/flux/dev", REQ, AuthError
        )
    assert error.http_status == 401 and KEY not in error.message

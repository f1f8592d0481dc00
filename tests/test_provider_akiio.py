"""AKI.IO adapter against its emulator: sync call, wait_for_result=false + progress, success:false errors."""

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

from bench.emulators.akiio import create_app
from bench.errors import (
    AuthError,
    MalformedResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.request import ImageRequest

REQ = ImageRequest(
    prompt="an orange fox in snow", seed=5, width=512, height=384, steps=8, extra={"quality": "fast"}
)
ASYNC = {"wait_for_result": False}


def test_sync_call_data_uris_and_durations(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(queue_s=(0.01, 0.01), inference_s=(0.02, 0.02)))) as (url, emu):
        result = generate(make_provider("akiio", "akiio", url, monkeypatch), "z_image_turbo", REQ)
    assert_images(result)
    assert result.images[0].mime == "image/PNG"
    assert result.timings.inference_s == pytest.approx(0.02)
    assert result.timings.queue_s == pytest.approx(0.01)
    assert math.isnan(result.cost_usd)
    assert result.seed_used == 5
    assert emu.calls == ["POST /api/call/z_image_turbo"]


def test_true_cfg_scale_maps_from_guidance(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs())) as (url, _):
        provider = make_provider("akiio", "akiio", url, monkeypatch)
        spec = provider.model_spec("z_image_turbo")
        assert spec.guidance_param == "true_cfg_scale"
        result = generate(provider, "z_image_turbo", ImageRequest(prompt="a boat", guidance=4.5))
    assert_images(result)


def test_async_progress_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(queue_s=(0.02, 0.02), inference_s=(0.03, 0.03)))) as (url, emu):
        provider = make_provider("akiio", "akiio", url, monkeypatch, options=ASYNC)
        result = generate(provider, "z_image_turbo", REQ)
    assert_images(result)
    assert emu.calls.count("POST /api/progress/z_image_turbo") >= 2
    assert result.provider_request_id in emu.jobs


@pytest.mark.parametrize("as_200", [False, True])
def test_refusal_with_or_without_http_error(monkeypatch: pytest.MonkeyPatch, as_200: bool) -> None:
    with emulator(create_app(knobs(fault="refuse"), errors_as_200=as_200)) as (url, _):
        error = generate_error(
            make_provider("akiio", "akiio", url, monkeypatch), "z_image_turbo", REQ, RefusedError
        )
    assert "content safety filter" in error.message
    assert error.http_status == (200 if as_200 else 400)


@pytest.mark.parametrize("as_200", [False, True])
def test_wrong_key(monkeypatch: pytest.MonkeyPatch, as_200: bool) -> None:
    with emulator(create_app(knobs(api_key="right"), errors_as_200=as_200)) as (url, _):
        error = generate_error(
            make_provider("akiio", "akiio", url, monkeypatch), "z_image_turbo", REQ, AuthError
        )
    assert KEY not in error.message


def test_queue_full_and_server_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="rate_limit"))) as (url, _):
        generate_error(
            make_provider("akiio", "akiio", url, monkeypatch), "z_image_turbo", REQ, RateLimitedError
        )
    # "Endpoint disabled!" comes as HTTP 400 from the AIME API server: retried, not invalid.
    for fault, status in (("server_error", 500), ("unavailable", 400)):
        with emulator(create_app(knobs(fault=fault))) as (url, _):
            error = generate_error(
                make_provider("akiio", "akiio", url, monkeypatch), "z_image_turbo", REQ, ServerError
            )
        assert error.http_status == status


@pytest.mark.parametrize("options", [{}, ASYNC])
@pytest.mark.parametrize("fault", ["malformed_json", "missing_field"])
def test_malformed(monkeypatch: pytest.MonkeyPatch, fault: str, options: dict[str, bool]) -> None:
    with emulator(create_app(knobs(fault=fault))) as (url, _):
        provider = make_provider("akiio", "akiio", url, monkeypatch, options=options)
        error = generate_error(provider, "z_image_turbo", REQ, MalformedResponseError)
    assert "expected" in error.message


def test_hung_job_is_cancelled_through_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("akiio", "akiio", url, monkeypatch, options=ASYNC, timeout_s=0.3)
        generate_error(provider, "z_image_turbo", REQ, ProviderTimeoutError)
    assert emu.cancels == list(emu.jobs)


def test_hung_sync_call_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, _):
        provider = make_provider("akiio", "akiio", url, monkeypatch, timeout_s=0.3)
        generate_error(provider, "z_image_turbo", REQ, ProviderTimeoutError)


def test_interrupt_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"))) as (url, emu):
        provider = make_provider("akiio", "akiio", url, monkeypatch, options=ASYNC)
        interrupt_while_polling(
            provider, "z_image_turbo", REQ, lambda: "POST /api/progress/z_image_turbo" in emu.calls
        )
        assert emu.cancels == list(emu.jobs)

"""OpenAI-compatible adapter (openai, aimlapi, apipie profiles) against its emulator.

The OpenAI profile serves only the models OpenAI serves today (GPT image models, base64 answers);
URL answers and revised prompts are tested on APIpie's dall-e-3, which its model list still has.
"""

from __future__ import annotations

import math

import pytest
from _provider_harness import KEY, assert_images, emulator, generate, generate_error, knobs, make_provider

from bench.emulators.openai_compat import create_app
from bench.errors import (
    AuthError,
    DownloadError,
    MalformedResponseError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.images import inspect_image
from bench.request import ImageRequest

REQ = ImageRequest(prompt="a red cube on a blue table", seed=7, width=1024, height=1024)


def test_aimlapi_url_images_with_reported_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(), profile="aimlapi")) as (url, emu):
        provider = make_provider("openai_compat", "aimlapi", url, monkeypatch, options={"profile": "aimlapi"})
        result = generate(
            provider, "flux/schnell", ImageRequest(prompt="a red cube", steps=4, width=1024, height=576)
        )
    assert_images(result)
    assert result.images[0].source_url and result.images[0].source_url.startswith(url)
    assert result.cost_usd == pytest.approx(0.003 * 1024 * 576 / 1e6)
    assert result.usage["credits_used"] > 0
    assert result.timings.download_s >= 0
    assert "POST /v1/images/generations" in emu.calls


def test_aimlapi_credits_only_and_fal_shaped_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(), profile="aimlapi", fal_shape=True)) as (url, _):
        provider = make_provider("openai_compat", "aimlapi", url, monkeypatch, options={"profile": "aimlapi"})
        result = generate(provider, "flux/dev", ImageRequest(prompt="two green spheres", num_images=2))
    assert_images(result, 2)
    assert math.isnan(result.cost_usd)  # the fal-shaped answer carries no meta.usage


def test_aimlapi_cost_off_is_nan(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(report_cost=False), profile="aimlapi")) as (url, _):
        provider = make_provider("openai_compat", "aimlapi", url, monkeypatch, options={"profile": "aimlapi"})
        result = generate(provider, "alibaba/z-image-turbo", REQ)
    assert math.isnan(result.cost_usd)


def test_apipie_dalle3_url_and_b64_with_revised_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(), profile="apipie")) as (url, _):
        provider = make_provider("openai_compat", "apipie", url, monkeypatch, options={"profile": "apipie"})
        by_url = generate(provider, "dall-e-3", REQ)
        provider = make_provider("openai_compat", "apipie", url, monkeypatch, options={"profile": "apipie"})
        req_b64 = ImageRequest(prompt="a cat", extra={"response_format": "b64_json", "quality": "hd"})
        by_b64 = generate(provider, "dall-e-3", req_b64)
    assert_images(by_url)
    assert_images(by_b64)
    assert by_url.images[0].source_url is not None and by_b64.images[0].source_url is None
    assert by_url.revised_prompt == "A detailed rendering of a red cube on a blue table"


def test_openai_gpt_image_base64_with_request_id(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(), profile="openai")) as (url, _):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        result = generate(provider, "gpt-image-2", REQ)
    assert_images(result)
    assert result.images[0].source_url is None  # GPT image models always answer base64
    assert result.provider_request_id and result.provider_request_id.startswith("req_")
    assert math.isnan(result.cost_usd)  # OpenAI reports no money: the price table prices it


def test_openai_gpt_image_usage_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(), profile="openai")) as (url, _):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        result = generate(
            provider, "gpt-image-2", ImageRequest(prompt="a lighthouse", extra={"quality": "low"})
        )
    assert_images(result)
    assert result.usage["output_tokens"] == 272
    assert result.usage["input_tokens_details"]["text_tokens"] == 2
    assert math.isnan(result.cost_usd)


def test_apipie_usage_cost_and_latency(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(inference_s=(0.02, 0.02)), profile="apipie")) as (url, _):
        provider = make_provider("openai_compat", "apipie", url, monkeypatch, options={"profile": "apipie"})
        result = generate(provider, "dall-e-3", REQ)
    assert_images(result)
    assert result.cost_usd == pytest.approx(0.04)  # dall-e-3's flat req_price per image (APIpie's list)
    assert result.timings.inference_s == pytest.approx(0.02)
    assert result.revised_prompt is not None


@pytest.mark.parametrize(
    ("profile", "model", "reason"),
    [
        ("openai", "gpt-image-2", "safety system"),
        ("aimlapi", "flux/schnell", "content policy"),
        ("apipie", "stable-diffusion-3", "content policy"),
    ],
)
def test_refusal_is_refused_error_with_reason(
    monkeypatch: pytest.MonkeyPatch, profile: str, model: str, reason: str
) -> None:
    with emulator(create_app(knobs(fault="refuse"), profile=profile)) as (url, emu):
        provider = make_provider("openai_compat", profile, url, monkeypatch, options={"profile": profile})
        error = generate_error(provider, model, REQ, RefusedError)
    assert reason in error.message
    assert error.http_status == 400
    assert emu.submissions == 1


def test_gpt_image_moderation_blocked_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(), profile="openai")) as (url, _):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        error = generate_error(provider, "gpt-image-2", ImageRequest(prompt="REFUSE this"), RefusedError)
    assert "moderation_blocked" in error.message


@pytest.mark.parametrize(
    ("profile", "model"),
    [("openai", "gpt-image-2"), ("aimlapi", "flux/schnell"), ("apipie", "stable-diffusion-3")],
)
def test_rate_limit_carries_retry_after(monkeypatch: pytest.MonkeyPatch, profile: str, model: str) -> None:
    with emulator(create_app(knobs(fault="rate_limit", retry_after_s=7), profile=profile)) as (url, _):
        provider = make_provider("openai_compat", profile, url, monkeypatch, options={"profile": profile})
        error = generate_error(provider, model, REQ, RateLimitedError)
    assert error.retry_after_s == 7
    assert error.http_status == 429


@pytest.mark.parametrize(("fault", "status"), [("server_error", 500), ("unavailable", 503)])
def test_server_errors(monkeypatch: pytest.MonkeyPatch, fault: str, status: int) -> None:
    with emulator(create_app(knobs(fault=fault), profile="aimlapi")) as (url, _):
        provider = make_provider("openai_compat", "aimlapi", url, monkeypatch, options={"profile": "aimlapi"})
        error = generate_error(provider, "flux/schnell", REQ, ServerError)
    assert error.http_status == status
    assert error.provider_request_id  # AIML's requestId, for support tickets


@pytest.mark.parametrize("fault", ["malformed_json", "missing_field"])
def test_malformed_answers(monkeypatch: pytest.MonkeyPatch, fault: str) -> None:
    with emulator(create_app(knobs(fault=fault), profile="apipie")) as (url, _):
        provider = make_provider("openai_compat", "apipie", url, monkeypatch, options={"profile": "apipie"})
        error = generate_error(provider, "dall-e-3", REQ, MalformedResponseError)
    assert "expected" in error.message and "got" in error.message


def test_expired_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="expired_url"), profile="aimlapi")) as (url, _):
        provider = make_provider("openai_compat", "aimlapi", url, monkeypatch, options={"profile": "aimlapi"})
        error = generate_error(provider, "flux/schnell", REQ, DownloadError)
    assert error.http_status == 404 and error.error_type == "download"


def test_undecodable_image_fails_the_decode_check(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="bad_image"), profile="openai")) as (url, _):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        result = generate(provider, "gpt-image-2", REQ)
    with pytest.raises(MalformedResponseError):
        inspect_image(result.images[0].data)


def test_hung_request_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(create_app(knobs(fault="hang"), profile="openai")) as (url, _):
        provider = make_provider(
            "openai_compat", "openai", url, monkeypatch, options={"profile": "openai"}, timeout_s=0.3
        )
        generate_error(provider, "gpt-image-2", REQ, ProviderTimeoutError)


def test_wrong_key_is_auth_error_without_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # The emulator echoes the key it was sent, as OpenAI does (partly masked) in its 401 body.
    with emulator(create_app(knobs(api_key="the-right-key"), profile="openai")) as (url, _):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        error = generate_error(provider, "gpt-image-2", REQ, AuthError)
    assert error.http_status == 401
    assert "***" in error.message and KEY not in error.message

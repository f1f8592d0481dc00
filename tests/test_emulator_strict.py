"""Emulators refuse what the real APIs refuse, with each provider's documented error shape.

Each emulator checks a request against the schema it serves for discovery (fal's OpenAPI
input, Replicate's openapi_schema Input, Eachlabs' request_schema) or, for the OpenAI-style
APIs that serve no schema, the published limits the catalog ships (OpenAI SDK types, AIML's
OpenAPI files). The checker (bench.emulators.validate) is not the client's validation code, so
a client mistake reaches the emulator and fails there, as it would at the provider. Error
shapes: docs/provider-protocols.md §1, §2, §6, §7, §8.
"""

from __future__ import annotations

import httpx
from _provider_harness import KEY, emulator, knobs

from bench.emulators import eachlabs, fal, openai_compat, replicate

BEARER = {"Authorization": f"Bearer {KEY}"}


def test_fal_refuses_steps_beyond_its_published_maximum_and_unknown_apps() -> None:
    with emulator(fal.create_app(knobs())) as (url, emu):
        auth = {"Authorization": f"Key {KEY}"}
        bad = httpx.post(
            f"{url}/fal-ai/flux/dev", json={"prompt": "a cube", "num_inference_steps": 99}, headers=auth
        )
        assert bad.status_code == 422
        (item,) = bad.json()["detail"]
        assert item["loc"] == ["body", "num_inference_steps"] and item["type"] == "less_than_equal"
        size = httpx.post(
            f"{url}/fal-ai/flux/dev", json={"prompt": "a cube", "image_size": "huge"}, headers=auth
        )
        assert size.status_code == 422 and size.json()["detail"][0]["loc"] == ["body", "image_size"]
        ok = httpx.post(
            f"{url}/fal-ai/flux/dev",
            json={"prompt": "a cube", "image_size": {"width": 640, "height": 480}},
            headers=auth,
        )
        assert ok.status_code == 200  # fal's ImageSize object is a valid size
        unknown = httpx.post(f"{url}/fal-ai/no-such-app", json={"prompt": "a cube"}, headers=auth)
        assert unknown.status_code == 404
        assert len(emu.jobs) == 1  # only the valid request became a job


def test_replicate_refuses_num_outputs_99_with_invalid_fields() -> None:
    with emulator(replicate.create_app(knobs())) as (url, emu):
        bad = httpx.post(
            f"{url}/v1/models/black-forest-labs/flux-schnell/predictions",
            json={"input": {"prompt": "a cube", "num_outputs": 99}},
            headers=BEARER,
        )
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        body = bad.json()
        assert body["title"] == "Input validation failed"
        assert [f["field"] for f in body["invalid_fields"]] == ["input.num_outputs"]
        unknown_version = httpx.post(
            f"{url}/v1/predictions", json={"version": "0" * 64, "input": {"prompt": "a cube"}}, headers=BEARER
        )
        assert unknown_version.status_code == 422 and unknown_version.json()["title"].startswith(
            "Invalid version"
        )
        assert emu.jobs == {}


def test_eachlabs_refuses_out_of_range_input_and_unknown_models() -> None:
    with emulator(eachlabs.create_app(knobs())) as (url, emu):
        body = {
            "model": "flux-schnell",
            "version": "0.0.1",
            "input": {"prompt": "a cube", "num_inference_steps": 999},
        }
        bad = httpx.post(f"{url}/v1/prediction/", json=body, headers=BEARER)
        assert bad.status_code == 422 and "input.num_inference_steps" in bad.json()["error"]
        unknown = httpx.post(
            f"{url}/v1/prediction/",
            json={"model": "no-such-model", "input": {"prompt": "a cube"}},
            headers=BEARER,
        )
        assert (unknown.status_code, unknown.json()) == (
            404,
            {"error": "Failed to fetch model: model not found"},
        )
        assert emu.jobs == {}


def test_openai_refuses_a_size_its_model_does_not_make() -> None:
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        # gpt-image-2 makes any size with both sides divisible by 16 (1792x1024 is fine), not 1000.
        bad = httpx.post(
            f"{url}/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "a cube", "size": "1000x1000"},
            headers=BEARER,
        )
        assert bad.status_code == 400
        error = bad.json()["error"]
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            "size",
            "invalid_value",
        )
        assert emu.jobs == {}


def test_aimlapi_refuses_flux_seed_0_with_its_error_shape() -> None:
    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, emu):
        bad = httpx.post(
            f"{url}/v1/images/generations",
            json={"model": "flux/schnell", "prompt": "a cube", "seed": 0},
            headers=BEARER,
        )
        assert bad.status_code == 400
        body = bad.json()
        assert set(body) == {"message", "path", "requestId", "statusCode", "timestamp"}
        assert body["message"].startswith("Body validation error!") and "seed" in body["message"]
        assert emu.jobs == {}


def test_apipie_bills_dalle3_its_flat_price() -> None:
    with emulator(openai_compat.create_app(knobs(), profile="apipie")) as (url, _):
        answer = httpx.post(
            f"{url}/v1/images/generations",
            json={"model": "dall-e-3", "prompt": "a cube", "size": "1792x1024"},
            headers=BEARER,
        ).json()
        listed = httpx.get(f"{url}/v1/models", params={"type": "image"}, headers=BEARER).json()["data"]
    (row,) = [r for r in listed if r["id"] == "dall-e-3"]
    assert (row["price_unit"], answer["usage"]["cost"]) == ("image", row["req_price"])

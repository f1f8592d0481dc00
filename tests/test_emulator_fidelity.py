"""Fidelity fixes found by checking the real APIs' documentation (issue 9, item 7), one test each."""

from __future__ import annotations

import time

import httpx
import pytest
import yaml
from _provider_harness import KEY, emulator, generate, generate_error, knobs, make_provider

from bench.catalog.mapping import ParameterError, map_request
from bench.emulators import akiio, eachlabs, fal, kidjig, openai_compat, replicate
from bench.errors import RateLimitedError, RefusedError, ServerError
from bench.prices import PriceTable
from bench.request import ImageRequest

FAL_AUTH = {"Authorization": f"Key {KEY}"}
PROMPT = {"prompt": "a red cube"}


def test_fal_cancelled_request_has_no_result_and_a_second_cancel_is_refused() -> None:
    with emulator(fal.create_app(knobs(inference_s=(5.0, 5.0)))) as (url, _):
        submitted = httpx.post(f"{url}/fal-ai/flux/schnell", json=PROMPT, headers=FAL_AUTH).json()
        first = httpx.put(submitted["cancel_url"], headers=FAL_AUTH)
        assert (first.status_code, first.json()["status"]) == (202, "CANCELLATION_REQUESTED")
        again = httpx.put(submitted["cancel_url"], headers=FAL_AUTH)
        assert (again.status_code, again.json()["status"]) == (400, "ALREADY_COMPLETED")
        result = httpx.get(submitted["response_url"], headers=FAL_AUTH)
        assert result.status_code == 400 and "images" not in result.json()
        gone = httpx.put(submitted["cancel_url"].replace(submitted["request_id"], "nope"), headers=FAL_AUTH)
        assert (gone.status_code, gone.json()["status"]) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    ("where", "fault", "status"), [("status", "rate_limit", 429), ("result", "unavailable", 503)]
)
def test_fal_injects_faults_at_status_and_result_and_the_adapter_asks_again(
    where: str, fault: str, status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator(fal.create_app(knobs(fault=fault, fault_at=where, retry_after_s=0.01))) as (url, emu):
        submitted = httpx.post(f"{url}/fal-ai/flux/schnell", json=PROMPT, headers=FAL_AUTH)
        assert submitted.status_code == 200  # the submit itself went through
        follow = submitted.json()["status_url" if where == "status" else "response_url"]
        time.sleep(0.02)
        answer = httpx.get(follow, headers=FAL_AUTH)
        assert answer.status_code == status and answer.headers["x-fal-error-type"]
        assert httpx.get(follow, headers=FAL_AUTH).status_code == 200  # transient: the next call answers
        # The adapter asks the status/result again instead of failing the attempt: one submission,
        # one job paid for, and the images.
        emu.calls.clear()
        provider = make_provider("fal", "fal", url, monkeypatch)
        result = generate(provider, "fal-ai/flux/schnell", ImageRequest(prompt="a cube"))
        assert len(result.images) == 1
        assert [c for c in emu.calls if c.startswith("POST")] == ["POST /fal-ai/flux/schnell"]
        suffix = "/status" if where == "status" else result.provider_request_id or ""
        assert sum(c.startswith("GET") and c.endswith(suffix) for c in emu.calls) >= 2


def test_replicate_serves_model_and_version_routes_and_problem_details() -> None:
    headers = {"Authorization": f"Bearer {KEY}"}
    with emulator(replicate.create_app(knobs())) as (url, _):
        model = httpx.get(f"{url}/v1/models/fofr/sdxl-emoji", headers=headers).json()
        version_id = model["latest_version"]["id"]
        version = httpx.get(f"{url}/v1/models/fofr/sdxl-emoji/versions/{version_id}", headers=headers)
        assert (
            version.status_code == 200
            and "Input" in version.json()["openapi_schema"]["components"]["schemas"]
        )
        missing = httpx.get(f"{url}/v1/no/such/route", headers=headers)
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["status"] == 404 and missing.json()["title"]


def test_kidjig_failed_job_serves_no_images() -> None:
    headers = {"X-Api-Key": KEY}
    api = "/provider/api/v1/image"
    with emulator(kidjig.create_app(knobs())) as (url, _):
        job = httpx.post(
            f"{url}{api}/generate/flux-pro-v1.1-ultra", json={"prompt": "REFUSE this"}, headers=headers
        )
        request_id = job.json()["data"]["request_id"]
        status = httpx.get(f"{url}{api}/status/flux-pro-v1.1-ultra/{request_id}", headers=headers).json()
        assert status["data"]["status"] == "failed"
        result = httpx.get(f"{url}{api}/result/flux-pro-v1.1-ultra/{request_id}", headers=headers)
        assert result.status_code == 422 and "images" not in result.text


def test_eachlabs_shows_created_and_bills_no_refused_prediction() -> None:
    headers = {"X-API-Key": KEY}
    with emulator(eachlabs.create_app(knobs(queue_s=(2.0, 2.0)))) as (url, _):
        body = {"model": "flux-schnell", "version": "0.0.1", "input": {"prompt": "a cube"}}
        pid = httpx.post(f"{url}/v1/prediction/", json=body, headers=headers).json()["predictionID"]
        assert httpx.get(f"{url}/v1/prediction/{pid}", headers=headers).json()["status"] == "created"
    with emulator(eachlabs.create_app(knobs())) as (url, _):
        body = {"model": "flux-schnell", "version": "0.0.1", "input": {"prompt": "REFUSE this"}}
        pid = httpx.post(f"{url}/v1/prediction/", json=body, headers=headers).json()["predictionID"]
        time.sleep(0.05)
        refused = httpx.get(f"{url}/v1/prediction/{pid}", headers=headers).json()
        assert refused["status"] == "error" and "cost" not in refused["metrics"]


def test_eachlabs_model_output_type_array_answers_a_list() -> None:
    # The documented answer's shape is checked in test_catalog_eachlabs_discovery.py.
    with emulator(eachlabs.create_app(knobs())) as (url, _):
        # A model that can answer several images is published as output_type "array", and answers so.
        headers = {"X-API-Key": KEY}
        doc = httpx.get(f"{url}/v1/model", params={"slug": "hidream-i1-full-text-to-image"}).json()
        assert doc["output_type"] == "array"
        body = {"model": "hidream-i1-full-text-to-image", "input": {"prompt": "a cube"}}
        pid = httpx.post(f"{url}/v1/prediction/", json=body, headers=headers).json()["predictionID"]
        for _ in range(200):
            done = httpx.get(f"{url}/v1/prediction/{pid}", headers=headers).json()
            if done["status"] == "success":
                break
            time.sleep(0.02)
        assert isinstance(done["output"], list) and len(done["output"]) == 1


@pytest.mark.parametrize(
    ("fault", "text", "error"),
    [
        ("rate_limit", "Job queue reached max length", RateLimitedError),
        ("unavailable", "Endpoint disabled!", ServerError),
    ],
)
def test_akiio_queue_full_and_endpoint_disabled_are_retried(
    fault: str, text: str, error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    with emulator(akiio.create_app(knobs(fault=fault))) as (url, _):
        provider = make_provider("akiio", "akiio", url, monkeypatch)
        raised = generate_error(provider, "z_image_turbo", ImageRequest(prompt="a cube"), error)  # type: ignore[arg-type]
        assert raised.http_status == 400 and text in str(raised) and raised.retryable


def test_aiml_flux_seed_minimum_and_gpt_image_1(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, _):
        provider = make_provider("openai_compat", "aimlapi", url, monkeypatch, options={"profile": "aimlapi"})
        with pytest.raises(ParameterError, match=r"seed=0 .*>= 1"):
            map_request(provider.model_spec("flux/schnell"), ImageRequest(prompt="a cube", seed=0))
        spec = provider.model_spec("openai/gpt-image-1")
        with pytest.raises(ParameterError, match=r"size='auto'"):
            map_request(spec, ImageRequest(prompt="a cube", extra={"size": "auto"}))
        assert spec.params["n"].maximum == 1
        result = generate(provider, "openai/gpt-image-1", ImageRequest(prompt="a red cube"))
        assert result.images[0].source_url is not None  # URLs by default, not base64
        assert result.cost_usd != result.cost_usd  # NaN: AIML reports no money for it
        # AIML passes OpenAI's usage block through (its gpt-image-1 doc): tokens per kind, priced
        # by the table at the per-kind rates, not a bare total.
        assert result.usage["input_tokens_details"] == {"image_tokens": 0, "text_tokens": 3}
        assert result.usage["output_tokens"] == 272
        with open("configs/prices/default.yaml") as fh:
            table = PriceTable.from_prices_config(yaml.safe_load(fh))
        entry = table.lookup("aimlapi", "openai/gpt-image-1")
        assert entry is not None
        cost = entry.cost_usd(n_images=1, megapixels=None, seconds=None, usage=result.usage)
        assert cost == pytest.approx((3 * 5.0 + 272 * 40.0) / 1e6)


def test_refusal_is_still_a_refusal_on_fal(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(fal.create_app(knobs())) as (url, _):
        provider = make_provider("fal", "fal", url, monkeypatch)
        generate_error(provider, "fal-ai/flux/schnell", ImageRequest(prompt="REFUSE it"), RefusedError)

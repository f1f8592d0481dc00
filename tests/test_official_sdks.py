"""The providers' own Python SDKs drive our emulators: if an SDK cannot talk to an emulator, the
emulator is not faithful. Generation, polling, cancel where the API has one, one error type per SDK,
and the discovery endpoints the catalog reads. (openai, replicate, fal-client, aki-io: dev extras.)
"""

from __future__ import annotations

import fal_client
import fal_client.client
import httpx
import openai
import pytest
import replicate
from _provider_harness import KEY, emulator, knobs
from aki_io import Aki
from replicate.exceptions import ModelError

from bench.emulators import akiio, fal, openai_compat
from bench.emulators import replicate as replicate_emulator

PNG_MAGIC = b"\x89PNG"


def test_openai_sdk_generates_lists_models_and_raises_rate_limit() -> None:
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        b64 = client.images.generate(model="gpt-image-2", prompt="a red cube", quality="low")
        assert b64.data and b64.data[0].b64_json and b64.usage is not None and b64.usage.output_tokens == 272
        ids = {m.id for m in client.models.list()}
        # Today's image models are listed (checked 2026-12-06); the retired ones are not.
        assert {"gpt-image-2", "gpt-image-2.6-sunburst", "gpt-image-2.5-flare"} <= ids
        assert not ids & {"dall-e-3", "dall-e-2", "gpt-image-1", "gpt-image-1.5", "gpt-image-1-mini"}
    with emulator(openai_compat.create_app(knobs(fault="rate_limit"), profile="openai")) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        with pytest.raises(openai.RateLimitError):
            client.images.generate(model="gpt-image-2", prompt="a red cube")


def test_replicate_sdk_runs_model_and_version_routes_cancels_and_raises_model_error() -> None:
    with emulator(replicate_emulator.create_app(knobs())) as (url, emu):
        client = replicate.Client(api_token=KEY, base_url=url)
        output = client.run("black-forest-labs/flux-schnell", input={"prompt": "a red cube"})
        # The SDK wraps only replicate.delivery URLs in FileOutput; the emulator's are plain URLs.
        assert httpx.get(str(output[0])).content.startswith(PNG_MAGIC)
        model = client.models.get("fofr/sdxl-emoji")
        assert model.latest_version is not None
        version_id = model.latest_version.id
        assert "Input" in model.latest_version.openapi_schema["components"]["schemas"]
        versioned = client.run(f"fofr/sdxl-emoji:{version_id}", input={"prompt": "a red cube"})
        assert httpx.get(str(versioned[0])).content.startswith(PNG_MAGIC)
        assert "POST /v1/predictions" in emu.calls  # the version route, as the SDK sends it
        with pytest.raises(ModelError):
            client.run("black-forest-labs/flux-schnell", input={"prompt": "REFUSE this"})
    with emulator(replicate_emulator.create_app(knobs(inference_s=(30.0, 30.0)))) as (url, emu):
        client = replicate.Client(api_token=KEY, base_url=url)
        prediction = client.models.predictions.create(
            model="black-forest-labs/flux-schnell", input={"prompt": "a cube"}
        )
        assert prediction.status in ("starting", "processing")
        prediction.cancel()
        prediction.reload()
        assert prediction.status == "canceled" and emu.cancels == [prediction.id]


def test_fal_client_submits_polls_cancels_and_raises_http_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(fal.create_app(knobs(inference_s=(0.05, 0.05)))) as (url, _):
        monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{url}/")
        client = fal_client.SyncClient(key=KEY)
        handle = client.submit(
            "fal-ai/flux/schnell", arguments={"prompt": "a red cube", "image_size": "square"}
        )
        result = handle.get(interval=0.01)
        assert result["images"][0]["url"].startswith(url)
        assert isinstance(handle.status(), fal_client.Completed)
        refused = client.submit("fal-ai/flux/schnell", arguments={"prompt": "REFUSE this"})
        with pytest.raises(fal_client.client.FalClientHTTPError) as info:
            refused.get(interval=0.01)
        assert info.value.status_code == 422
    with emulator(fal.create_app(knobs(inference_s=(30.0, 30.0)))) as (url, emu):
        monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", f"{url}/")
        client = fal_client.SyncClient(key=KEY)
        slow = client.submit("fal-ai/flux/schnell", arguments={"prompt": "a cube"})
        assert isinstance(slow.status(), fal_client.Queued | fal_client.InProgress)
        slow.cancel()
        assert emu.cancels == [slow.request_id]
        with pytest.raises(fal_client.client.FalClientHTTPError):  # a cancelled request has no result
            slow.get(interval=0.01)


def test_aki_io_client_calls_polls_lists_endpoints_and_raises_permission_error() -> None:
    with emulator(akiio.create_app(knobs(inference_s=(0.05, 0.05)))) as (url, emu):
        aki = Aki("z_image_turbo", KEY, api_server=url, raise_exceptions=True)
        result = aki.do_api_request({"prompt": "a red cube", "width": 256, "height": 256})
        assert result["success"] and result["images"][0].startswith("data:image")
        progress: list[dict[str, object]] = []
        polled = aki.do_api_request(
            {"prompt": "a blue ball"},
            progress_callback=lambda info, data: progress.append(info),
            progress_interval=0.01,
        )
        assert polled["images"] and progress  # wait_for_result=false, then /api/progress until done
        assert any(c.startswith("POST /api/progress/") for c in emu.calls)
        endpoints = aki.get_endpoint_list()
        assert "z_image_turbo" in endpoints and len(endpoints) >= 10
        with pytest.raises(PermissionError):
            Aki("z_image_turbo", "", api_server=url, raise_exceptions=True).do_api_request({"prompt": "x"})


def test_aki_io_cancel_through_progress() -> None:
    with emulator(akiio.create_app(knobs(inference_s=(30.0, 30.0)))) as (url, emu):
        aki = Aki("z_image_turbo", KEY, api_server=url, raise_exceptions=True)

        def cancel_on_first_progress(info: dict[str, object], data: object) -> None:
            aki.cancel_request(str(info["job_id"]))

        result = aki.do_api_request(
            {"prompt": "a cube"}, progress_callback=cancel_on_first_progress, progress_interval=0.01
        )
        # The 30 s job never finished: it was cancelled, and no image was rendered or billed.
        assert emu.cancels and not emu.billed
        assert result.get("job_state") == "canceled" or not result.get("images")


def test_replicate_sdk_lists_models_versions_predictions_and_collections() -> None:
    with emulator(replicate_emulator.create_app(knobs(inference_s=(0.0, 0.0)))) as (url, emu):
        client = replicate.Client(api_token=KEY, base_url=url)
        listed = client.models.list()
        names = {f"{m.owner}/{m.name}" for m in listed.results}
        assert "black-forest-labs/flux-schnell" in names and listed.next is None
        model = client.models.get("fofr/sdxl-emoji")
        versions = model.versions.list()
        assert model.latest_version is not None and [v.id for v in versions] == [model.latest_version.id]
        made = client.models.predictions.create(
            model="black-forest-labs/flux-schnell", input={"prompt": "a cube"}
        )
        fetched = client.predictions.get(made.id)
        assert fetched.id == made.id and fetched.input == {"prompt": "a cube"}
        assert made.id in {p.id for p in client.predictions.list().results}
        collections = client.collections.list()
        assert [c.slug for c in collections.results] == ["text-to-image"]
        text_to_image = client.collections.get("text-to-image")
        assert "black-forest-labs/flux-schnell" in {f"{m.owner}/{m.name}" for m in text_to_image.models or []}
        for path in (
            "GET /v1/models",
            "GET /v1/predictions",
            "GET /v1/collections",
            "GET /v1/collections/text-to-image",
        ):
            assert path in emu.calls
        assert "GET /v1/models/fofr/sdxl-emoji/versions" in emu.calls


def test_fal_client_run_is_synchronous(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(fal.create_app(knobs(inference_s=(0.02, 0.02)))) as (url, emu):
        monkeypatch.setattr(fal_client.client, "RUN_URL_FORMAT", f"{url}/run/")
        client = fal_client.SyncClient(key=KEY)
        result = client.run("fal-ai/flux/schnell", arguments={"prompt": "a red cube", "image_size": "square"})
        assert httpx.get(result["images"][0]["url"]).content.startswith(PNG_MAGIC)
        assert emu.calls[0] == "POST /run/fal-ai/flux/schnell"  # one call: no queue, no polling
        with pytest.raises(fal_client.client.FalClientHTTPError) as info:
            client.run("fal-ai/flux/schnell", arguments={"prompt": "a cube", "num_inference_steps": 99})
        assert info.value.status_code == 422  # the same checks as the queue

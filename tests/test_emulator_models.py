"""Emulators serve exactly the models of their catalog and refuse any other id as the real API does.

A run with a retired or mistyped model must fail against the emulator where it would fail at the
real API. Each refusal is counted at the server: the request arrived, and no job was made.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pandas as pd
import pytest
from _provider_harness import KEY, emulator, generate_error, knobs, make_provider

from bench.catalog.shipped import shipped_document
from bench.cli.main import main
from bench.emulators import kidjig, openai_compat
from bench.emulators.openai_compat import open_size_problem, served_models
from bench.errors import UnknownModelError
from bench.request import ImageRequest

HEADERS = {"Authorization": f"Bearer {KEY}"}
REQ = ImageRequest(prompt="a red cube", width=1024, height=1024)


def post(url: str, model: str) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/images/generations", json={"model": model, "prompt": "a red cube"}, headers=HEADERS
    )


def test_openai_serves_its_current_image_models_and_refuses_the_rest() -> None:
    served = served_models("openai")
    assert {"gpt-image-2", "gpt-image-2.6-sunburst", "gpt-image-2.5-flare"} <= set(served)
    assert not {"dall-e-3", "gpt-image-1", "gpt-image-1.5", "chatgpt-image-latest", "gpt-4o"} & set(served)
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        assert all(post(url, model).status_code == 200 for model in served)
        retired, unknown, chat = post(url, "dall-e-3"), post(url, "gpt-image-9"), post(url, "gpt-4o")
        assert emu.submissions == len(served)  # the refused three made no job
        assert emu.calls.count("POST /v1/images/generations") == len(served) + 3
    # A model OpenAI shut down: its 404 model_not_found, in OpenAI's error shape.
    assert retired.status_code == 404
    assert retired.json() == {
        "error": {
            "message": "The model `dall-e-3` has been deprecated, learn more here: "
            "https://platform.openai.com/docs/deprecations",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    # An id the images endpoint does not know (a typo, a chat model): its 400 "Invalid model".
    for answer, model in ((unknown, "gpt-image-9"), (chat, "gpt-4o")):
        assert answer.status_code == 400
        error = answer.json()["error"]
        assert error["message"] == f"Invalid model {model}. The model argument should be left blank."
        assert error["type"] == "invalid_request_error" and error["code"] is None


@pytest.mark.parametrize("profile", ["openai", "aimlapi", "apipie"])
def test_every_shipped_model_is_served_and_no_retired_one_at_openai(profile: str) -> None:
    # The client's catalog (bench/catalog/data) and the emulated one must not drift apart: a
    # target the catalog offers must run against the emulator.
    document = shipped_document(profile)
    assert {m["slug"] for m in document["models"]} <= set(served_models(profile))
    if profile == "openai":
        assert not {r["model"] for r in document["retired"]} & set(served_models(profile))


@pytest.mark.parametrize("profile", ["aimlapi", "apipie"])
def test_gateways_refuse_ids_outside_their_lists(profile: str) -> None:
    with emulator(openai_compat.create_app(knobs(), profile=profile)) as (url, emu):
        listed = post(url, "dall-e-3")  # both gateways still list it, so both still answer it
        refused = post(url, "flux/schnel")
        assert emu.submissions == 1 and len(emu.calls) == 2
    assert listed.status_code == 200
    assert refused.status_code == 400
    if profile == "aimlapi":  # AIML's error body: message, path, requestId, statusCode, timestamp
        body = refused.json()
        assert body["message"].startswith("Body validation error! model")
        assert body["statusCode"] == 400 and body["path"] == "/v1/images/generations"
    else:  # APIpie's {"error": {code, message}}
        error = refused.json()["error"]
        assert error["code"] == "invalid_parameter" and "dall-e-3" in error["message"]


def test_kidjig_refuses_a_model_outside_its_catalog() -> None:
    with emulator(kidjig.create_app(knobs())) as (url, emu):
        api = f"{url}{kidjig.API}/generate"
        headers = {"X-Api-Key": KEY}
        ok = httpx.post(f"{api}/flux-pro-v1.1-ultra", json={"prompt": "a cube"}, headers=headers)
        typo = httpx.post(f"{api}/flux-pro-v1.1-ultr", json={"prompt": "a cube"}, headers=headers)
        assert emu.submissions == 1
    assert ok.status_code == 200
    assert typo.status_code == 404 and typo.json()["error"]["code"] == "model_not_found"


def test_adapter_says_retired_model_in_one_line_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        error = generate_error(provider, "dall-e-3", REQ, UnknownModelError)
        assert emu.calls == ["POST /v1/images/generations"] and emu.submissions == 0
    assert "\n" not in error.message
    assert error.message.startswith(f"openai:dall-e-3: {url} does not serve this model (HTTP 404: ")
    assert error.message.endswith("; it was retired on 2026-05-12, use openai:gpt-image-2.5-sunburst")
    assert error.error_type == "unknown_model" and not error.retryable


def test_adapter_names_the_successor_of_gpt_image_1_5(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        provider = make_provider("openai_compat", "openai", url, monkeypatch, options={"profile": "openai"})
        error = generate_error(provider, "gpt-image-1.5", REQ, UnknownModelError)
        assert emu.submissions == 0
    assert error.message.startswith(f"openai:gpt-image-1.5: {url} does not serve this model (HTTP 404: ")
    assert error.message.endswith("; it was retired on 2026-12-01, use openai:gpt-image-2.6-sunburst")


def test_official_sdk_gets_openais_answer_for_a_retired_model() -> None:
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        client = openai.OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
        with pytest.raises(openai.NotFoundError) as caught:
            client.images.generate(model="dall-e-3", prompt="a red cube")
        image = client.images.generate(model="gpt-image-2", prompt="a red cube")
        assert emu.submissions == 1
    assert caught.value.code == "model_not_found"
    assert image.data and image.data[0].b64_json


def test_a_run_with_a_retired_model_fails_against_the_emulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("T2I_TEST_KEY", KEY)
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        code = main(
            [
                "run",
                "models=openai",
                "targets=[openai:dall-e-3]",
                f"providers.openai.base_url={url}",
                "providers.openai.api_key_env=T2I_TEST_KEY",
                "prompts.n=2",
                "sweep=quick",
                "metrics=off",
                "runner.progress=off",
                f"results_dir={tmp_path}",
                "run_name=r",
            ]
        )
        assert emu.submissions == 0
        sent = emu.calls.count("POST /v1/images/generations")
    df = pd.read_parquet(tmp_path / "r" / "records.parquet")
    assert code == 1  # every request failed
    assert sent == len(df) and (df.attempts == 1).all()  # refused once each, never retried
    assert (df.error_type == "unknown_model").all()
    assert df.error_message.str.endswith("use openai:gpt-image-2.5-sunburst").all()
    err = capsys.readouterr().err
    # The terminal's closing line carries the adapter's one-line reason and its fix.
    assert "openai:dall-e-3: " in err and "use openai:gpt-image-2.5-sunburst" in err


def test_gpt_image_2_takes_any_size_its_published_rule_allows() -> None:
    rule = ("openai", "gpt-image-2")
    for size in ("1792x1024", "1024x1024", "3840x2160", "2160x3840", "1536x512", "auto"):
        assert open_size_problem(*rule, size) is None, size
    for size in ("1000x1000", "3840x1024", "4096x2048", "2304x2304", "big"):
        assert open_size_problem(*rule, size) is not None, size
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        wide = httpx.post(
            f"{url}/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "a cube", "size": "1792x1024"},
            headers=HEADERS,
        )
        too_wide = httpx.post(
            f"{url}/v1/images/generations",
            json={"model": "gpt-image-2", "prompt": "a cube", "size": "3840x1024"},
            headers=HEADERS,
        )
        assert emu.submissions == 1
    assert wide.status_code == 200
    assert too_wide.status_code == 400 and too_wide.json()["error"]["param"] == "size"

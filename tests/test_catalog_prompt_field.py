"""The text prompt's field found from Replicate's published answers, where it is not `prompt`.

tests/published/replicate/collections-get.text-to-image.no-prompt-field.json is Replicate's
recorded answer for its text-to-image collection (replicate-python's test cassette; origin in
tests/published/README.md), cut to the 12 of 38 models whose input has no `prompt` field. Each
model is served on 127.0.0.1 at GET /v1/models/{owner}/{name}, the path `bench catalog pull`
asks, as a models.get answer (the collection lists model objects of that shape).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _provider_harness import KEY, KEY_ENV
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.catalog.mapping import map_request
from bench.catalog.sources import Catalog, parse_catalog_settings
from bench.cli.hydra_config import compose_config
from bench.cli.main import main
from bench.config import parse_providers
from bench.emulators.serve import running
from bench.providers.registry import create_provider
from bench.request import ImageRequest

COLLECTION = json.loads(
    (
        Path(__file__).parent
        / "published"
        / "replicate"
        / "collections-get.text-to-image.no-prompt-field.json"
    ).read_text()
)
MODELS = {f"{m['owner']}/{m['name']}": m for m in COLLECTION["models"]}
# The field each model's text goes to, as its published schema names and describes it.
EXPECTED = {
    "huiyegit/t2i_cl": "sentence",
    "ouhenio/stylegan3-clip": "texts",
    "gnobitab/fusedream": "sentence",
    "pixray/text2image": "prompts",
    "kuprel/min-dalle": "text",
    "nightmareai/k-diffusion": "text_prompt",
    "cjwbw/clip-gen": "text",
    "afiaka87/retrieval-augmented-diffusion": "prompts",
    "deforum/deforum_stable_diffusion": "animation_prompts",
}
AMBIGUOUS = {"nightmareai/majesty-diffusion": ("clip_prompts", "latent_prompt")}
NO_TEXT = ("meta/ic_gan", "xl-sr/projected_gan")  # an image-conditioned GAN and an unconditional one


@pytest.fixture
def replicate_models(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    calls: list[str] = []

    async def get_model(request: Request) -> JSONResponse:
        name = f"{request.path_params['owner']}/{request.path_params['name']}"
        calls.append(name)
        model = MODELS.get(name)
        if model is None:
            return JSONResponse(
                {"title": "Not found", "detail": "Not found.", "status": 404}, status_code=404
            )
        return JSONResponse(model)

    with running(Starlette(routes=[Route("/v1/models/{owner}/{name}", get_model)])) as url:
        yield url, calls


def overrides(url: str, cache: Path, *extra: str) -> list[str]:
    return [
        f"catalog.cache_dir={cache}",
        f"providers.replicate.base_url={url}",
        f"providers.replicate.api_key_env={KEY_ENV}",
        *extra,
    ]


def resolve(ov: list[str], model: str) -> Any:
    cfg = compose_config(ov)
    pc = parse_providers(cfg["providers"])["replicate"]
    return Catalog(parse_catalog_settings(cfg)).resolve(create_provider(pc.adapter, pc.settings), model).spec


def test_the_published_collection_has_twelve_models_without_a_prompt_field() -> None:
    assert len(MODELS) == 12 == len(EXPECTED) + len(AMBIGUOUS) + len(NO_TEXT)
    for model in MODELS.values():
        assert (
            "prompt"
            not in model["latest_version"]["openapi_schema"]["components"]["schemas"]["Input"]["properties"]
        )


def test_catalog_pull_finds_the_text_field_and_says_which(
    replicate_models: tuple[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, calls = replicate_models
    ov = overrides(url, tmp_path)
    assert main(["catalog", "pull", *(f"replicate:{m}" for m in EXPECTED), *ov]) == 0
    out = capsys.readouterr().out
    assert calls == list(EXPECTED)
    for model, field in EXPECTED.items():
        assert f"replicate:{model}  [fetched]" in out
        spec = resolve(ov, model)
        assert spec.prompt_param == field
        assert f"normalized: prompt={field}" in out  # the choice is shown
        payload = map_request(spec, ImageRequest(prompt="a red cube")).payload
        assert payload[field] == "a red cube" and "prompt" not in payload


def test_an_ambiguous_text_field_is_named_by_the_user(
    replicate_models: tuple[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = replicate_models
    (model, (first, second)) = next(iter(AMBIGUOUS.items()))
    assert main(["catalog", "pull", f"replicate:{model}", *overrides(url, tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"several fields may carry the prompt ({first}, {second})" in err and "prompt_field" in err
    named = overrides(url, tmp_path, f"+catalog.prompt_fields=['replicate:{model}={second}']")
    assert main(["catalog", "pull", f"replicate:{model}", *named]) == 0
    assert f"normalized: prompt={second}" in capsys.readouterr().out
    assert resolve(named, model).prompt_param == second
    for gone in NO_TEXT:
        assert main(["catalog", "pull", f"replicate:{gone}", *overrides(url, tmp_path)]) == 2
        assert "no text prompt field" in capsys.readouterr().err


def test_a_named_field_that_is_not_a_string_is_refused(
    replicate_models: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, _ = replicate_models
    ov = overrides(url, tmp_path, "+catalog.prompt_fields=['replicate:kuprel/min-dalle=seed']")
    with pytest.raises(Exception, match=r"prompt_field 'seed' is not a string field"):
        resolve(ov, "kuprel/min-dalle")

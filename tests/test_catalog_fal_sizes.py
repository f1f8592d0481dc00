"""fal sizes and aspect ratios, from documents in fal's published OpenAPI shape on 127.0.0.1.

The shape is fal's queue OpenAPI 3.0 document (GET /api/openapi/queue/openapi.json?endpoint_id=ID;
docs/provider-protocols.md §7): the input is the POST body's $ref, `image_size` is anyOf
[$ref ImageSize {width, height}, enum of presets], order in x-fal-order-properties. The
nano-banana-pro values are the ones issue 21 reports from fal's published document (an
aspect_ratio enum holding `2.4:1` and `auto` beside plain ratios; resolution 1K/2K/4K); that
document itself was not found in the stored material, so the enum below is the reported one.

Issue 21, defect 3: an option that does not parse as a ratio must never drop the parameter;
defect 6: image_size as a {width, height} object, 16:9 onto landscape_16_9, approximations said.
"""

from __future__ import annotations

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

PRESETS = ["square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"]
IMAGE_SIZE = {
    "title": "ImageSize",
    "type": "object",
    "properties": {
        "width": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14142, "default": 512},
        "height": {"type": "integer", "exclusiveMinimum": 0, "maximum": 14142, "default": 512},
    },
}


def fal_document(
    endpoint: str, properties: dict[str, Any], *, image_size_object: bool = True
) -> dict[str, Any]:
    name = "Input"
    return {
        "openapi": "3.0.4",
        "info": {"title": endpoint, "version": "1.0.0", "x-fal-metadata": {"endpointId": endpoint}},
        "components": {
            "schemas": {
                name: {
                    "type": "object",
                    "properties": properties,
                    "required": ["prompt"],
                    "x-fal-order-properties": list(properties),
                },
                **({"ImageSize": IMAGE_SIZE} if image_size_object else {}),
            }
        },
        "paths": {
            f"/{endpoint}": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                    }
                }
            }
        },
    }


NANO_BANANA_PRO = fal_document(
    "fal-ai/nano-banana-pro",
    {
        "prompt": {"type": "string", "title": "Prompt"},
        "aspect_ratio": {
            "type": "string",
            "enum": [
                "21:9",
                "16:9",
                "3:2",
                "4:3",
                "5:4",
                "1:1",
                "4:5",
                "3:4",
                "2:3",
                "9:16",
                "2.4:1",
                "auto",
            ],
            "default": "1:1",
        },
        "resolution": {"type": "string", "enum": ["1K", "2K", "4K"], "default": "1K"},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
    },
    image_size_object=False,
)
FLUX_DEV = fal_document(
    "fal-ai/flux/dev",
    {
        "prompt": {"type": "string"},
        "image_size": {
            "default": "landscape_4_3",
            "anyOf": [{"$ref": "#/components/schemas/ImageSize"}, {"type": "string", "enum": PRESETS}],
        },
        "num_inference_steps": {"type": "integer", "minimum": 1, "maximum": 50, "default": 28},
    },
)
PRESETS_ONLY = fal_document(
    "acme/presets-only",
    {"prompt": {"type": "string"}, "image_size": {"type": "string", "enum": PRESETS, "default": "square_hd"}},
    image_size_object=False,
)
DOCUMENTS = {
    doc["info"]["x-fal-metadata"]["endpointId"]: doc for doc in (NANO_BANANA_PRO, FLUX_DEV, PRESETS_ONLY)
}


@pytest.fixture
def fal_openapi(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[str]]]:
    monkeypatch.setenv(KEY_ENV, KEY)
    calls: list[str] = []

    async def openapi(request: Request) -> JSONResponse:
        endpoint = request.query_params.get("endpoint_id", "")
        calls.append(endpoint)
        doc = DOCUMENTS.get(endpoint)
        return JSONResponse(doc or {"detail": "not found"}, status_code=200 if doc else 404)

    async def pricing(request: Request) -> JSONResponse:
        return JSONResponse({"detail": "no price here"}, status_code=404)

    routes = [Route("/api/openapi/queue/openapi.json", openapi), Route("/v1/models/pricing", pricing)]
    with running(Starlette(routes=routes)) as url:
        yield url, calls


def pull(url: str, cache: Path, *models: str) -> dict[str, Any]:
    """`bench catalog pull` against the loopback document server; the specs as the catalog holds them."""
    ov = [
        f"catalog.cache_dir={cache}",
        f"+providers.fal.options.catalog_base_url={url}",
        f"providers.fal.api_key_env={KEY_ENV}",
    ]
    assert main(["catalog", "pull", *(f"fal:{m}" for m in models), *ov]) == 0
    cfg = compose_config(ov)
    pc = parse_providers(cfg["providers"])["fal"]
    catalog = Catalog(parse_catalog_settings(cfg))
    provider = create_provider(pc.adapter, pc.settings)
    return {m: catalog.resolve(provider, m).spec for m in models}


def test_an_unparseable_ratio_option_never_drops_the_aspect_ratio_parameter(
    fal_openapi: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, calls = fal_openapi
    spec = pull(url, tmp_path, "fal-ai/nano-banana-pro")["fal-ai/nano-banana-pro"]
    assert calls == ["fal-ai/nano-banana-pro"]
    assert (spec.aspect_ratio_param, spec.size_mode, spec.size_param) == (
        "aspect_ratio",
        "resolution",
        "resolution",
    )
    wide = map_request(spec, ImageRequest(prompt="a fox", width=1024, height=576))
    assert (
        wide.payload == {"prompt": "a fox", "aspect_ratio": "16:9", "resolution": "1K"} and not wide.left_out
    )
    # 2.4:1 itself is an option the mapping reads: 2400x1000 goes as aspect_ratio 2.4:1
    cinema = map_request(spec, ImageRequest(prompt="a fox", aspect_ratio="12:5"))
    assert cinema.payload["aspect_ratio"] == "2.4:1"
    # what cannot be carried is said, never silently dropped
    odd = map_request(spec, ImageRequest(prompt="a fox", width=1000, height=300))
    assert "aspect_ratio" not in odd.payload and "cannot be expressed as aspect_ratio" in odd.left_out["size"]
    shape_only = map_request(spec, ImageRequest(prompt="a fox", width=1200, height=900))
    assert (
        shape_only.payload["aspect_ratio"] == "4:3"
        and "cannot be expressed as resolution" in shape_only.left_out["size"]
    )


def test_image_size_object_preset_and_approximation(
    fal_openapi: tuple[str, list[str]], tmp_path: Path
) -> None:
    url, _ = fal_openapi
    specs = pull(url, tmp_path, "fal-ai/flux/dev", "acme/presets-only")
    flux, presets_only = specs["fal-ai/flux/dev"], specs["acme/presets-only"]
    assert flux.size_object == {"max_side_px": 14142} and presets_only.size_object is None
    # an exact preset is the preset; another size is the {width, height} object fal documents
    assert (
        map_request(flux, ImageRequest(prompt="x", width=1024, height=576)).payload["image_size"]
        == "landscape_16_9"
    )
    full_hd = map_request(flux, ImageRequest(prompt="x", width=1920, height=1080))
    assert full_hd.payload["image_size"] == {"width": 1920, "height": 1080} and not full_hd.left_out
    # a shape alone (16:9) is the preset of that shape
    assert (
        map_request(flux, ImageRequest(prompt="x", aspect_ratio="16:9")).payload["image_size"]
        == "landscape_16_9"
    )
    # presets only: 1920x1080 is approximated by landscape_16_9, and that is said
    approx = map_request(presets_only, ImageRequest(prompt="x", width=1920, height=1080))
    assert approx.payload["image_size"] == "landscape_16_9"
    assert (
        approx.left_out["size"]
        == "1920x1080 approximated as landscape_16_9 (1024x576): the model takes only presets"
    )


def test_a_run_records_and_warns_once_what_was_left_out(
    fal_openapi: tuple[str, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = fal_openapi
    ov = [
        f"catalog.cache_dir={tmp_path / 'c'}",
        f"+providers.fal.options.catalog_base_url={url}",
        f"providers.fal.api_key_env={KEY_ENV}",
    ]
    code = main(
        [
            "estimate",
            "targets=[fal:acme/presets-only]",
            "sweep=quick",
            "sweep.sizes=[1920x1080]",
            "prompts.n=3",
            *ov,
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "acme/presets-only: not sent" in line]
    assert len(warnings) == 1 and "approximated as landscape_16_9" in warnings[0]

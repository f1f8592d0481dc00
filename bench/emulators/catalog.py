"""The emulators' discovery and price endpoints, in each provider's own document shape.

The models come from bench/emulators/data/catalog.json (at least ten per provider
with a catalog API), written in a compact form and rendered here the way each
provider publishes them: fal as an OpenAPI 3.0 document per endpoint (input
`$ref`, `anyOf` for image_size, `x-fal-order-properties`), Replicate as a model
object whose `latest_version.openapi_schema` has enums as `allOf` `$ref`s and
`x-order`, Eachlabs as its ModelDetail object (`request_schema`, `output_type`, the
`cost` estimate), the OpenAI-style gateways as model lists, AKI.IO as its endpoint list.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.catalog.mapping import IMAGE_SIZE_PRESETS

if TYPE_CHECKING:
    from bench.emulators.routes import Routes

CREATED_AT = "2026-11-01T00:00:00Z"


@functools.cache
def emulated_catalog() -> dict[str, Any]:
    text = resources.files("bench.emulators").joinpath("data", "catalog.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def models_of(provider: str) -> list[Any]:
    found: list[Any] = emulated_catalog()[provider]
    return found


def find(provider: str, model_id: str) -> dict[str, Any] | None:
    return next((m for m in models_of(provider) if isinstance(m, dict) and m["id"] == model_id), None)


def _title(name: str) -> str:
    return name.replace("_", " ").title()


def _json_schema(param: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"title": _title(param["name"]), "type": param["type"]}
    for src, dst in (("description", "description"), ("default", "default"), ("enum", "enum")):
        if src in param:
            out[dst] = param[src]
    if "min" in param:
        out["minimum"] = param["min"]
    if "max" in param:
        out["maximum"] = param["max"]
    if param["type"] == "array":
        out["items"] = {"type": "string"}
    if param.get("preset"):  # a size preset name (fal renders these as anyOf with ImageSize)
        out["enum"] = list(IMAGE_SIZE_PRESETS)
    return out


def _required(params: list[Mapping[str, Any]]) -> list[str]:
    return [p["name"] for p in params if p.get("required")]


# ---- fal -------------------------------------------------------------------------------
def fal_openapi(model: Mapping[str, Any]) -> dict[str, Any]:
    endpoint = str(model["id"])
    name = "".join(part.title() for part in endpoint.replace("-", "/").replace(".", "/").split("/")) + "Input"
    properties: dict[str, Any] = {}
    for p in model["params"]:
        if p.get("preset"):
            properties[p["name"]] = {
                "title": "Image Size",
                "description": p.get("description", ""),
                "default": p.get("default"),
                "anyOf": [
                    {"$ref": "#/components/schemas/ImageSize"},
                    {"type": "string", "enum": list(IMAGE_SIZE_PRESETS)},
                ],
            }
        elif p["name"] == "seed":  # fal's optional integers: anyOf with null
            schema = _json_schema(p)
            properties["seed"] = {
                "title": "Seed",
                "description": schema.get("description", ""),
                "anyOf": [
                    {k: v for k, v in schema.items() if k not in ("title", "description")},
                    {"type": "null"},
                ],
            }
        else:
            properties[p["name"]] = _json_schema(p)
    input_schema = {
        "title": name,
        "type": "object",
        "properties": properties,
        "required": _required(model["params"]),
        "x-fal-order-properties": [p["name"] for p in model["params"]],
    }
    image_size = {
        "title": "ImageSize",
        "type": "object",
        "properties": {
            "width": {
                "title": "Width",
                "type": "integer",
                "default": 512,
                "exclusiveMinimum": 0,
                "maximum": 14142,
            },
            "height": {
                "title": "Height",
                "type": "integer",
                "default": 512,
                "exclusiveMinimum": 0,
                "maximum": 14142,
            },
        },
        "x-fal-order-properties": ["width", "height"],
    }
    return {
        "openapi": "3.0.4",
        "info": {
            "title": model.get("title", endpoint),
            "version": "1.0.0",
            "x-fal-metadata": {"endpointId": endpoint},
        },
        "components": {
            "securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization"}},
            "schemas": {name: input_schema, "ImageSize": image_size},
        },
        "paths": {
            f"/{endpoint}": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
                    },
                    "responses": {"200": {"description": "The request status."}},
                }
            }
        },
    }


def fal_routes(routes: Routes) -> list[Route]:
    """fal's discovery routes: the queue OpenAPI document of an endpoint (no key) and its prices."""

    async def openapi(request: Request) -> Response:
        endpoint = request.query_params.get("endpoint_id", "")
        model = find("fal", endpoint)
        if model is None:
            return JSONResponse({"detail": f"Endpoint {endpoint!r} not found"}, status_code=404)
        return JSONResponse(fal_openapi(model))

    async def pricing(request: Request) -> Response:
        if not routes.emu.key_ok(routes.protocol.key(request)):
            return JSONResponse({"detail": "Cannot access pricing: invalid key"}, status_code=401)
        wanted = request.query_params.getlist("endpoint_id")
        rows = [
            {
                "endpoint_id": m["id"],
                "unit_price": m["price"]["unit_price"],
                "unit": m["price"]["unit"],
                "currency": "USD",
            }
            for m in models_of("fal")
            if not wanted or m["id"] in wanted
        ]
        if wanted and not rows:
            return JSONResponse({"detail": "Endpoint not found"}, status_code=404)
        return JSONResponse({"prices": rows, "next_cursor": None, "has_more": False})

    return [
        routes.open("/api/openapi/queue/openapi.json", openapi),
        routes.open("/v1/models/pricing", pricing),
    ]


# ---- Replicate -------------------------------------------------------------------------
def replicate_openapi(model: Mapping[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    enums: dict[str, Any] = {}
    for order, p in enumerate(model["params"]):
        schema = _json_schema(p)
        if "enum" in schema:
            # Cog writes enums as their own component and refers to it through allOf.
            enums[p["name"]] = {
                "title": p["name"],
                "description": "An enumeration.",
                "enum": schema.pop("enum"),
                "type": schema.pop("type"),
            }
            schema = {
                "allOf": [{"$ref": f"#/components/schemas/{p['name']}"}],
                **{k: v for k, v in schema.items() if k != "title"},
            }
        schema["x-order"] = order
        properties[p["name"]] = schema
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {
            "schemas": {
                "Input": {
                    "type": "object",
                    "title": "Input",
                    "required": _required(model["params"]),
                    "properties": properties,
                },
                "Output": {"type": "array", "title": "Output", "items": {"type": "string", "format": "uri"}},
                **enums,
            }
        },
    }


def replicate_version(model: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": model.get("version") or hashlib.sha256(str(model["id"]).encode()).hexdigest(),
        "created_at": CREATED_AT,
        "cog_version": "0.16.0",
        "openapi_schema": replicate_openapi(model),
    }


def replicate_model(model: Mapping[str, Any], base: str) -> dict[str, Any]:
    owner, name = str(model["id"]).split("/")
    return {
        "url": f"{base}/{owner}/{name}",
        "owner": owner,
        "name": name,
        "description": model.get("title", ""),
        "visibility": "public",
        "github_url": None,
        "paper_url": None,
        "license_url": None,
        "run_count": 1000,
        "cover_image_url": None,
        "default_example": None,
        "is_official": bool(model.get("official")),
        "latest_version": replicate_version(model),
    }


def replicate_model_for_version(version_id: str) -> dict[str, Any] | None:
    return next((m for m in models_of("replicate") if replicate_version(m)["id"] == version_id), None)


# ---- Eachlabs --------------------------------------------------------------------------
# Eachlabs' ModelDetail: mintlify-docs api/models/get-model.mdx and openapi_specs/models.json.
def eachlabs_output_type(model: Mapping[str, Any]) -> str:
    """`array` for a model that can answer several images, else `string` (one URL)."""
    names = {p["name"] for p in model["params"]}
    return "array" if names & {"num_images", "num_outputs"} else "string"


def eachlabs_model(model: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "title": model.get("title", model["id"]),
        "slug": model["id"],
        "version": "0.0.1",  # deprecated by Eachlabs: always "0.0.1"
        "output_type": eachlabs_output_type(model),
        "request_schema": {
            "type": "object",
            "required": _required(model["params"]),
            "properties": {p["name"]: _json_schema(p) for p in model["params"]},
        },
    }


# ---- OpenAI-compatible model lists -----------------------------------------------------
def openai_models(profile: str) -> dict[str, Any]:
    if profile == "apipie":
        rows = [
            {
                "id": m["id"],
                "model": m["id"],
                "route": m["id"],
                "provider": m["provider"],
                "req_price": m["req_price"],
                "res_price": 0,
                "price_type": "image",
                "price_unit": m["price_unit"],
                "avg_cost": m["req_price"],
                "latency": 4500,
                "available": 1,
                "type": "image",
            }
            for m in models_of("apipie")
        ]
        return {"data": rows}
    owner = "aimlapi" if profile == "aimlapi" else "openai"
    ids = models_of(profile)
    return {
        "object": "list",
        "data": [
            {"id": i, "object": "model", "created": 1_700_000_000, "owned_by": owner, "type": "image"}
            for i in ids
        ],
    }

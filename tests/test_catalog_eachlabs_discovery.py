"""Eachlabs discovery reads the model document Eachlabs publishes, and nothing it guessed.

GET https://api.eachlabs.ai/v1/models/{slug} answers a ModelDetail (eachlabs/mintlify-docs
api/models/get-model.mdx, openapi_specs/models.json): {title, slug, version, output_type,
request_schema, cost}. `cost` is null (no pricing document), `fixed` (an amount per execution)
or `usage_based` (amount null; rates per unit from min to max). The documents below follow
those pages and are served over HTTP on 127.0.0.1, as the real API would answer them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.catalog.discovery import CatalogError, FetchContext, discover_eachlabs, eachlabs_cost
from bench.emulators.serve import running
from bench.providers.base import ProviderSettings

SCHEMA = {
    "type": "object",
    "required": ["prompt"],
    "properties": {
        "prompt": {"type": "string"},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
    },
}
NOTE = "Pricing is an estimate and may change as rates are updated."


def usage_based(low: float, high: float, unit: str = "megapixel") -> dict[str, Any]:
    return {
        "currency": "USD",
        "type": "usage_based",
        "amount": None,
        "unit": unit,
        "estimate": f"${low:g}–${high:g} per {unit}",
        "description": NOTE,
        "min": low,
        "max": high,
        "depends_on": [] if low == high else ["resolution"],
        "rows": [],
    }


def model_doc(slug: str, cost: Mapping[str, Any] | None, **extra: Any) -> dict[str, Any]:
    return {
        "title": slug.title(),
        "slug": slug,
        "version": "0.0.1",
        "output_type": "array",
        "request_schema": SCHEMA,
        "cost": cost,
        **extra,
    }


@contextmanager
def eachlabs_serving(docs: Mapping[str, Mapping[str, Any]]) -> Iterator[FetchContext]:
    async def get_model(request: Request) -> JSONResponse:
        doc = docs.get(request.path_params["slug"])
        if doc is None:
            return JSONResponse({"error": "Failed to fetch model: model not found"}, status_code=404)
        return JSONResponse(doc)

    app = Starlette(routes=[Route("/v1/models/{slug}", get_model, methods=["GET"])])
    with running(app) as url, httpx.Client(timeout=10) as client:
        settings = ProviderSettings(name="eachlabs", base_url=url, allow_private_urls=True)
        yield FetchContext(provider="eachlabs", catalog="eachlabs", settings=settings, client=client)


def test_schema_is_read_from_request_schema_only() -> None:
    """`request_schema` is the documented key; a document without it is not taken on a guess."""
    guessed = model_doc("guessed", None)
    guessed["input_schema"] = guessed.pop("request_schema")
    docs = {"real": model_doc("real", None), "guessed": guessed}
    with eachlabs_serving(docs) as ctx:
        found = discover_eachlabs(ctx, "real")
        assert {p["name"] for p in found.entry["params"]} >= {"prompt", "num_images"}
        assert found.price is None  # cost null: no pricing document, so no live price
        with pytest.raises(CatalogError, match=r"eachlabs:guessed: .* has no request_schema"):
            discover_eachlabs(ctx, "guessed")


def test_cost_shapes_as_published() -> None:
    url = "https://api.eachlabs.ai/v1/models/m"
    fixed = {
        "currency": "USD",
        "type": "fixed",
        "amount": 0.04,
        "unit": "execution",
        "estimate": "$0.04 per execution",
        "description": NOTE,
        "min": None,
        "max": None,
        "depends_on": [],
        "rows": [],
    }
    price = eachlabs_cost({"cost": fixed}, url)
    assert price is not None and (price.unit, price.usd) == ("request", 0.04)
    # A single usage-based rate prices every request; a range depends on the input.
    single = eachlabs_cost({"cost": usage_based(0.025, 0.025)}, url)
    assert single is not None and (single.unit, single.usd) == ("megapixel", 0.025)
    assert eachlabs_cost({"cost": usage_based(0.03, 0.12, "second")}, url) is None
    # "Usage-based pricing" with every number null: no public rate, which is unknown, not free.
    unknown = {**usage_based(0.0, 0.0), "unit": None, "min": None, "max": None}
    assert eachlabs_cost({"cost": unknown}, url) is None
    assert eachlabs_cost({"cost": None}, url) is None

"""Eachlabs discovery asks the path Eachlabs documents and reads the answer it documents.

The documents are Eachlabs' own, kept under tests/published/eachlabs/ (origin in
tests/published/README.md): the OpenAPI document says `GET /v1/model` with a required `slug`
query parameter answering a ModelDetail {title, slug, version, output_type, request_schema},
and api/models/get-model.mdx gives the example answer and the error bodies. The loopback
server below is made from those documents and serves nothing else, so a client asking any
other path (the old `/v1/models/{slug}`) gets a 404 and the test fails.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from _provider_harness import KEY, KEY_ENV, knobs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.catalog.discovery import (
    EACHLABS_PRICE_NOTE,
    CatalogError,
    FetchContext,
    discover_eachlabs,
    eachlabs_cost,
)
from bench.cli.main import main
from bench.emulators import eachlabs
from bench.emulators.serve import running
from bench.providers.base import ProviderSettings

PUBLISHED = Path(__file__).parent / "published" / "eachlabs"
OPENAPI: dict[str, Any] = json.loads((PUBLISHED / "models.openapi.json").read_text(encoding="utf-8"))
GET_MODEL_PAGE = (PUBLISHED / "get-model.mdx").read_text(encoding="utf-8")


def published_example() -> dict[str, Any]:
    """The example answer of get-model.mdx (the first JSON block under `## Response`)."""
    section = GET_MODEL_PAGE.split("## Response", 1)[1]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block is not None
    example: dict[str, Any] = json.loads(block.group(1))
    return example


def published_error(name: str) -> dict[str, Any]:
    body: dict[str, Any] = OPENAPI["components"]["responses"][name]["content"]["application/json"]["example"]
    return body


def model_detail_schema() -> dict[str, Any]:
    """The published ModelDetail, closed: an answer with keys it does not list fails."""
    schema = dict(OPENAPI["components"]["schemas"]["ModelDetail"])
    return {**schema, "additionalProperties": False, "required": list(schema["properties"])}


@contextmanager
def serving_published(docs: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """Eachlabs' model API as its OpenAPI document describes it, and only that path."""
    operation = OPENAPI["paths"]["/v1/model"]["get"]
    (slug_param,) = [p for p in operation["parameters"] if p["name"] == "slug"]
    assert slug_param["in"] == "query" and slug_param["required"] is True
    calls: list[str] = []

    async def get_model(request: Request) -> JSONResponse:
        calls.append(f"GET {request.url.path}?{request.url.query}")
        slug = request.query_params.get("slug")
        if not slug:
            return JSONResponse(published_error("BadRequest"), status_code=400)
        doc = docs.get(slug)
        if doc is None:
            return JSONResponse(published_error("NotFound"), status_code=404)
        return JSONResponse(dict(doc))

    app = Starlette(routes=[Route("/v1/model", get_model, methods=["GET"])])
    with running(app) as url:
        yield url, calls


@contextmanager
def fetch_context(url: str) -> Iterator[FetchContext]:
    with httpx.Client(timeout=10) as client:
        settings = ProviderSettings(name="eachlabs", base_url=url, allow_private_urls=True)
        yield FetchContext(provider="eachlabs", catalog="eachlabs", settings=settings, client=client)


def test_the_published_example_answer_is_a_model_detail() -> None:
    """The two published documents agree: the page's example is a ModelDetail, with no price."""
    example = published_example()
    jsonschema.validate(example, model_detail_schema())
    assert (
        "cost" not in example and "cost" not in OPENAPI["components"]["schemas"]["ModelDetail"]["properties"]
    )


def test_discovery_asks_get_v1_model_with_the_slug_and_reads_the_published_answer() -> None:
    example = published_example()
    with serving_published({example["slug"]: example}) as (url, calls), fetch_context(url) as ctx:
        found = discover_eachlabs(ctx, example["slug"])
        assert calls == [f"GET /v1/model?slug={example['slug']}"]
        (prompt,) = [p for p in found.entry["params"] if p["name"] == "prompt"]
        assert prompt["required"] is True and prompt["type"] == "string"
        assert found.entry["title"] == example["title"]
        # No price in the documented answer: none is invented, and where it comes from is said.
        assert found.price is None and found.price_note == EACHLABS_PRICE_NOTE
        assert "metrics.cost" in EACHLABS_PRICE_NOTE and "price table" in EACHLABS_PRICE_NOTE
        with pytest.raises(CatalogError, match=r"eachlabs:no-such-model: eachlabs has no such model"):
            discover_eachlabs(ctx, "no-such-model")


def test_an_answer_without_request_schema_is_not_taken_on_a_guess() -> None:
    guessed = published_example()
    guessed["input_schema"] = guessed.pop("request_schema")
    with (
        serving_published({"guessed": guessed}) as (url, _),
        fetch_context(url) as ctx,
        pytest.raises(CatalogError, match=r"eachlabs:guessed: .* has no request_schema"),
    ):
        discover_eachlabs(ctx, "guessed")


def test_bench_catalog_pull_works_for_a_model_served_only_at_the_documented_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    example = published_example()
    new_model = {**example, "slug": "acme-new-text-to-image", "title": "Acme New"}  # not shipped
    with serving_published({new_model["slug"]: new_model}) as (url, calls):
        ov = [
            f"catalog.cache_dir={tmp_path}",
            f"providers.eachlabs.base_url={url}",
            f"providers.eachlabs.api_key_env={KEY_ENV}",
        ]
        assert main(["catalog", "pull", "eachlabs:acme-new-text-to-image", *ov]) == 0
        out = capsys.readouterr().out
        assert calls == ["GET /v1/model?slug=acme-new-text-to-image"]
        assert "eachlabs:acme-new-text-to-image  [fetched]" in out
        assert EACHLABS_PRICE_NOTE in out  # where the price comes from, as `bench ls` shows it
        assert main(["ls", "--provider", "eachlabs", "--search", "acme", *ov]) == 0
        assert EACHLABS_PRICE_NOTE in capsys.readouterr().out  # read back from the cache
        assert main(["catalog", "pull", "eachlabs:acme-typo", *ov]) == 2
        assert "eachlabs:acme-typo: eachlabs has no such model" in capsys.readouterr().err


def test_the_emulator_serves_the_documented_path_and_answer() -> None:
    schema = model_detail_schema()
    app = eachlabs.create_app(knobs())
    with running(app) as url:
        for slug in ("flux-1-1-pro", "hidream-i1-full-text-to-image", "qwen-image"):
            answer = httpx.get(f"{url}/v1/model", params={"slug": slug})
            assert answer.status_code == 200
            jsonschema.validate(answer.json(), schema)
        assert httpx.get(f"{url}/v1/model").json() == published_error("BadRequest")
        missing = httpx.get(f"{url}/v1/model", params={"slug": "no-such-model"})
        assert (missing.status_code, missing.json()) == (404, published_error("NotFound"))
        assert httpx.get(f"{url}/v1/models/flux-1-1-pro").status_code == 404  # the old, undocumented path


def test_cost_estimates_of_an_unmerged_docs_draft_are_still_read() -> None:
    """A draft of get-model.mdx (never on the docs' main branch) described a `cost` estimate.

    Should an answer ever carry one, a single rate is read; a range is not (it depends on the input)."""
    url = "https://api.eachlabs.ai/v1/model"
    fixed = {"currency": "USD", "type": "fixed", "amount": 0.04, "unit": "execution"}
    price = eachlabs_cost({"cost": fixed}, url)
    assert price is not None and (price.unit, price.usd) == ("request", 0.04)
    ranged = {
        "currency": "USD",
        "type": "usage_based",
        "amount": None,
        "unit": "second",
        "min": 0.03,
        "max": 0.12,
    }
    assert eachlabs_cost({"cost": ranged}, url) is None
    assert eachlabs_cost({}, url) is None


def test_a_prompt_longer_than_the_published_maxlength_is_refused_before_sending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """get-model.mdx's example schema: prompt minLength 10, maxLength 500. A 600-character prompt
    is exit 2 naming its prompt id, found while planning; a fitting prompt plans fine."""
    monkeypatch.setenv(KEY_ENV, KEY)
    example = {**published_example(), "slug": "acme-limits"}  # flux-1-1-pro itself is shipped
    limits = example["request_schema"]["properties"]["prompt"]
    assert (limits["minLength"], limits["maxLength"]) == (10, 500)
    suite = tmp_path / "suite.yaml"
    prompts = [{"id": "fits", "text": "a red cube on a table"}, {"id": "long-one", "text": "x" * 600}]
    suite.write_text(json.dumps({"suite": "mine", "prompts": prompts}))
    with serving_published({example["slug"]: example}) as (url, calls):
        ov = [
            f"catalog.cache_dir={tmp_path / 'c'}",
            f"providers.eachlabs.base_url={url}",
            f"providers.eachlabs.api_key_env={KEY_ENV}",
            f"targets=[eachlabs:{example['slug']}]",
            f"prompts.path={suite}",
            "sweep=quick",
        ]
        code = main(["estimate", *ov])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert "prompts[long-one]" in err[0] and "600 characters" in err[0]
        assert "at most 500 characters" in err[0]
        assert calls == [f"GET /v1/model?slug={example['slug']}"]  # the schema was asked; nothing else
        prompts.pop()
        suite.write_text(json.dumps({"suite": "mine", "prompts": prompts}))
        assert main(["estimate", *ov]) == 0

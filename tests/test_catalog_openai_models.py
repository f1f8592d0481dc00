"""The OpenAI image models shipped as data agree with what OpenAI and AIML API published.

Published documents (origin in tests/published/README.md):
- openai/image_generate_params.py.txt and image_model.py.txt: the official SDK's request types,
  generated from OpenAI's OpenAPI spec (openai/openai-python, 2026-08-21);
- aimlapi/*.json: AIML API's OpenAPI files for its GPT image models (aimlapi/api-docs, 2026-08-21).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _provider_harness import KEY, KEY_ENV
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.catalog.schema_import import entry_from_input_schema
from bench.catalog.shipped import shipped_document
from bench.cli.main import main
from bench.emulators.serve import running

PUBLISHED = Path(__file__).parent / "published"
SDK_PARAMS = (PUBLISHED / "openai" / "image_generate_params.py.txt").read_text(encoding="utf-8")
SDK_MODELS = (PUBLISHED / "openai" / "image_model.py.txt").read_text(encoding="utf-8")
CURRENT = ("gpt-image-2", "gpt-image-1.5", "gpt-image-1-mini")


def literal_values(source: str, name: str) -> list[str]:
    """The string values of the Literal annotating `name` in a published SDK file."""
    for node in ast.walk(ast.parse(source)):
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == name:
            return [
                c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
    raise AssertionError(f"{name} not in the published file")


def params(model: str) -> dict[str, dict[str, Any]]:
    (entry,) = [m for m in shipped_document("openai")["models"] if m["slug"] == model]
    return {p["name"]: p for p in entry["params"]}


def test_every_shipped_model_is_an_sdk_image_model_and_takes_what_the_sdk_says() -> None:
    sdk_models = literal_values(SDK_MODELS, "ImageModel")
    qualities = set(literal_values(SDK_PARAMS, "quality")) - {"standard", "hd"}  # the dall-e values
    formats = literal_values(SDK_PARAMS, "output_format")
    backgrounds = literal_values(SDK_PARAMS, "background")
    moderation = literal_values(SDK_PARAMS, "moderation")
    standard_sizes = ["1024x1024", "1536x1024", "1024x1536"]
    assert "32000 characters for the GPT image models" in SDK_PARAMS
    assert "Must be between 1 and 10" in SDK_PARAMS
    for model in CURRENT:
        assert model in sdk_models
        p = params(model)
        assert set(p["quality"]["options"]) == qualities == {"low", "medium", "high", "auto"}
        assert p["output_format"]["options"] == formats
        assert p["background"]["options"] == backgrounds
        assert p["moderation"]["options"] == moderation
        assert (p["n"]["min"], p["n"]["max"]) == (1, 10)
        assert p["prompt"]["max_length"] == 32000
        assert set(standard_sizes) < set(p["size"]["options"])
    # gpt-image-2 takes any WIDTHxHEIGHT within rules: its list is the standard sizes, not a limit.
    assert params("gpt-image-2")["size"]["options_complete"] is False
    assert (
        "divisible by 16" in SDK_PARAMS and "divisible by 16" in params("gpt-image-2")["size"]["description"]
    )


def test_the_snapshot_says_when_it_was_checked_and_what_is_retired() -> None:
    doc = shipped_document("openai")
    assert doc["checked"] == "2026-12-06"
    assert [m["slug"] for m in doc["models"]] == list(CURRENT)
    retired = {r["model"]: (r["retired_on"], r["use"]) for r in doc["retired"]}
    assert retired == {
        "dall-e-3": ("2026-05-12", "gpt-image-2"),
        "dall-e-2": ("2026-05-12", "gpt-image-2"),
        "gpt-image-1": ("2026-10-23", "gpt-image-1.5"),
    }
    assert "NOT confirmed" in doc["status"]["unconfirmed"]  # what could not be verified is said
    defaults = yaml.safe_load(Path("configs/models/openai.yaml").read_text())["targets"]
    assert defaults and not {t.split(":", 1)[1] for t in defaults} & set(retired)


def test_aimlapi_gpt_image_entries_are_its_published_schemas() -> None:
    shipped = {m["slug"]: m for m in shipped_document("aimlapi")["models"]}
    for name, slug in (
        ("gpt-image-2-GENERATE", "openai/gpt-image-2"),
        ("gpt-image-1-5", "openai/gpt-image-1-5"),
        ("gpt-image-1-mini", "openai/gpt-image-1-mini"),
    ):
        doc = json.loads((PUBLISHED / "aimlapi" / f"{name}.json").read_text())
        schema = doc["paths"]["/v1/images/generations"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        assert schema["properties"]["model"]["enum"] == [slug]
        published = {p["name"]: p for p in entry_from_input_schema(doc, schema, slug=slug)["params"]}
        ours = {p["name"]: p for p in shipped[slug]["params"]}
        assert set(ours) == set(published) - {"model"}  # the model id is the route, sent by the adapter
        for key in ("options", "default", "min", "max", "required"):
            assert {n: p[key] for n, p in ours.items()} == {n: published[n][key] for n in ours}
    retired = {r["model"]: r for r in shipped_document("aimlapi")["retired"]}
    assert set(retired) == {"dall-e-3", "openai/gpt-image-1"}
    assert all(r["severity"] == "warn" for r in retired.values())  # AIML's docs still list them


def test_bench_ls_lists_todays_models_with_prices_and_the_date_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ls", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^  openai:(\S+)  \[", out, re.M)
    assert listed == list(CURRENT)
    assert "# model list checked 2026-12-06" in out
    assert "$5/M text in, $8/M image in, $30/M image out (table, 2026-12-06" in out
    assert "# retired: openai:dall-e-3 on 2026-05-12, use openai:gpt-image-2" in out


@pytest.mark.parametrize(
    ("model", "line"),
    [
        ("dall-e-3", "openai:dall-e-3: retired on 2026-05-12, use openai:gpt-image-2"),
        ("gpt-image-1", "openai:gpt-image-1: retired on 2026-10-23, use openai:gpt-image-1.5"),
    ],
)
def test_a_retired_model_at_openais_host_is_one_line_exit_2(
    model: str, line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["estimate", f"targets=[openai:{model}]", "prompts.n=1", f"catalog.cache_dir={tmp_path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and line in err[0]


@pytest.fixture
def openai_model_list() -> Iterator[tuple[str, list[str]]]:
    """An OpenAI-style /v1/models on 127.0.0.1 listing an id no snapshot knows."""
    calls: list[str] = []

    async def models(request: Request) -> JSONResponse:
        calls.append(request.url.path)
        ids = ["gpt-image-9", "gpt-image-2"]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model"} for i in ids]})

    with running(Starlette(routes=[Route("/v1/models", models)])) as url:
        yield url, calls


def test_an_unknown_gpt_image_id_gets_the_gpt_image_schema_not_dalle3s(
    openai_model_list: tuple[str, list[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, calls = openai_model_list
    monkeypatch.setenv(KEY_ENV, KEY)
    ov = [
        f"catalog.cache_dir={tmp_path}",
        f"providers.openai.base_url={url}",
        f"providers.openai.api_key_env={KEY_ENV}",
    ]
    assert main(["catalog", "pull", "openai:gpt-image-9", *ov]) == 0
    out = capsys.readouterr().out
    assert calls == ["/v1/models"]
    assert "openai:gpt-image-9  [fetched; UNVERIFIED" in out
    assert "n:integer 1..10" in out and "quality:string {low|medium|high|auto}" in out
    assert "1792x1024" not in out and "standard|hd" not in out  # nothing of dall-e-3's template

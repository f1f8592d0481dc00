"""The OpenAI image models shipped as data agree with what OpenAI and AIML API published.

Published documents (origin in tests/published/README.md):
- openai/images-generate.api-reference.txt: OpenAI's API reference, Create image, the `model`
  parameter (its ImageModel enum and shutdown notes);
- openai/deprecations.image-rows.txt: the image rows of OpenAI's deprecations page;
- openai/model-pages.txt: OpenAI's model pages (prices, snapshots, shutdown statements);
- openai/image-generation-guide.2.6.txt: the guide's GPT-Image-2.6 section (complexity);
- openai/image_generate_params.py.txt and image_model.py.txt: the official SDK's request types,
  generated from OpenAI's OpenAPI spec (openai/openai-python, 2026-08-21);
- aimlapi/*.json: AIML API's OpenAPI files for its GPT image models (aimlapi/api-docs, 2026-08-21).
"""

from __future__ import annotations

import ast
import datetime as dt
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
OPENAI = PUBLISHED / "openai"
SDK_PARAMS = (OPENAI / "image_generate_params.py.txt").read_text(encoding="utf-8")
SDK_MODELS = (OPENAI / "image_model.py.txt").read_text(encoding="utf-8")
API_REFERENCE = (OPENAI / "images-generate.api-reference.txt").read_text(encoding="utf-8")
DEPRECATIONS = (OPENAI / "deprecations.image-rows.txt").read_text(encoding="utf-8")
MODEL_PAGES = (OPENAI / "model-pages.txt").read_text(encoding="utf-8")
GUIDE_26 = (OPENAI / "image-generation-guide.2.6.txt").read_text(encoding="utf-8")
CURRENT = (
    "gpt-image-2",
    "gpt-image-2.6-sunburst",
    "gpt-image-2.6-flare",
    "gpt-image-2.5-sunburst",
    "gpt-image-2.5-flare",
)
SNAPSHOT = re.compile(r"^(?P<alias>.+)-(?P<date>\d{4}-\d{2}-\d{2})$")


def published_lines(text: str) -> list[str]:
    """The published text of an excerpt: its `#` header (our note of where it came from) dropped."""
    return [line for line in text.splitlines() if not line.startswith("#")]


def literal_values(source: str, name: str) -> list[str]:
    """The string values of the Literal annotating `name` in a published SDK file."""
    for node in ast.walk(ast.parse(source)):
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(target, ast.Name) and target.id == name:
            return [
                c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            ]
    raise AssertionError(f"{name} not in the published file")


def api_reference_models() -> list[str]:
    """The ImageModel enum of the API reference: its quoted ids, one a line, in order."""
    return re.findall(r'^"([^"]+)"$', "\n".join(published_lines(API_REFERENCE)), re.M)


def api_reference_shutdowns() -> dict[str, dt.date]:
    """id -> date from the notes under an enum value ("Deprecated. ... shut down on|retired on DATE")."""
    found: dict[str, dt.date] = {}
    current = None
    for line in published_lines(API_REFERENCE):
        if m := re.match(r'^"([^"]+)"$', line):
            current = m.group(1)
        elif current and (m := re.search(r"Deprecated\. .* (?:shut down|retired) on (\w+ \d+, \d{4})", line)):
            found[current] = dt.datetime.strptime(m.group(1), "%B %d, %Y").date()
    return found


def deprecation_rows() -> dict[str, tuple[dt.date, list[str]]]:
    """id -> (shutdown date, recommended replacements) from the deprecations page's table rows."""
    text = " ".join(published_lines(DEPRECATIONS))
    rows = re.findall(r"\| (\w+ \d+, \d{4}) \| ([^|]+) \|\s*Deprecated \| ([^|]+) \|", text)
    found: dict[str, tuple[dt.date, list[str]]] = {}
    for date, models, replacement in rows:
        when = dt.datetime.strptime(date, "%b %d, %Y").date()
        for model in models.split(","):
            found[model.strip()] = (when, [r.strip() for r in replacement.split(" or ")])
    return found


def page_sections(model: str) -> list[str]:
    """The excerpt sections of one model's pages (one per stored copy)."""
    parts = re.split(r"^== (\S+) \| \S+ ==$", MODEL_PAGES, flags=re.M)
    return [parts[i + 1] for i in range(1, len(parts), 2) if parts[i] == model]


def page_token_prices(model: str) -> dict[str, float]:
    """USD per 1M tokens from a model page: text in, cached, image in, cached, image out, in that order."""
    (section,) = [s for s in page_sections(model) if "Text tokens" in s]
    amounts = [float(a) for a in re.findall(r"^\$(\d+\.\d+)$", section, re.M)]
    text_in, _, image_in, _, image_out = amounts
    return {"input_text": text_in, "input_image": image_in, "output_image": image_out}


def shipped_price(model: str) -> dict[str, Any]:
    table = yaml.safe_load(Path("configs/prices/default.yaml").read_text())["shipped"]
    (entry,) = [e for e in table if e["provider"] == "openai" and e["model"] == model]
    return dict(entry)


def params(model: str) -> dict[str, dict[str, Any]]:
    (entry,) = [m for m in shipped_document("openai")["models"] if m["slug"] == model]
    return {p["name"]: p for p in entry["params"]}


def checked() -> dt.date:
    return dt.date.fromisoformat(shipped_document("openai")["checked"])


def retired_by_openai() -> dict[str, dt.date]:
    """Every id OpenAI's pages shut down on or before the date the catalog was checked."""
    dates = {**api_reference_shutdowns(), **{m: d for m, (d, _) in deprecation_rows().items()}}
    return {m: d for m, d in dates.items() if d <= checked()}


def test_the_catalog_serves_exactly_the_api_references_ids_minus_the_retired() -> None:
    enum = api_reference_models()
    assert len(enum) == 14 and "gpt-image-2.6-flare" in enum  # "ImageModel = ... or 11 more"
    served = set(enum) - set(retired_by_openai())
    doc = shipped_document("openai")
    aliases = [m["slug"] for m in doc["models"]]
    snapshots = {s: m["slug"] for m in doc["models"] for s in m["snapshots"]}
    assert set(aliases) | set(snapshots) == served
    assert tuple(aliases) == CURRENT and not any(SNAPSHOT.match(a) for a in aliases)
    assert all(SNAPSHOT.match(s)["alias"] == alias for s, alias in snapshots.items())  # type: ignore[index]
    # The SDK (2026-08-21) predates 2.5 and 2.6: what it lists and OpenAI still serves is gpt-image-2.
    sdk = literal_values(SDK_MODELS, "ImageModel")
    assert set(sdk) <= set(enum)
    assert set(sdk) - set(retired_by_openai()) == {"gpt-image-2", "gpt-image-2-2026-04-21"}


def test_every_retired_id_has_openais_date_and_a_replacement_openai_recommends() -> None:
    doc = shipped_document("openai")
    rows = {r["model"]: r for r in doc["retired"]}
    gone = retired_by_openai()
    # A dated snapshot of a retired alias (gpt-image-1.5-2025-12-16) is listed under its alias.
    aliases = {SNAPSHOT.match(m)["alias"] if SNAPSHOT.match(m) else m for m in gone}  # type: ignore[index]
    assert set(rows) == aliases
    for model, row in rows.items():
        assert dt.date.fromisoformat(row["retired_on"]) == gone[model]
        assert row["use"] in CURRENT and row["use"] in row["recommended"]
        assert all(m in CURRENT for m in row["recommended"])
        assert all(f"{model}-" in s for s in row.get("snapshots", []))
    for model, (_, replacements) in deprecation_rows().items():
        alias = SNAPSHOT.match(model)["alias"] if SNAPSHOT.match(model) else model  # type: ignore[index]
        assert rows[alias]["recommended"] == replacements
    # gpt-image-1 and dall-e: OpenAI's pages name GPT-Image-2.5 Sunburst (and the reference Flare too).
    assert "Use gpt-image-2.5-sunburst or gpt-image-2.5-flare instead" in API_REFERENCE
    assert rows["gpt-image-1"]["recommended"] == ["gpt-image-2.5-sunburst", "gpt-image-2.5-flare"]
    for dalle in ("dall-e-2", "dall-e-3"):
        assert (
            "We recommend" in page_sections(dalle)[0] and "GPT-Image-2.5 Sunburst" in page_sections(dalle)[0]
        )
        assert rows[dalle]["use"] == "gpt-image-2.5-sunburst"
    defaults = yaml.safe_load(Path("configs/models/openai.yaml").read_text())["targets"]
    assert defaults and all(t.split(":", 1)[1] in CURRENT for t in defaults)


def test_every_model_takes_what_the_sdk_and_the_guide_say() -> None:
    qualities = set(literal_values(SDK_PARAMS, "quality")) - {"standard", "hd"}  # the dall-e values
    formats = literal_values(SDK_PARAMS, "output_format")
    assert "32000 characters for the GPT image models" in SDK_PARAMS
    assert "Must be between 1 and 10" in SDK_PARAMS
    for model in CURRENT:
        p = params(model)
        assert set(qualities) <= set(p["quality"]["options"])
        assert set(formats) <= set(p["output_format"]["options"])
        assert p["background"]["options"] == literal_values(SDK_PARAMS, "background")
        assert p["moderation"]["options"] == literal_values(SDK_PARAMS, "moderation")
        assert (p["n"]["min"], p["n"]["max"]) == (1, 10)
        assert p["prompt"]["max_length"] == 32000
        # Any WIDTHxHEIGHT within rules: the list holds the standard sizes, it is no limit.
        assert p["size"]["options_complete"] is False and "divisible by 16" in p["size"]["description"]
    assert "divisible by 16" in SDK_PARAMS
    assert set(params("gpt-image-2")["quality"]["options"]) == qualities  # gpt-image-2 stops at high
    # The guide: both 2.6 models take complexity low|medium|high, high when omitted; no other does.
    assert "low, medium, high" in GUIDE_26 and "high를 사용합니다" in GUIDE_26
    for model in CURRENT:
        complexity = params(model).get("complexity")
        if model.startswith("gpt-image-2.6"):
            assert complexity is not None
            assert (complexity["options"], complexity["default"]) == (["low", "medium", "high"], "high")
        else:
            assert complexity is None


def test_each_fact_names_its_sources_and_secondary_prices_say_so() -> None:
    doc = shipped_document("openai")
    sources = doc["sources"]
    assert {s["kind"] for s in sources.values()} <= {"primary", "secondary", "assumed"}
    for name, source in sources.items():
        assert source["read"].startswith("2026-12-06"), name
        if source["kind"] == "primary":  # OpenAI's own, kept under tests/published/openai/
            first = source["excerpt"].split(",")[0].strip()
            assert (Path(__file__).parent.parent / first).is_file(), name
    for model in doc["models"]:
        facts = model["facts"]
        assert {"id", "snapshots", "price"} <= set(facts), model["slug"]
        assert all(cited in sources for cited_list in facts.values() for cited in cited_list), model["slug"]
        assert any(sources[s]["kind"] == "primary" for s in facts["id"])  # every id is OpenAI's own
        price = shipped_price(model["slug"])
        primary = [sources[s]["url"] for s in facts["price"] if sources[s]["kind"] == "primary"]
        if primary:
            assert price["source_url"] in primary
        else:
            assert price["note"].startswith("SECONDARY:"), model["slug"]
            assert price["source_url"] in [sources[s]["url"] for s in facts["price"]]


@pytest.mark.parametrize("model", ["gpt-image-2.6-sunburst", "gpt-image-1", "gpt-image-1-mini"])
def test_the_price_table_has_the_rates_of_openais_model_page(model: str) -> None:
    assert shipped_price(model)["token_usd_per_million"] == page_token_prices(model)
    assert shipped_price(model)["source_url"] == f"https://developers.openai.com/api/docs/models/{model}"


def test_aimlapi_gpt_image_entries_are_its_published_schemas() -> None:
    doc = shipped_document("aimlapi")
    retired = {r["model"]: r for r in doc["retired"]}
    shipped = {m["slug"]: m for m in doc["models"]} | {
        m: r["spec"] for m, r in retired.items() if "spec" in r
    }
    for name, slug in (
        ("gpt-image-2-GENERATE", "openai/gpt-image-2"),
        ("gpt-image-1-5", "openai/gpt-image-1-5"),
        ("gpt-image-1-mini", "openai/gpt-image-1-mini"),
    ):
        published_doc = json.loads((PUBLISHED / "aimlapi" / f"{name}.json").read_text())
        schema = published_doc["paths"]["/v1/images/generations"]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        assert schema["properties"]["model"]["enum"] == [slug]
        published = {
            p["name"]: p for p in entry_from_input_schema(published_doc, schema, slug=slug)["params"]
        }
        ours = {p["name"]: p for p in shipped[slug]["params"]}
        assert set(ours) == set(published) - {"model"}  # the model id is the route, sent by the adapter
        for key in ("options", "default", "min", "max", "required"):
            assert {n: p[key] for n, p in ours.items()} == {n: published[n][key] for n in ours}
    # OpenAI shut these down; AIML's docs still list them, so a warning, not an error.
    assert set(retired) == {
        "dall-e-3",
        "openai/gpt-image-1",
        "openai/gpt-image-1-5",
        "openai/gpt-image-1-mini",
    }
    assert all(r["severity"] == "warn" for r in retired.values())
    assert (
        retired["openai/gpt-image-1-5"]["retired_on"]
        == retired["openai/gpt-image-1-mini"]["retired_on"]
        == str(retired_by_openai()["gpt-image-1.5"])
    )
    assert [m["slug"] for m in doc["models"] if "gpt-image" in m["slug"]] == ["openai/gpt-image-2"]


def test_bench_ls_lists_todays_models_with_prices_and_the_date_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["ls", "--provider", "openai"]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"^  openai:(\S+)  \[", out, re.M)
    assert listed == list(CURRENT)
    assert "# model list checked 2026-12-06" in out
    assert out.count("$5/M text in, $8/M image in, $30/M image out (table, 2026-12-06") == len(CURRENT)
    assert "# retired: openai:gpt-image-1.5 on 2026-12-01, use openai:gpt-image-2.6-sunburst" in out
    assert "# retired: openai:dall-e-3 on 2026-05-12, use openai:gpt-image-2.5-sunburst" in out


@pytest.mark.parametrize(
    ("model", "line"),
    [
        ("dall-e-3", "openai:dall-e-3: retired on 2026-05-12, use openai:gpt-image-2.5-sunburst"),
        ("gpt-image-1", "openai:gpt-image-1: retired on 2026-10-23, use openai:gpt-image-2.5-sunburst"),
        ("gpt-image-1.5", "openai:gpt-image-1.5: retired on 2026-12-01, use openai:gpt-image-2.6-sunburst"),
        (
            "gpt-image-1-mini",
            "openai:gpt-image-1-mini: retired on 2026-12-01, use openai:gpt-image-2.6-flare",
        ),
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

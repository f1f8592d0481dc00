"""Fetch a model's schema and price from the provider itself (docs/provider-protocols.md).

One function per protocol, each returning a `Discovered`: the catalog entry made
from the provider's own schema, the raw answer (hashed for provenance) and the
price it publishes, if any. Every call uses the provider's base URL (or
`options.catalog_base_url`), its auth and its timeout, and every failure is one
CatalogError line naming the provider, the model and what to do.

- fal: GET /api/openapi/queue/openapi.json?endpoint_id=ID (OpenAPI 3.0) and
  GET /v1/models/pricing?endpoint_id=ID (unit price, unit, currency).
- Replicate: GET /v1/models/{owner}/{name} (latest_version.openapi_schema) or
  /v1/models/{owner}/{name}/versions/{id} for owner/name:version targets.
- Eachlabs: GET /v1/model?slug=SLUG (eachlabs/mintlify-docs openapi_specs/models.json,
  api/models/get-model.mdx): {title, slug, version, output_type, request_schema}. The answer
  carries no price: predictions report theirs (metrics.cost), estimates use the price table.
- OpenAI-compatible (OpenAI, AIML API, APIpie): the model list (APIpie with
  req_price/price_unit); a listed model the snapshot does not know gets the
  OpenAI image parameter schema, marked unverified, with a one-line warning.
- AKI.IO: GET /api/endpoints/{name}?key=...: the endpoint exists; its parameters
  are the standard AKI.IO image parameters (seed 003), as the docs say.
- KidJig: no published schema or model list: the generic one of seed 000, unverified, and only
  with providers.<name>.options.allow_unverified=true (nothing checks the id).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from bench.catalog.entries import entry_from_spec, spec_from_entry
from bench.catalog.schema_import import SchemaError, entry_from_input_schema, fal_input_schema
from bench.catalog.shipped import shipped_document, shipped_specs
from bench.errors import BenchError
from bench.providers.base import ProviderSettings, key_forms, key_problem, read_api_key
from bench.providers.http_common import read_capped, response_cap_message
from bench.redact import redact

log = logging.getLogger("bench")

# The documented hosts of the discovery APIs, used while base_url is the provider's real one.
FAL_OPENAPI_URL = "https://fal.ai"
FAL_PRICING_URL = "https://api.fal.ai"
REAL_BASE_URLS = {
    "fal": "https://queue.fal.run",
    "replicate": "https://api.replicate.com",
    "eachlabs": "https://api.eachlabs.ai",
    "openai": "https://api.openai.com",
    "aimlapi": "https://api.aimlapi.com",
    "apipie": "https://apipie.ai",
    "akiio": "https://aki.io",
    "kidjig": "https://api.kidjig.com",
}
UNCHECKED = "its parameters are unchecked (an OpenAI image schema is assumed)"


class CatalogError(BenchError):
    """A schema that cannot be had: not found, offline, or unreadable (exit 2, before any request)."""


@dataclass(frozen=True)
class LivePrice:
    # image | megapixel | second | request; or, when `priceable` is false, the provider's own
    # word for a unit bench cannot turn into a cost ("compute seconds", another currency).
    unit: str
    usd: float
    source_url: str
    fetched_at: str  # UTC ISO time
    priceable: bool = True

    def text(self) -> str:
        if self.priceable:
            return f"${self.usd:g}/{self.unit}"
        return f"{self.usd:g} per {self.unit!r} (a unit bench cannot price: cost unknown)"


@dataclass(frozen=True)
class Discovered:
    entry: dict[str, Any]
    raw: Any
    source_url: str
    price: LivePrice | None = None
    warning: str | None = None
    # Where the price comes from when the provider's answer carries none (shown by `bench ls`).
    price_note: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class FetchContext:
    """What one provider's discovery calls need: where, with which key, within how long."""

    provider: str  # the configured name (targets use it)
    catalog: str  # the protocol's catalog: fal, replicate, eachlabs, openai, aimlapi, apipie, akiio, kidjig
    settings: ProviderSettings
    client: httpx.Client
    prompt_field: str | None = None  # the user's choice of text field (catalog.prompt_fields)

    @property
    def key(self) -> str:
        """The key as the adapters send it (stripped); one with a control character is refused unshown."""
        problem = key_problem(self.settings)
        if problem:
            raise CatalogError(f"{self.provider}: providers.{self.provider}.api_key_env: {problem}")
        return read_api_key(self.settings) or ""

    @property
    def secrets(self) -> list[str]:
        return key_forms(self.settings)

    def base(self, real_default: str) -> str:
        """`options.catalog_base_url`, else base_url when it is not the provider's real one, else the documented host."""
        explicit = self.settings.options.get("catalog_base_url")
        if explicit:
            return str(explicit).rstrip("/")
        configured = (self.settings.base_url or "").rstrip("/")
        if configured and configured != REAL_BASE_URLS.get(self.catalog, configured + "#"):
            return configured
        return real_default.rstrip("/")

    def get(
        self,
        url: str,
        model: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        what: str = "schema",
    ) -> Any:
        """GET a discovery document. `what`: "schema" (a 404 means no such model) or "price"
        (a 404 means the provider publishes no price for it, not that the model is missing)."""
        where = f"{self.provider}:{model}"
        shown = url  # the query (AKI.IO's key) is never shown
        cap = self.settings.max_response_bytes

        def too_big() -> Exception:
            return CatalogError(response_cap_message(where, f"GET {shown}", self.provider, cap))

        try:
            # Streamed and capped like the adapters' answers (bench.providers.http_common); no
            # redirect is followed, so the key goes to this URL's host and nowhere else.
            with self.client.stream(
                "GET", url, headers=dict(headers or {}), params=dict(params or {}), follow_redirects=False
            ) as response:
                status = response.status_code
                body = read_capped(response, cap, too_big)
        except httpx.HTTPError as exc:
            raise CatalogError(
                f"{where}: cannot fetch its schema from {shown} ({type(exc).__name__}); "
                f"when offline, run `bench catalog pull {where}` once online, or set catalog.fetch=never "
                "and give the model in a catalog_paths file"
            ) from None
        if status == 404 and what == "price":
            raise CatalogError(
                f"{where}: {self.provider} publishes no price for it ({shown} answered 404); its cost "
                "comes from the price table (prices.entries) or from what the answers report"
            )
        if status == 404:
            raise CatalogError(
                f"{where}: {self.provider} has no such model ({shown} answered 404); "
                f"check the id with `bench ls --provider {self.provider} --search TEXT`"
            )
        if status in (401, 403):
            raise CatalogError(
                f"{where}: {shown} answered HTTP {status}; "
                f"check the key in ${self.settings.api_key_env or '<api_key_env>'}"
            )
        if status >= 400:
            # Redacted before it is cut short: a key across the cut would otherwise show its head.
            text = " ".join(self.safe(body.decode("utf-8", errors="replace")).split())
            raise CatalogError(f"{where}: {shown} answered HTTP {status}: {text[:200]}")
        try:
            return json.loads(body)
        except ValueError:
            raise CatalogError(f"{where}: {shown} did not answer JSON") from None

    def safe(self, text: str) -> str:
        return redact(text, self.secrets)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


PRICE_UNITS = {
    "image": "image",
    "images": "image",
    "per_image": "image",
    "megapixel": "megapixel",
    "megapixels": "megapixel",
    "mp": "megapixel",
    "second": "second",
    "seconds": "second",
    "request": "request",
    "execution": "request",
    "call": "request",
}


def live_price(unit: Any, usd: Any, currency: Any, source_url: str) -> LivePrice | None:
    """A published price: one we can apply, or one marked unpriceable (a unit we cannot count,
    such as fal's "compute seconds", or another currency: neither is converted) so that the run
    can say which unit it was; None when no amount was published."""
    amount = _number(usd)
    if amount is None:
        return None
    raw_unit = " ".join(str(unit or "").split()) or "unstated unit"
    kind = PRICE_UNITS.get(raw_unit.lower().replace(" ", "_"))
    money = str(currency or "USD").upper()
    if kind is None or money != "USD":
        shown = raw_unit if money == "USD" else f"{raw_unit} in {money}"
        return LivePrice(unit=shown, usd=amount, source_url=source_url, fetched_at=now_iso(), priceable=False)
    return LivePrice(unit=kind, usd=amount, source_url=source_url, fetched_at=now_iso())


def schema_entry(
    ctx: FetchContext, document: Mapping[str, Any], schema: Mapping[str, Any], **kw: Any
) -> dict[str, Any]:
    """The catalog entry of a fetched input schema; an unreadable one is a CatalogError naming the provider."""
    try:
        return entry_from_input_schema(document, schema, prompt_field=ctx.prompt_field, **kw)
    except SchemaError as exc:
        raise CatalogError(f"{ctx.provider}:{exc}") from None


# ---- fal ---------------------------------------------------------------------------------
def discover_fal(ctx: FetchContext, model: str) -> Discovered:
    url = f"{ctx.base(FAL_OPENAPI_URL)}/api/openapi/queue/openapi.json"
    document = ctx.get(url, model, params={"endpoint_id": model})
    if not isinstance(document, Mapping):
        raise CatalogError(f"{ctx.provider}:{model}: {url} did not answer an OpenAPI document")
    try:
        schema = fal_input_schema(document, model)
    except SchemaError as exc:
        raise CatalogError(f"{ctx.provider}:{exc}") from None
    info: Mapping[str, Any] = document["info"] if isinstance(document.get("info"), Mapping) else {}
    entry = schema_entry(
        ctx,
        document,
        schema,
        slug=model,
        title=str(info.get("title") or model),
        description=str(info.get("description") or ""),
    )
    try:
        price = fal_price(ctx, model)
    except CatalogError as exc:
        log.warning("%s (price: the shipped table is used)", exc)
        price = None
    return Discovered(entry=entry, raw=document, source_url=url, price=price)


def fal_price(ctx: FetchContext, model: str) -> LivePrice | None:
    """GET /v1/models/pricing?endpoint_id=ID -> {prices: [{endpoint_id, unit_price, unit, currency}]}."""
    pricing_url = f"{ctx.base(FAL_PRICING_URL)}/v1/models/pricing"
    answer = ctx.get(
        pricing_url,
        model,
        params={"endpoint_id": model},
        headers={"Authorization": f"Key {ctx.key}"},
        what="price",
    )
    rows = answer.get("prices") if isinstance(answer, Mapping) and "prices" in answer else [answer]
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping) and row.get("endpoint_id", model) == model:
            return live_price(row.get("unit"), row.get("unit_price"), row.get("currency"), pricing_url)
    return None


# ---- Replicate -------------------------------------------------------------------------
def discover_replicate(ctx: FetchContext, model: str) -> Discovered:
    name, _, version_id = model.partition(":")
    if name.count("/") != 1:
        raise CatalogError(
            f"{ctx.provider}:{model}: write a Replicate model as owner/name or owner/name:version"
        )
    headers = {"Authorization": f"Bearer {ctx.key}"}
    base = ctx.base(REAL_BASE_URLS["replicate"])
    if version_id:
        url = f"{base}/v1/models/{name}/versions/{version_id}"
        version = ctx.get(url, model, headers=headers)
        raw: Any = version
        official = False
    else:
        url = f"{base}/v1/models/{name}"
        raw = ctx.get(url, model, headers=headers)
        version = raw.get("latest_version") if isinstance(raw, Mapping) else None
        # Official models run on the model route and need no version; others on the version route.
        official = bool(isinstance(raw, Mapping) and raw.get("is_official"))
    if not isinstance(version, Mapping) or not isinstance(version.get("openapi_schema"), Mapping):
        raise CatalogError(f"{ctx.provider}:{model}: {url} has no version with an openapi_schema")
    document = version["openapi_schema"]
    schema = (document.get("components") or {}).get("schemas", {}).get("Input")
    if not isinstance(schema, Mapping):
        raise CatalogError(f"{ctx.provider}:{model}: openapi_schema has no components.schemas.Input")
    title = str(raw.get("name") or name) if isinstance(raw, Mapping) else name
    entry = schema_entry(
        ctx,
        document,
        schema,
        slug=model,
        title=title,
        version=None if official else str(version.get("id") or version_id),
        description=str(raw.get("description") or "") if isinstance(raw, Mapping) else "",
    )
    return Discovered(entry=entry, raw=raw, source_url=url)


# ---- Eachlabs --------------------------------------------------------------------------
EACHLABS_PRICE_NOTE = (
    "Eachlabs' model API publishes no price; each prediction reports its cost (metrics.cost, "
    "cost_source=reported), and estimates before a run use the price table (configs/prices) "
    "or stay unknown"
)


def eachlabs_headers(ctx: FetchContext) -> dict[str, str] | None:
    # The current docs say Bearer; the older OpenAPI document (eachlabs/docs api.yaml) X-API-Key.
    return {"Authorization": f"Bearer {ctx.key}", "X-API-Key": ctx.key} if ctx.key else None


def discover_eachlabs(ctx: FetchContext, model: str) -> Discovered:
    url = f"{ctx.base(REAL_BASE_URLS['eachlabs'])}/v1/model"
    raw = ctx.get(url, model, params={"slug": model}, headers=eachlabs_headers(ctx))
    if not isinstance(raw, Mapping):
        raise CatalogError(f"{ctx.provider}:{model}: {url}?slug={model} did not answer a model object")
    # ModelDetail (openapi_specs/models.json): {title, slug, version (deprecated, always
    # "0.0.1"), output_type, request_schema}.
    schema = raw.get("request_schema")
    if not isinstance(schema, Mapping):
        raise CatalogError(
            f"{ctx.provider}:{model}: {url}?slug={model} has no request_schema object; "
            "is it Eachlabs' model API?"
        )
    entry = schema_entry(
        ctx,
        raw,
        schema,
        slug=model,
        title=str(raw.get("title") or model),
        version=str(raw.get("version") or "0.0.1"),
    )
    # A draft of the docs (never merged) described a `cost` estimate; read it if one ever comes.
    price = eachlabs_cost(raw, url)
    note = None if price is not None else EACHLABS_PRICE_NOTE
    return Discovered(entry=entry, raw=raw, source_url=url, price=price, price_note=note)


def eachlabs_cost(raw: Mapping[str, Any], url: str) -> LivePrice | None:
    """The price in a `cost` estimate, when the answer has one and it is one number.

    The documented answer has no `cost`. A draft of Eachlabs' docs described one: `fixed`
    is `amount` per execution; `usage_based` has rates per `unit` from `min` to `max`. Only a
    single rate (min == max) prices every request; a range depends on the input.
    """
    cost = raw.get("cost")
    if not isinstance(cost, Mapping):
        return None
    if cost.get("type") == "fixed":
        return live_price(cost.get("unit") or "execution", cost.get("amount"), cost.get("currency"), url)
    low, high = _number(cost.get("min")), _number(cost.get("max"))
    if cost.get("type") == "usage_based" and low is not None and low == high:
        return live_price(cost.get("unit"), low, cost.get("currency"), url)
    return None


# ---- OpenAI-compatible -----------------------------------------------------------------
def listed_model(ctx: FetchContext, model: str) -> tuple[Mapping[str, Any], str]:
    """The provider's model-list row for `model` (and the list's URL); not listed is a CatalogError."""
    url = f"{ctx.base(REAL_BASE_URLS.get(ctx.catalog, ''))}/v1/models"
    params = {"type": "image"} if ctx.catalog == "apipie" else None
    answer = ctx.get(url, model, headers={"Authorization": f"Bearer {ctx.key}"}, params=params)
    rows = answer.get("data") if isinstance(answer, Mapping) else answer
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, Mapping) and model in (row.get("id"), row.get("model"), row.get("route")):
            return row, url
    raise CatalogError(
        f"{ctx.provider}:{model}: not in {ctx.provider}'s model list ({url}); "
        f"check the id with `bench ls --provider {ctx.provider} --search TEXT`"
    )


def apipie_price(ctx: FetchContext, model: str) -> LivePrice | None:
    return apipie_row_price(*listed_model(ctx, model))


def apipie_row_price(row: Mapping[str, Any], url: str) -> LivePrice | None:
    """APIpie's model list prices each route per request (`req_price`, `price_unit`), in USD."""
    return live_price(row.get("price_unit") or row.get("price_type"), row.get("req_price"), "USD", url)


def discover_openai_compat(ctx: FetchContext, model: str) -> Discovered:
    row, url = listed_model(ctx, model)
    known = {s.model: s for s in shipped_specs(ctx.catalog, ctx.provider)}
    warning = None
    if model in known:
        entry = entry_from_spec(known[model])
    else:
        entry = generic_openai_entry(ctx.catalog, model)
        warning = f"{ctx.provider}:{model}: not in the shipped snapshot; {UNCHECKED}"
    price = apipie_row_price(row, url) if ctx.catalog == "apipie" else None
    return Discovered(entry=entry, raw=row, source_url=url, price=price, warning=warning)


def generic_openai_entry(catalog: str, model: str) -> dict[str, Any]:
    """The OpenAI image parameters of the nearest family, marked unverified.

    A gpt-image-* id gets the current GPT image schema (n up to 10, low/medium/high/auto,
    output formats); any other id the older DALL-E 3 one (n=1, standard/hd), which is what the
    OpenAI-compatible gateways copied for their own models."""
    openai_doc = shipped_document("openai")
    if model.rsplit("/", 1)[-1].startswith("gpt-image"):
        template = spec_from_entry(openai_doc["models"][0], catalog)  # gpt-image-2: the plainest served one
    else:
        (dalle,) = [r["spec"] for r in openai_doc["retired"] if r["model"] == "dall-e-3"]
        template = spec_from_entry(dalle, catalog)
    spec = replace(
        template,
        model=model,
        title=model,
        description=f"generic OpenAI image schema ({template.model}'s): {UNCHECKED}",
        unverified=True,
    )
    return entry_from_spec(spec)


# ---- AKI.IO ----------------------------------------------------------------------------
def discover_akiio(ctx: FetchContext, model: str) -> Discovered:
    url = f"{ctx.base(REAL_BASE_URLS['akiio'])}/api/endpoints/{model}"
    raw = ctx.get(url, model, params={"key": ctx.key})
    if isinstance(raw, Mapping) and raw.get("success") is False:
        raise CatalogError(f"{ctx.provider}:{model}: {url} answered: {ctx.safe(str(raw.get('error')))}")
    template = shipped_specs("akiio", ctx.provider)[0]
    entry = entry_from_spec(
        replace(
            template, model=model, title=str(raw.get("title") or model) if isinstance(raw, Mapping) else model
        )
    )
    return Discovered(entry=entry, raw=raw, source_url=url)


# ---- KidJig ----------------------------------------------------------------------------
def discover_kidjig(ctx: FetchContext, model: str) -> Discovered:
    # KidJig publishes neither a model list nor schemas: nothing can confirm the id, so a typo
    # would reach a paid POST. Only an explicit flag takes the generic guess.
    if ctx.settings.options.get("allow_unverified") is not True:
        raise CatalogError(
            f"{ctx.provider}:{model}: KidJig publishes no model list or schema, so this id cannot be "
            f"checked before a paid request; check its spelling and set "
            f"providers.{ctx.provider}.options.allow_unverified=true to use it with a generic, unverified schema"
        )
    template = shipped_specs("kidjig", ctx.provider)[0]
    entry = entry_from_spec(replace(template, model=model, title=model, unverified=True))
    return Discovered(
        entry=entry,
        raw=entry,
        source_url="seed 000 (KidJig publishes no schema)",
        warning=f"{ctx.provider}:{model}: KidJig publishes no schema; its parameters are a generic, unverified guess",
    )


# Providers that publish prices: a model taken from the shipped snapshot still gets its live price.
PRICE_FETCHERS: dict[str, Callable[[FetchContext, str], LivePrice | None]] = {
    "fal": fal_price,
    "apipie": apipie_price,
}

DISCOVERERS: dict[str, Callable[[FetchContext, str], Discovered]] = {
    "fal": discover_fal,
    "replicate": discover_replicate,
    "eachlabs": discover_eachlabs,
    "openai": discover_openai_compat,
    "aimlapi": discover_openai_compat,
    "apipie": discover_openai_compat,
    "akiio": discover_akiio,
    "kidjig": discover_kidjig,
}

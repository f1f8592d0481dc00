"""One catalog, three sources: a user's spec files, schemas fetched (and cached), shipped snapshots.

For a target provider:model the first source that has it wins:
  1. `catalog_paths` files (the user said so explicitly);
  2. the on-disk cache of fetched schemas (`bench catalog pull`, or an earlier run);
  3. the snapshot shipped in the package;
  4. the provider itself, fetched now (`catalog.fetch: auto`), then cached.
`catalog.fetch: always` fetches first (a fresh schema and price for every target);
`never` sends nothing and, when no source has the model, stops with one line
naming `bench catalog pull` and the cache folder. Every spec carries its source
and schema sha256, which runs record per target.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.catalog.cache import CatalogCache, cache_root
from bench.catalog.discovery import (
    DISCOVERERS,
    PRICE_FETCHERS,
    REAL_BASE_URLS,
    CatalogError,
    Discovered,
    FetchContext,
    LivePrice,
    now_iso,
)
from bench.catalog.entries import entry_sha256, spec_from_entry
from bench.catalog.prompt_field import PromptFieldError, choose_prompt_field
from bench.catalog.retired import check_retired
from bench.catalog.schema_import import SchemaError, entry_from_input_schema
from bench.catalog.spec import ModelSpec
from bench.config import parse_http_debug
from bench.errors import ConfigError
from bench.http_logging import configure_http_logging
from bench.prices import PriceEntry
from bench.providers.base import Provider
from bench.redact import redact_json

log = logging.getLogger("bench")
FETCH_MODES = ("auto", "never", "always")
NO_NETWORK_CATALOGS = frozenset({"kidjig"})  # its "discovery" is the generic schema: nothing is sent
_warned: set[str] = set()
_price_memo: dict[tuple[str, str | None, str], LivePrice | None] = {}


@dataclass(frozen=True)
class CatalogSettings:
    fetch: str = "auto"
    paths: tuple[Path, ...] = ()
    cache_dir: Path = field(default_factory=cache_root)
    http_debug: bool = False  # bench.http_debug: the HTTP loggers' policy holds for catalog fetches too
    # provider:model -> the input field that carries the text prompt, where the schema's is not
    # `prompt` and the choice is ambiguous (bench.catalog.prompt_field)
    prompt_fields: Mapping[str, str] = field(default_factory=dict)


def parse_catalog_settings(cfg: Mapping[str, Any]) -> CatalogSettings:
    block = cfg.get("catalog") or {}
    if not isinstance(block, Mapping):
        raise ConfigError("catalog", block, "give catalog settings as a mapping, e.g. {fetch: auto}")
    fetch = block.get("fetch", "auto")
    if fetch not in FETCH_MODES:
        raise ConfigError("catalog.fetch", fetch, f"use one of {', '.join(FETCH_MODES)}")
    raw_paths = cfg.get("catalog_paths") or []
    if not isinstance(raw_paths, list | tuple):
        raise ConfigError("catalog_paths", raw_paths, "give a list of spec files, e.g. [my_models.yaml]")
    prompt_fields = _prompt_fields(block.get("prompt_fields") or {})
    return CatalogSettings(
        prompt_fields=dict(prompt_fields),
        fetch=str(fetch),
        paths=tuple(Path(str(p)).expanduser() for p in raw_paths),
        cache_dir=cache_root(block.get("cache_dir")),
        http_debug=parse_http_debug(cfg.get("bench") or {}),
    )


def _prompt_fields(raw: Any) -> dict[str, str]:
    """catalog.prompt_fields as {provider:model: field}, from a mapping (YAML) or a list of
    "provider:model=field" (the command line, where Hydra keys cannot hold ':' or '/')."""
    pairs: list[tuple[Any, Any]] = [(None, None)]
    if isinstance(raw, Mapping):
        pairs = list(raw.items())
    elif isinstance(raw, list | tuple):
        pairs = [(str(item).rpartition("=")[0], str(item).rpartition("=")[2]) for item in raw]
    out: dict[str, str] = {}
    for target, name in pairs:
        if not (isinstance(target, str) and ":" in target and isinstance(name, str) and name):
            raise ConfigError(
                "catalog.prompt_fields",
                raw,
                "map provider:model to the field, e.g. ['replicate:kuprel/min-dalle=text']",
            )
        out[target] = name
    return out


def load_user_entries(paths: Sequence[Path]) -> dict[tuple[str, str], tuple[dict[str, Any], Path]]:
    """(provider, model) -> (entry, file) from spec files: {provider, models: [entry | input_schema form]}."""
    found: dict[tuple[str, str], tuple[dict[str, Any], Path]] = {}
    for i, path in enumerate(paths):
        where = f"catalog_paths[{i}]"
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(
                where, str(path), f"cannot read it ({exc.strerror}); give an existing file"
            ) from None
        except yaml.YAMLError as exc:
            raise ConfigError(
                where, str(path), f"not valid YAML/JSON: {' '.join(str(exc).split())}"
            ) from None
        documents = document if isinstance(document, list) else [document]
        for doc in documents:
            if not isinstance(doc, Mapping) or not isinstance(doc.get("models"), list):
                raise ConfigError(
                    where, str(path), "write {provider: NAME, models: [{slug: ..., params: [...]}]}"
                )
            for model in doc["models"]:
                provider = (
                    model.get("provider") or doc.get("provider") if isinstance(model, Mapping) else None
                )
                if not isinstance(model, Mapping) or not provider or not model.get("slug"):
                    raise ConfigError(
                        where, str(path), "every model needs a slug, and a provider (or the file's)"
                    )
                entry = dict(model)
                entry.pop("provider", None)
                if "params" not in entry:
                    if not isinstance(entry.get("input_schema"), Mapping):
                        raise ConfigError(
                            f"{where}: {provider}:{entry['slug']}",
                            str(path),
                            "give `params` or an `input_schema`",
                        )
                    try:
                        entry = {
                            **entry_from_input_schema(
                                entry["input_schema"], entry["input_schema"], slug=str(entry["slug"])
                            ),
                            **{k: v for k, v in entry.items() if k not in ("input_schema",)},
                        }
                    except SchemaError as exc:
                        raise ConfigError(where, str(path), str(exc)) from None
                found[(str(provider), str(entry["slug"]))] = (entry, path)
    return found


@dataclass(frozen=True)
class Resolved:
    spec: ModelSpec
    price: LivePrice | None = None
    source_detail: str = ""  # the file, the cache path or the URL
    price_note: str | None = None  # where the price comes from when the provider published none


class Catalog:
    def __init__(self, settings: CatalogSettings, *, live_prices: bool = False) -> None:
        # live_prices: ask the price APIs about shipped models too (`bench run` does, right before
        # it spends money; estimate, ls and show do not send anything for shipped models).
        self.settings = settings
        self.live_prices = live_prices
        self.cache = CatalogCache(settings.cache_dir)
        self.user = load_user_entries(settings.paths)

    # ---- resolution --------------------------------------------------------------------
    def resolve(self, provider: Provider, model: str) -> Resolved:
        resolved = self._resolve(provider, model)
        named = self.settings.prompt_fields.get(f"{provider.name}:{model}")
        if named is None or named == resolved.spec.prompt_param:
            return resolved
        try:
            choose_prompt_field(list(resolved.spec.params.values()), named)
        except PromptFieldError as exc:
            raise CatalogError(f"{provider.name}:{model}: catalog.prompt_fields: {exc}") from None
        return replace(resolved, spec=replace(resolved.spec, prompt_param=named))

    def _resolve(self, provider: Provider, model: str) -> Resolved:
        user = self.user.get((provider.name, model))
        if user is not None:
            entry, path = user
            return Resolved(spec_from_entry(entry, provider.name, catalog_source="user"), None, str(path))
        catalog = provider.catalog_name
        if catalog is None:  # the adapter knows its own models (local)
            return Resolved(provider.model_spec(model))
        real_host = (provider.settings.base_url or "").rstrip("/") in ("", REAL_BASE_URLS.get(catalog, ""))
        old = check_retired(provider.name, catalog, model, provider.settings.options, real_host=real_host)
        if old is not None:  # retirement waived (allow_retired) or only warned (a gateway still lists it)
            return Resolved(old)
        if self.settings.fetch == "always" and self._may_fetch(catalog):
            return self.pull(provider, model)
        cached = self.from_cache(provider, model)
        if cached is not None:
            return cached
        shipped = {s.model: s for s in provider.models()}
        if model in shipped:
            return Resolved(shipped[model], self.live_price(provider, model))
        if self.settings.fetch == "never" and catalog not in NO_NETWORK_CATALOGS:
            raise CatalogError(
                f"{provider.name}:{model} is in neither the shipped catalog nor the cache "
                f"({self.cache.provider_dir(provider.name)}) and catalog.fetch=never: run "
                f"`bench catalog pull {provider.name}:{model}` while online"
            )
        return self.pull(provider, model)

    def live_price(self, provider: Provider, model: str) -> LivePrice | None:
        """The price the provider publishes now, for a model whose schema is shipped (fetch: auto/always).

        A failure (offline, no such price) is not an error: the shipped table prices the run."""
        fetch_price = PRICE_FETCHERS.get(provider.catalog_name or "")
        if fetch_price is None or self.settings.fetch == "never" or not self.live_prices:
            return None
        settings = provider.settings
        memo_key = (provider.name, settings.base_url, model)
        if memo_key in _price_memo:  # `bench run` plans twice (validate, then run): ask once
            return _price_memo[memo_key]
        try:
            with self.fetch_client(provider, limit_s=30.0) as client:
                context = FetchContext(provider.name, str(provider.catalog_name), settings, client)
                price = fetch_price(context, model)
        except CatalogError as exc:
            log.info("%s; its price comes from the price table", exc)
            price = None
        _price_memo[memo_key] = price
        return price

    def fetch_client(self, provider: Provider, *, limit_s: float) -> httpx.Client:
        """The client of one provider's catalog calls, under the HTTP loggers' policy of `bench run`:
        quiet unless bench.http_debug, and the key (every form of it) redacted either way. These
        calls happen while a run is planned, before the run's own logging setup."""
        configure_http_logging(debug=self.settings.http_debug, secrets=provider.secrets())
        timeout = httpx.Timeout(min(provider.settings.timeout_s, limit_s))
        return httpx.Client(timeout=timeout, follow_redirects=False)

    def _may_fetch(self, catalog: str) -> bool:
        return catalog in DISCOVERERS

    def from_cache(self, provider: Provider, model: str) -> Resolved | None:
        record = self.cache.read(provider.name, model)
        if record is None:
            return None
        spec = spec_from_entry(
            record["entry"],
            provider.name,
            catalog_source="fetched",
            schema_sha256=str(record.get("sha256") or entry_sha256(record["entry"])),
            fetched_at=record.get("fetched_at"),
        )
        price = LivePrice(**record["price"]) if isinstance(record.get("price"), Mapping) else None
        note = record.get("price_note") if isinstance(record.get("price_note"), str) else None
        return Resolved(spec, price, str(self.cache.path(provider.name, model)), note)

    def pull(self, provider: Provider, model: str) -> Resolved:
        """Fetch the model's schema (and price) from the provider now, cache it, return it."""
        catalog = provider.catalog_name
        discover = DISCOVERERS.get(catalog or "")
        if discover is None:
            raise CatalogError(f"{provider.name}:{model}: {provider.name} has no catalog API to fetch from")
        settings = provider.settings
        try:
            with self.fetch_client(provider, limit_s=60.0) as client:
                context = FetchContext(
                    provider.name,
                    str(catalog),
                    settings,
                    client,
                    prompt_field=self.settings.prompt_fields.get(f"{provider.name}:{model}"),
                )
                found: Discovered = discover(context, model)
        except CatalogError as exc:
            raise CatalogError(f"{exc} (cache: {self.cache.provider_dir(provider.name)})") from None
        # The provider's answer is kept for provenance; one that echoes the key must not put it in a file.
        found = replace(found, raw=redact_json(found.raw, provider.secrets()))
        if found.warning and found.warning not in _warned:
            _warned.add(found.warning)
            print(f"bench: warning: {found.warning}", file=sys.stderr)
        record = {
            "provider": provider.name,
            "model": model,
            "fetched_at": now_iso(),
            "source_url": found.source_url,
            "sha256": found.sha256,
            "entry": found.entry,
            "price": found.price.__dict__ if found.price else None,
            "price_note": found.price_note,
            "raw": found.raw,
        }
        try:
            self.cache.write(provider.name, model, record)
        except OSError as exc:
            log.warning(
                "catalog cache %s is not writable (%s); the schema is used without caching",
                self.cache.root,
                exc,
            )
        resolved = self.from_cache(provider, model)
        if resolved is not None:
            return resolved
        spec = spec_from_entry(
            found.entry, provider.name, catalog_source="fetched", schema_sha256=found.sha256
        )
        return Resolved(spec, found.price, found.source_url, found.price_note)


def live_price_entries(resolved: Mapping[str, Resolved]) -> list[PriceEntry]:
    """Prices providers published, as price entries ranked above the shipped table (cost_source=price_api)."""
    out = []
    for item in resolved.values():
        price = item.price
        if price is None or not price.priceable:  # a unit we cannot count: see unpriced_units
            continue
        out.append(
            PriceEntry(
                provider=item.spec.provider,
                model=item.spec.model,
                unit=price.unit,  # type: ignore[arg-type]
                usd=price.usd,
                effective_date=price.fetched_at[:10],
                source_url=price.source_url,
                note=f"published by the provider's price API, fetched {price.fetched_at}",
                source="price_api",
            )
        )
    return out


def unpriced_units(resolved: Mapping[str, Resolved]) -> dict[str, LivePrice]:
    """Targets whose provider publishes a price in a unit bench cannot count ("compute seconds")."""
    return {tid: item.price for tid, item in resolved.items() if item.price and not item.price.priceable}


def provenance(spec: ModelSpec, detail: str = "") -> dict[str, Any]:
    """What a run records about a target's schema (config.yaml `catalog_used`)."""
    return {
        "source": spec.catalog_source,
        "schema_sha256": spec.schema_sha256,
        "fetched_at": spec.fetched_at,
        "unverified": spec.unverified,
        **({"from": detail} if detail else {}),
    }


__all__ = ["Catalog", "CatalogError", "CatalogSettings", "Resolved", "parse_catalog_settings"]

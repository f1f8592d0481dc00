"""`bench catalog pull|show` and `bench ls`: what a provider's models accept, from every catalog source."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any

from bench.catalog.discovery import CatalogError
from bench.catalog.shipped import shipped_document
from bench.catalog.sources import Catalog, Resolved, parse_catalog_settings
from bench.catalog.spec import ModelSpec, ParamSpec
from bench.config import ProviderConfig, parse_providers
from bench.errors import ConfigError
from bench.prices import PriceTable
from bench.providers.base import Provider
from bench.providers.registry import create_provider

EXIT_OK, EXIT_USAGE = 0, 2


def param_text(p: ParamSpec) -> str:
    """One parameter with its type, range or options, and default: `steps:integer 1..50 =28`."""
    text = f"{p.name}:{p.type}" + ("*" if p.required else "")
    if p.options is not None:
        listed = "|".join(str(o) for o in p.options)
        text += f" {{{listed}{'|…' if not p.options_complete else ''}}}"
    elif p.minimum is not None or p.maximum is not None:
        lo = f"{p.minimum:g}" if p.minimum is not None else ""
        hi = f"{p.maximum:g}" if p.maximum is not None else ""
        text += f" {lo}..{hi}"
    if p.default is not None:
        text += f" ={p.default}"
    return text


def price_text(spec: ModelSpec, prices: PriceTable, resolved: Resolved | None = None) -> str:
    if resolved is not None and resolved.price is not None:
        p = resolved.price
        if p.priceable:
            found = prices.rule_for(spec.provider, spec.model, p.unit)
            rule = f", {found.describe()}" if found is not None else ""
            return f"${p.usd:g}/{p.unit} (price API, fetched {p.fetched_at}{rule})"
        return f"{p.text()} (price API, fetched {p.fetched_at})"
    entry = prices.lookup(spec.provider, spec.model)
    note = f"; {resolved.price_note}" if resolved is not None and resolved.price_note else ""
    if entry is None:
        return "no price entry (reported by the API, or unknown)" + note
    if entry.unit == "token":
        kinds = {
            "input_text": "text in",
            "input_image": "image in",
            "output_image": "image out",
            "total": "tokens",
        }
        rates = ", ".join(f"${usd:g}/M {kinds[k]}" for k, usd in entry.token_usd_per_million.items())
        return f"{rates} (table, {entry.effective_date}, {entry.source_url}){note}"
    return f"${entry.usd:g}/{entry.unit} (table, {entry.effective_date}, {entry.describe_rule()}){note}"


def describe(spec: ModelSpec, price: str, out: Any) -> None:
    flags = [spec.catalog_source]
    if spec.unverified:
        flags.append("UNVERIFIED: parameters are a generic guess, not a published schema")
    print(f"  {spec.target_id}  [{'; '.join(flags)}]", file=out)
    if spec.title and spec.title != spec.model:
        print(f"      title:      {spec.title}", file=out)
    normalized = ", ".join(f"{k}={v}" for k, v in spec.normalized_parameters().items()) or "prompt only"
    print(f"      normalized: {normalized}", file=out)
    print(f"      accepts:    {'; '.join(param_text(p) for p in spec.params.values())}", file=out)
    print(f"      price:      {price}", file=out)
    if spec.schema_sha256:
        fetched = f", fetched {spec.fetched_at}" if spec.fetched_at else ""
        print(f"      schema:     sha256 {spec.schema_sha256[:16]}…{fetched}", file=out)


def _providers(cfg: Mapping[str, Any]) -> dict[str, ProviderConfig]:
    return parse_providers(cfg.get("providers") or {})


def _prices(cfg: Mapping[str, Any]) -> PriceTable:
    return PriceTable.from_prices_config(cfg.get("prices") or {})


def _split_target(text: str) -> tuple[str, str]:
    provider, sep, model = text.partition(":")
    if not sep or not provider or not model:
        raise ConfigError("target", text, "write provider:model, e.g. fal:fal-ai/recraft/v3/text-to-image")
    return provider, model


def _provider(configs: Mapping[str, ProviderConfig], name: str) -> Provider:
    if name not in configs:
        raise ConfigError("provider", name, f"unknown provider; configured: {', '.join(sorted(configs))}")
    pc = configs[name]
    return create_provider(pc.adapter, pc.settings)


def catalog_command(action: str, targets: Iterable[str], cfg: Mapping[str, Any]) -> int:
    configs, prices = _providers(cfg), _prices(cfg)
    catalog = Catalog(parse_catalog_settings(cfg))
    failed = 0
    for text in targets:
        name, model = _split_target(text)
        provider = _provider(configs, name)
        try:
            resolved = catalog.pull(provider, model) if action == "pull" else catalog.resolve(provider, model)
        except CatalogError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            failed += 1
            continue
        if action == "pull":
            print(f"fetched {resolved.spec.target_id} -> {resolved.source_detail}")
        describe(resolved.spec, price_text(resolved.spec, prices, resolved), sys.stdout)
    return EXIT_USAGE if failed else EXIT_OK


def list_models(cfg: Mapping[str, Any], only: str | None, search: str | None) -> int:
    configs, prices = _providers(cfg), _prices(cfg)
    if only is not None and only not in configs:
        print(f"bench: unknown provider {only!r}; configured: {', '.join(sorted(configs))}", file=sys.stderr)
        return EXIT_USAGE
    catalog = Catalog(parse_catalog_settings(cfg))
    needle = (search or "").lower()
    for name, pc in configs.items():
        if only is not None and name != only:
            continue
        provider = create_provider(pc.adapter, pc.settings)
        key = f"key: ${pc.settings.api_key_env}" if provider.needs_api_key else "no key needed"
        print(f"{name}  (adapter {pc.adapter}; {key}; base_url {pc.settings.base_url or '-'})")
        snapshot = shipped_document(provider.catalog_name) if provider.catalog_name else {}
        if snapshot.get("checked"):
            print(
                f"# model list checked {snapshot['checked']} (bench/catalog/data/{provider.catalog_name}.json)"
            )
        for gone in snapshot.get("retired") or []:
            print(f"# retired: {name}:{gone['model']} on {gone['retired_on']}, use {name}:{gone['use']}")
        seen: dict[str, tuple[ModelSpec, Resolved | None]] = {s.model: (s, None) for s in provider.models()}
        for record in catalog.cache.records(name):  # fetched models (bench catalog pull, earlier runs)
            cached = catalog.from_cache(provider, str(record.get("model")))
            if cached is not None:
                seen[cached.spec.model] = (cached.spec, cached)
        for (provider_name, model), _ in catalog.user.items():
            if provider_name == name:
                resolved = catalog.resolve(provider, model)
                seen[model] = (resolved.spec, resolved)
        for spec, found in seen.values():
            if needle and needle not in spec.model.lower() and needle not in spec.title.lower():
                continue
            describe(spec, price_text(spec, prices, found), sys.stdout)
    if provider_hint := (only or "PROVIDER"):
        print(
            f"# any other model: `bench catalog pull {provider_hint}:MODEL` fetches its schema from the provider",
            file=sys.stderr,
        )
    return EXIT_OK

"""A catalog entry (one model as JSON) <-> ModelSpec, and the hash that identifies a schema.

Every source of model schemas ends as entries of this one shape: the shipped
snapshots in bench/catalog/data/<provider>.json, schemas fetched from a provider
(bench.catalog.schema_import turns them into entries), and a user's own spec
files (`catalog_paths`). The shape is the one bench.catalog.model_entries
writes: normalized-parameter names, the size mode, and `params` as a list of
{name, type, required, default, options, options_complete, min, max, description}.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bench.catalog.spec import ModelSpec, ParamSpec

ENTRY_KEYS = (
    "prompt_param",
    "negative_prompt_param",
    "steps_param",
    "guidance_param",
    "seed_param",
    "count_param",
    "size_mode",
    "size_param",
    "size_param_2",
    "aspect_ratio_param",
)


def entry_sha256(entry: Mapping[str, Any]) -> str:
    """sha256 of the entry's canonical JSON: the same schema always hashes the same."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def spec_from_entry(
    entry: Mapping[str, Any],
    provider: str,
    *,
    catalog_source: str = "shipped",
    schema_sha256: str | None = None,
    fetched_at: str | None = None,
) -> ModelSpec:
    params = {p["name"]: param_from_json(p) for p in entry["params"]}
    return ModelSpec(
        provider=provider,
        model=str(entry["slug"]),
        params=params,
        prompt_param=entry.get("prompt_param") or "prompt",
        negative_prompt_param=entry.get("negative_prompt_param"),
        steps_param=entry.get("steps_param"),
        guidance_param=entry.get("guidance_param"),
        seed_param=entry.get("seed_param"),
        count_param=entry.get("count_param"),
        size_mode=entry.get("size_mode") or "none",
        size_param=entry.get("size_param"),
        size_param_2=entry.get("size_param_2"),
        aspect_ratio_param=entry.get("aspect_ratio_param"),
        size_custom=dict(entry.get("size_custom") or {}),
        fixed=dict(entry.get("fixed") or {}),
        title=str(entry.get("title") or entry["slug"]),
        description=str(entry.get("description") or ""),
        version=entry.get("version"),
        catalog_source=catalog_source,
        schema_sha256=schema_sha256 or entry_sha256(entry),
        fetched_at=fetched_at,
        unverified=bool(entry.get("unverified", False)),
        size_object=dict(entry["size_object"]) if isinstance(entry.get("size_object"), Mapping) else None,
    )


def param_from_json(p: Mapping[str, Any]) -> ParamSpec:
    options = p.get("options")
    return ParamSpec(
        name=str(p["name"]),
        type=p["type"],
        required=bool(p.get("required", False)),
        default=p.get("default"),
        options=tuple(options) if options is not None else None,
        minimum=p.get("min"),
        maximum=p.get("max"),
        description=str(p.get("description") or ""),
        options_complete=bool(p.get("options_complete", True)),
        min_length=p.get("min_length"),
        max_length=p.get("max_length"),
        pattern=p.get("pattern"),
    )


def entry_from_spec(spec: ModelSpec) -> dict[str, Any]:
    """The JSON entry of a spec (the inverse of spec_from_entry, provenance aside)."""
    entry: dict[str, Any] = {"slug": spec.model, "title": spec.title}
    if spec.description:
        entry["description"] = spec.description
    if spec.version is not None:
        entry["version"] = spec.version
    for key in ENTRY_KEYS:
        entry[key] = getattr(spec, key)
    entry["size_custom"] = dict(spec.size_custom)
    entry["fixed"] = dict(spec.fixed)
    if spec.unverified:
        entry["unverified"] = True
    if spec.size_object is not None:
        entry["size_object"] = dict(spec.size_object)
    entry["params"] = [param_to_json(p) for p in spec.params.values()]
    return entry


def param_to_json(p: ParamSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.name,
        "type": p.type,
        "required": p.required,
        "default": p.default,
        "options": list(p.options) if p.options is not None else None,
        "options_complete": p.options_complete,
        "min": p.minimum,
        "max": p.maximum,
        "description": p.description,
    }
    for key, value in (("min_length", p.min_length), ("max_length", p.max_length), ("pattern", p.pattern)):
        if value is not None:  # written only when set, so older entries hash the same
            out[key] = value
    return out


def renamed(spec: ModelSpec, model: str, title: str | None = None) -> ModelSpec:
    """The same schema under another model id (AKI.IO endpoints and KidJig models share one)."""
    return replace(spec, model=model, title=title or model)

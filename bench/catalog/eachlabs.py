"""The Eachlabs text-to-image catalog as ModelSpecs.

The data is bench/catalog/data/eachlabs.json, generated from the Eachlabs seed by
bench.catalog.generate_eachlabs (which documents how each field is derived). It is
read through importlib.resources so that it works from an installed package too.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from bench.catalog.spec import ModelSpec, ParamSpec

PROVIDER = "eachlabs"
DATA_FILE = "eachlabs.json"


def load_eachlabs_document() -> dict[str, Any]:
    """The raw catalog JSON (header and models), as shipped in the package."""
    text = resources.files("bench.catalog").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@functools.cache
def load_eachlabs_models() -> list[ModelSpec]:
    """Every Eachlabs model in the catalog, in seed order (provider "eachlabs", model = slug).

    Cached: callers share one list, so they must not mutate it.
    """
    return [_model_spec(entry) for entry in load_eachlabs_document()["models"]]


def eachlabs_model(slug: str) -> ModelSpec:
    """One model by slug; KeyError names the slug when the catalog has no such model."""
    for spec in load_eachlabs_models():
        if spec.model == slug:
            return spec
    raise KeyError(f"no Eachlabs model {slug!r} in the catalog")


def _model_spec(entry: dict[str, Any]) -> ModelSpec:
    params = {p["name"]: _param_spec(p) for p in entry["params"]}
    return ModelSpec(
        provider=PROVIDER,
        model=entry["slug"],
        params=params,
        prompt_param=entry["prompt_param"],
        negative_prompt_param=entry["negative_prompt_param"],
        steps_param=entry["steps_param"],
        guidance_param=entry["guidance_param"],
        seed_param=entry["seed_param"],
        count_param=entry["count_param"],
        size_mode=entry["size_mode"],
        size_param=entry["size_param"],
        size_param_2=entry["size_param_2"],
        aspect_ratio_param=entry["aspect_ratio_param"],
        size_custom=dict(entry["size_custom"]),
        fixed=dict(entry["fixed"]),
        title=entry["title"],
        version=entry["version"],
    )


def _param_spec(p: dict[str, Any]) -> ParamSpec:
    options = p["options"]
    return ParamSpec(
        name=p["name"],
        type=p["type"],
        required=p["required"],
        default=p["default"],
        options=tuple(options) if options is not None else None,
        minimum=p["min"],
        maximum=p["max"],
        description=p["description"],
        options_complete=p["options_complete"],
    )

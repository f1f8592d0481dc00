"""The Eachlabs text-to-image catalog as ModelSpecs.

The data is bench/catalog/data/eachlabs.json, generated from the Eachlabs seed by
tools/generate_eachlabs.py and bench.catalog.model_entries (which document how each field is derived). It is
read through importlib.resources so that it works from an installed package too.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from bench.catalog.entries import spec_from_entry
from bench.catalog.spec import ModelSpec

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
    return [spec_from_entry(entry, PROVIDER) for entry in load_eachlabs_document()["models"]]


def eachlabs_model(slug: str) -> ModelSpec:
    """One model by slug; KeyError names the slug when the catalog has no such model."""
    for spec in load_eachlabs_models():
        if spec.model == slug:
            return spec
    raise KeyError(f"no Eachlabs model {slug!r} in the catalog")

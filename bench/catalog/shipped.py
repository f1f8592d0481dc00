"""The model snapshots shipped in the package: bench/catalog/data/<catalog>.json.

One file per catalog (fal, replicate, openai, aimlapi, apipie, akiio, kidjig, and
eachlabs, which tools/generate_eachlabs.py derives from seed 001). They are
read through importlib.resources so an installed package finds them too.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from bench.catalog.entries import spec_from_entry
from bench.catalog.spec import ModelSpec


@functools.cache
def shipped_document(catalog: str) -> dict[str, Any]:
    """The raw snapshot (header and models); an empty one when the package ships none."""
    path = resources.files("bench.catalog").joinpath("data", f"{catalog}.json")
    if not path.is_file():
        return {"provider": catalog, "models": []}
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@functools.cache
def _specs(catalog: str) -> tuple[ModelSpec, ...]:
    return tuple(spec_from_entry(e, catalog) for e in shipped_document(catalog)["models"])


def shipped_specs(catalog: str, provider: str) -> list[ModelSpec]:
    """The snapshot's models as specs of `provider` (a configured name may differ from the catalog's)."""
    from dataclasses import replace

    specs = _specs(catalog)
    return list(specs) if provider == catalog else [replace(s, provider=provider) for s in specs]

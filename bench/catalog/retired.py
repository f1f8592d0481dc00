"""Models a provider has shut down: a one-line "retired on DATE, use X" before anything is sent.

The shipped snapshots list them under `retired` (bench/catalog/data/<catalog>.json), each with
the shutdown date, the replacement and, where one was shipped before, its old schema:
  {"model": "dall-e-3", "retired_on": "2026-05-12", "use": "gpt-image-2", "spec": {...}}
A retired model is in no listing and no default. Asking the provider's own host for one is an
error (exit 2): the request could only fail. Another host (a proxy that may route elsewhere, an
emulator) gets the old schema and a one-time warning, and so does
`providers.<name>.options.allow_retired: true` (to replay an old run's cached answers). A host
that no longer serves the model answers so, and the adapter says it in one line with the
successor (bench.providers.openai_compat: UnknownModelError); the emulators answer as OpenAI does. A gateway that resells a model its maker retired
(AIML API's dall-e-3) marks it `"severity": "warn"`: its own docs still list it, so it may
still answer; the user is told once and the model stays out of the defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.catalog.discovery import CatalogError
from bench.catalog.entries import spec_from_entry
from bench.catalog.shipped import shipped_document
from bench.catalog.spec import ModelSpec

_warned: set[str] = set()


class RetiredModelError(CatalogError):
    """A target names a model its provider has shut down (exit 2, before any request)."""


@dataclass(frozen=True)
class Retirement:
    model: str
    retired_on: str
    use: str
    severity: str  # "error" (the provider shut it down) | "warn" (a gateway still lists it)
    note: str
    spec_entry: Mapping[str, Any] | None


def retirement(catalog: str, model: str) -> Retirement | None:
    for row in shipped_document(catalog).get("retired") or []:
        if isinstance(row, Mapping) and row.get("model") == model:
            spec = row.get("spec")
            return Retirement(
                model=model,
                retired_on=str(row["retired_on"]),
                use=str(row["use"]),
                severity=str(row.get("severity") or "error"),
                note=str(row.get("note") or ""),
                spec_entry=spec if isinstance(spec, Mapping) else None,
            )
    return None


def check_retired(
    provider: str, catalog: str, model: str, options: Mapping[str, Any], *, real_host: bool
) -> ModelSpec | None:
    """None for a model that is not retired; its old spec when retirement is waived or only warned.

    Raises RetiredModelError for a model its provider shut down when `real_host` (the provider's
    documented base URL would be asked), unless options.allow_retired."""
    gone = retirement(catalog, model)
    if gone is None:
        return None
    allowed = options.get("allow_retired") is True or not real_host
    line = f"{provider}:{model}: retired on {gone.retired_on}, use {provider}:{gone.use}"
    if gone.severity == "error" and not allowed:
        raise RetiredModelError(
            f"{line} (to replay an old run from the cache, set providers.{provider}.options.allow_retired=true)"
        )
    if gone.spec_entry is None:
        raise RetiredModelError(f"{line}; no schema of it is shipped")
    warning = f"{line}{f' ({gone.note})' if gone.note else ''}"
    if warning not in _warned:
        _warned.add(warning)
        print(f"bench: warning: {warning}", file=sys.stderr)
    return spec_from_entry(gone.spec_entry, provider, catalog_source="shipped")

"""Adapter registry: `providers.<name>.adapter` names a class here (open_clip-style factory).

Several providers can share one adapter (AIML API and APIpie both speak the
OpenAI images protocol, with different profiles), so a provider's *name* and its
*adapter* are separate config keys.
"""

from __future__ import annotations

import importlib

from bench.errors import ConfigError
from bench.providers.base import Provider, ProviderSettings

ADAPTERS: dict[str, str] = {
    "local": "bench.providers.local:LocalProvider",
    "openai_compat": "bench.providers.openai_compat:OpenAICompatProvider",
    "eachlabs": "bench.providers.eachlabs:EachlabsProvider",
    "akiio": "bench.providers.akiio:AkiioProvider",
    "kidjig": "bench.providers.kidjig:KidjigProvider",
    "fal": "bench.providers.fal:FalProvider",
    "replicate": "bench.providers.replicate:ReplicateProvider",
    "diffusers": "bench.providers.hf_diffusers:DiffusersProvider",
}


def adapter_class(adapter: str) -> type[Provider]:
    try:
        path = ADAPTERS[adapter]
    except KeyError:
        raise ConfigError(
            "adapter", adapter, f"unknown adapter; known: {', '.join(sorted(ADAPTERS))}"
        ) from None
    module_name, _, class_name = path.partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def create_provider(adapter: str, settings: ProviderSettings) -> Provider:
    return adapter_class(adapter)(settings)

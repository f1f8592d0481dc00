"""Keep API keys out of every output: records, logs, journal, exceptions shown to users."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_MIN_SECRET_LEN = 4  # shorter "keys" would redact ordinary words


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, "***")
    return text


def redact_json(value: Any, secrets: Iterable[str]) -> Any:
    """A JSON-able value with every string that holds a key redacted (a provider's answer echoing it)."""
    secrets = list(secrets)
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {redact(str(k), secrets): redact_json(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_json(v, secrets) for v in value]
    return value

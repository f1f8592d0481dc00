"""Keep API keys out of every output: records, logs, journal, exceptions shown to users."""

from __future__ import annotations

from collections.abc import Iterable

_MIN_SECRET_LEN = 4  # shorter "keys" would redact ordinary words


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LEN and secret in text:
            text = text.replace(secret, "***")
    return text

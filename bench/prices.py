"""Versioned price tables: the cost of a request when the provider does not report it.

Entries live in configs/prices/*.yaml. Each names its unit, price, the date it
took effect and the page it was read from, so a report can say where a number
came from. A target with no entry has unknown cost (NaN), never a made-up default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.errors import ConfigError

PriceUnit = Literal["image", "megapixel", "second", "request", "token", "gpu_second"]
UNITS: tuple[str, ...] = ("image", "megapixel", "second", "request", "token", "gpu_second")
# Token-priced models (gpt-image-1) bill each kind of token at its own rate, in USD per million
# tokens, read from the usage block the API returns: {input_tokens_details: {text_tokens,
# image_tokens}, output_tokens}.
# `total` prices a bare token total (AIML's meta.usage.tokens_used) where no breakdown is given.
TOKEN_KINDS: tuple[str, ...] = ("input_text", "input_image", "output_image", "total")


@dataclass(frozen=True)
class PriceEntry:
    provider: str
    model: str  # "*" matches every model of the provider
    unit: PriceUnit
    usd: float
    effective_date: str
    source_url: str
    note: str = ""
    # Only applies when every key here equals the request payload's value (dall-e-3 costs more
    # at size=1792x1024 or quality=hd). Entries without `match` are the model's fallback.
    match: Mapping[str, Any] = field(default_factory=dict)
    token_usd_per_million: Mapping[str, float] = field(default_factory=dict)  # unit == "token"
    # "price_table" (configs/prices) or "price_api" (published by the provider, fetched at run
    # time; effective_date is the fetch date). Becomes the record's cost_source.
    source: str = "price_table"

    def applies_to(self, payload: Mapping[str, Any] | None) -> bool:
        if not self.match:
            return True
        return payload is not None and all(payload.get(k) == v for k, v in self.match.items())

    def cost_usd(
        self,
        *,
        n_images: int,
        megapixels: float | None,
        seconds: float | None,
        usage: Mapping[str, Any] | None = None,
    ) -> float:
        """Cost of one request. NaN when the unit's quantity is unknown (e.g. no inference time)."""
        if self.unit == "token":
            return self._token_cost(usage)
        if self.unit == "image":
            return self.usd * n_images
        if self.unit == "request":
            return self.usd
        if self.unit == "megapixel":
            return math.nan if megapixels is None else self.usd * megapixels * n_images
        if self.unit == "gpu_second":
            # Self-hosted: the device-seconds this request occupied (its share of a batched call,
            # when the provider says so), at the device's rate (an hourly rate / 3600).
            shared = (usage or {}).get("device_seconds")
            seconds = float(shared) if isinstance(shared, int | float) else seconds
        return math.nan if seconds is None or math.isnan(seconds) else self.usd * seconds

    def _token_cost(self, usage: Mapping[str, Any] | None) -> float:
        if not usage:
            return math.nan
        total_rate = self.token_usd_per_million.get("total")
        if total_rate is not None and isinstance(usage.get("total_tokens"), int | float):
            return total_rate * float(usage["total_tokens"]) / 1e6
        details = usage.get("input_tokens_details") or {}
        counts = {
            "input_text": details.get("text_tokens"),
            "input_image": details.get("image_tokens"),
            "output_image": usage.get("output_tokens"),
        }
        if counts["input_text"] is None and counts["input_image"] is None:
            counts["input_text"] = usage.get("input_tokens")  # no breakdown: all input is text
        if all(count is None for count in counts.values()):
            return math.nan  # e.g. a bare total without a `total` rate: unknown, not free
        total = 0.0
        for kind, count in counts.items():
            if count is None:
                continue
            rate = self.token_usd_per_million.get(kind)
            if rate is None or not isinstance(count, int | float):
                return math.nan  # tokens of a kind we have no price for: unknown, not free
            total += rate * count / 1e6
        return total


class PriceTable:
    def __init__(self, entries: Iterable[PriceEntry]) -> None:
        self._entries: dict[tuple[str, str], list[PriceEntry]] = {}
        for entry in entries:
            self._entries.setdefault((entry.provider, entry.model), []).append(entry)

    def lookup(
        self, provider: str, model: str, payload: Mapping[str, Any] | None = None
    ) -> PriceEntry | None:
        """The most specific entry: matching `match` conditions first, then the model's, then "*"."""
        for key in ((provider, model), (provider, "*")):
            candidates = self._entries.get(key, [])
            # Most specific first; at equal specificity a price the provider published now beats the table.
            for entry in sorted(candidates, key=lambda e: (-len(e.match), e.source != "price_api")):
                if entry.applies_to(payload):
                    return entry
        return None

    def with_entries(self, entries: Iterable[PriceEntry]) -> PriceTable:
        """A new table with these entries added (live prices from the providers' price APIs)."""
        return PriceTable([*(e for group in self._entries.values() for e in group), *entries])

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    @classmethod
    def from_config(cls, rows: Iterable[Mapping[str, Any]]) -> PriceTable:
        entries = []
        for i, row in enumerate(rows):
            where = f"prices.entries[{i}]"
            missing = [
                k
                for k in ("provider", "model", "unit", "usd", "effective_date", "source_url")
                if k not in row
            ]
            if missing:
                raise ConfigError(where, dict(row), f"add the missing keys: {', '.join(missing)}")
            if row["unit"] not in UNITS:
                raise ConfigError(f"{where}.unit", row["unit"], f"use one of {', '.join(UNITS)}")
            tokens = dict(row.get("token_usd_per_million") or {})
            unknown = sorted(set(tokens) - set(TOKEN_KINDS))
            if unknown:
                raise ConfigError(f"{where}.token_usd_per_million", unknown, f"use {', '.join(TOKEN_KINDS)}")
            if row["unit"] == "token" and not tokens:
                raise ConfigError(
                    f"{where}.token_usd_per_million", None, "a token-priced entry needs its rates"
                )
            usd = row["usd"]
            if not isinstance(usd, int | float) or isinstance(usd, bool) or usd < 0 or math.isnan(usd):
                raise ConfigError(f"{where}.usd", usd, "use a non-negative number of US dollars")
            entries.append(
                PriceEntry(
                    provider=str(row["provider"]),
                    model=str(row["model"]),
                    unit=row["unit"],
                    usd=float(usd),
                    effective_date=str(row["effective_date"]),
                    source_url=str(row["source_url"]),
                    note=str(row.get("note", "")),
                    match=dict(row.get("match") or {}),
                    token_usd_per_million={k: float(v) for k, v in tokens.items()},
                )
            )
        return cls(entries)


def estimate_cost(
    table: PriceTable,
    provider: str,
    model: str,
    *,
    payload: Mapping[str, Any] | None,
    n_images: int,
    megapixels: float | None,
    seconds: float | None = None,
    usage: Mapping[str, Any] | None = None,
) -> float | None:
    """Cost of one request from the table; None when there is no entry, NaN when its quantity is unknown."""
    entry = table.lookup(provider, model, payload)
    if entry is None:
        return None
    return entry.cost_usd(n_images=n_images, megapixels=megapixels, seconds=seconds, usage=usage)

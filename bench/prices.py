"""Versioned price tables: the cost of a request when the provider does not report it.

Entries live in configs/prices/*.yaml. Each names its unit, price, the date it
took effect and the page it was read from, so a report can say where a number
came from. A target with no entry has unknown cost (NaN), never a made-up default.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench.errors import ConfigError

PriceUnit = Literal["image", "megapixel", "second", "request"]
UNITS: tuple[str, ...] = ("image", "megapixel", "second", "request")


@dataclass(frozen=True)
class PriceEntry:
    provider: str
    model: str  # "*" matches every model of the provider
    unit: PriceUnit
    usd: float
    effective_date: str
    source_url: str
    note: str = ""

    def cost_usd(self, *, n_images: int, megapixels: float | None, seconds: float | None) -> float:
        """Cost of one request. NaN when the unit's quantity is unknown (e.g. no inference time)."""
        if self.unit == "image":
            return self.usd * n_images
        if self.unit == "request":
            return self.usd
        if self.unit == "megapixel":
            return math.nan if megapixels is None else self.usd * megapixels * n_images
        return math.nan if seconds is None or math.isnan(seconds) else self.usd * seconds


class PriceTable:
    def __init__(self, entries: Iterable[PriceEntry]) -> None:
        self._entries: dict[tuple[str, str], PriceEntry] = {}
        for entry in entries:
            self._entries[(entry.provider, entry.model)] = entry

    def lookup(self, provider: str, model: str) -> PriceEntry | None:
        return self._entries.get((provider, model)) or self._entries.get((provider, "*"))

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def from_config(cls, rows: Iterable[Mapping[str, Any]]) -> PriceTable:
        entries = []
        for i, row in enumerate(rows):
            where = f"prices.entries[{i}]"
            missing = [k for k in ("provider", "model", "unit", "usd", "effective_date", "source_url") if k not in row]
            if missing:
                raise ConfigError(where, dict(row), f"add the missing keys: {', '.join(missing)}")
            if row["unit"] not in UNITS:
                raise ConfigError(f"{where}.unit", row["unit"], f"use one of {', '.join(UNITS)}")
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
                )
            )
        return cls(entries)

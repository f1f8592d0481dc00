"""Versioned price tables: the cost of a request when the provider does not report it.

Entries live in configs/prices/*.yaml. Each names its unit, price, the date it
took effect and the page it was read from, so a report can say where a number
came from. A target with no entry has unknown cost (NaN), never a made-up default.

How a provider counts a unit (fal rounds each image up to a whole megapixel) is data
too: `billing_rules` in the same file, per provider and unit, which apply to the
table's entries and to the prices the providers publish at run time alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bench.errors import ConfigError

PriceUnit = Literal["image", "megapixel", "second", "request", "token", "gpu_second"]
UNITS: tuple[str, ...] = ("image", "megapixel", "second", "request", "token", "gpu_second")
# Token-priced models (gpt-image-1) bill each kind of token at its own rate, in USD per million
# tokens, read from the usage block the API returns: {input_tokens_details: {text_tokens,
# image_tokens}, output_tokens}.
# `total` prices a bare token total (AIML's meta.usage.tokens_used) where no breakdown is given.
TOKEN_KINDS: tuple[str, ...] = ("input_text", "input_image", "output_image", "total")
ROUNDING_MODES: tuple[str, ...] = ("up", "none")
DEFAULT_MEGAPIXEL_PX = 1_000_000


@dataclass(frozen=True)
class BillingRule:
    """How a provider turns an image's pixels into billed megapixels (its own price notes say).

    Each image's pixels / `megapixel_px` is rounded to a whole multiple of `step` (`round: up`:
    never down), so with fal's rule a 512x512 image bills one megapixel, not a quarter of one.
    """

    provider: str
    model: str = "*"
    unit: str = "megapixel"
    megapixel_px: int = DEFAULT_MEGAPIXEL_PX  # pixels in one billed megapixel
    round: str = "none"  # up | none
    step: float = 1.0  # in megapixels
    source_url: str = ""
    note: str = ""

    def billed_megapixels(self, megapixels: float) -> float:
        """One image's billed megapixels, from its real megapixels (10^6 pixels each)."""
        units = megapixels * 1e6 / self.megapixel_px
        if self.round == "up":
            # A hair of float noise must not bill a whole extra step (1024*1024 px is exactly one).
            return math.ceil(units / self.step - 1e-9) * self.step
        return units

    def describe(self) -> str:
        size = "10^6 px" if self.megapixel_px == DEFAULT_MEGAPIXEL_PX else f"{self.megapixel_px} px"
        if self.round == "up":
            return f"each image's megapixels ({size}) rounded up to a multiple of {self.step:g}"
        return f"each image's megapixels ({size}), not rounded"


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
    # How the provider counts megapixels (unit == "megapixel"): the entry's own, else the
    # table's billing rule for its provider, filled in by PriceTable.lookup.
    rule: BillingRule | None = None

    def describe_rule(self) -> str:
        """What the record says about how this entry prices a request."""
        if self.unit == "megapixel":
            return (self.rule or BillingRule(self.provider)).describe()
        return f"per {self.unit}"

    # Given by the user (prices.entries), not shipped (prices.shipped): wins at equal specificity.
    user: bool = False

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
            if megapixels is None:
                return math.nan
            billed = self.rule.billed_megapixels(megapixels) if self.rule else megapixels
            return self.usd * billed * n_images
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
            if count is None or count == 0:
                continue  # no tokens of this kind cost nothing, priced or not
            rate = self.token_usd_per_million.get(kind)
            if rate is None or not isinstance(count, int | float):
                return math.nan  # tokens of a kind we have no price for: unknown, not free
            total += rate * count / 1e6
        return total


class PriceTable:
    def __init__(self, entries: Iterable[PriceEntry], rules: Iterable[BillingRule] = ()) -> None:
        self._entries: dict[tuple[str, str], list[PriceEntry]] = {}
        for entry in entries:
            self._entries.setdefault((entry.provider, entry.model), []).append(entry)
        self._rules: dict[tuple[str, str, str], BillingRule] = {
            (r.provider, r.model, r.unit): r for r in rules
        }

    def rule_for(self, provider: str, model: str, unit: str) -> BillingRule | None:
        """The provider's billing rule for this unit: the model's own, else the provider's ("*")."""
        return self._rules.get((provider, model, unit)) or self._rules.get((provider, "*", unit))

    def lookup(
        self, provider: str, model: str, payload: Mapping[str, Any] | None = None
    ) -> PriceEntry | None:
        """The most specific entry: matching `match` conditions first, then the model's, then "*"."""
        for key in ((provider, model), (provider, "*")):
            candidates = self._entries.get(key, [])
            # Most specific first; at equal specificity the user's own entry, then a price the
            # provider published now, then the shipped table.
            for entry in sorted(
                candidates, key=lambda e: (-len(e.match), not e.user, e.source != "price_api")
            ):
                if entry.applies_to(payload):
                    if entry.rule is None:
                        rule = self.rule_for(provider, model, entry.unit)
                        return entry if rule is None else replace(entry, rule=rule)
                    return entry
        return None

    def with_entries(self, entries: Iterable[PriceEntry]) -> PriceTable:
        """A new table with these entries added (live prices from the providers' price APIs)."""
        return PriceTable([*self.entries(), *entries], self._rules.values())

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    @classmethod
    def from_prices_config(cls, prices: Mapping[str, Any]) -> PriceTable:
        """The `prices` block: the shipped table (`shipped`) plus the user's `entries`, which win
        over a shipped entry of the same specificity, and the `billing_rules`."""
        shipped = cls.from_config(prices.get("shipped") or [], key="prices.shipped")
        mine = cls.from_config(prices.get("entries") or [], key="prices.entries", user=True)
        rules = [
            parse_rule(r, f"prices.billing_rules[{i}]")
            for i, r in enumerate(prices.get("billing_rules") or [])
        ]
        return cls([*shipped.entries(), *mine.entries()], rules)

    def entries(self) -> list[PriceEntry]:
        return [e for group in self._entries.values() for e in group]

    @classmethod
    def from_config(
        cls,
        rows: Iterable[Mapping[str, Any]],
        rules: Iterable[Mapping[str, Any]] = (),
        *,
        key: str = "prices.entries",
        user: bool = False,
    ) -> PriceTable:
        if not isinstance(rows, Iterable) or isinstance(rows, str | Mapping):
            raise ConfigError(
                key, rows, "give a list of price entries, e.g. [{provider: ..., model: ..., ...}]"
            )
        entries = []
        for i, row in enumerate(rows):
            where = f"{key}[{i}]"
            if not isinstance(row, Mapping):
                raise ConfigError(
                    where, row, "give each price entry as a mapping {provider: ..., model: ..., ...}"
                )
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
                    rule=(
                        parse_rule(
                            {**row["billing_rule"], "provider": row["provider"]}, f"{where}.billing_rule"
                        )
                        if row.get("billing_rule") is not None
                        else None
                    ),
                    user=user,
                )
            )
        parsed_rules = [parse_rule(r, f"prices.billing_rules[{i}]") for i, r in enumerate(rules)]
        return cls(entries, parsed_rules)


def parse_rule(row: Any, where: str) -> BillingRule:
    """One billing rule of the price data; a bad one is a ConfigError naming its key."""
    if not isinstance(row, Mapping):
        raise ConfigError(where, row, "give a billing rule as a mapping: provider, unit, round, megapixel_px")
    unknown = sorted(
        set(row) - {"provider", "model", "unit", "megapixel_px", "round", "step", "source_url", "note"}
    )
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}",
            row[unknown[0]],
            "a billing rule takes provider, model, unit, megapixel_px, round, step, source_url, note",
        )
    if "provider" not in row:
        raise ConfigError(f"{where}.provider", None, "name the provider the rule is for")
    unit = str(row.get("unit", "megapixel"))
    if unit != "megapixel":
        raise ConfigError(f"{where}.unit", unit, "billing rules exist for unit megapixel only")
    rounding = str(row.get("round", "none"))
    if rounding not in ROUNDING_MODES:
        raise ConfigError(f"{where}.round", rounding, f"use one of {', '.join(ROUNDING_MODES)}")
    px = row.get("megapixel_px", DEFAULT_MEGAPIXEL_PX)
    if not isinstance(px, int) or isinstance(px, bool) or px <= 0:
        raise ConfigError(f"{where}.megapixel_px", px, "use a positive whole number of pixels, e.g. 1048576")
    step = row.get("step", 1.0)
    if not isinstance(step, int | float) or isinstance(step, bool) or not step > 0:
        raise ConfigError(f"{where}.step", step, "use a positive number of megapixels, e.g. 1")
    return BillingRule(
        provider=str(row["provider"]),
        model=str(row.get("model", "*")),
        unit=unit,
        megapixel_px=px,
        round=rounding,
        step=float(step),
        source_url=str(row.get("source_url", "")),
        note=str(row.get("note", "")),
    )


def price_entry_hint(provider: str, model: str) -> str:
    """The fix for a target nobody can price, in one line: the exact config key and a row for it."""
    return (
        f"add a price entry under prices.entries (a row in configs/prices/default.yaml, or your own "
        f"prices/ config): {{provider: {provider}, model: {model}, unit: image, usd: PRICE, "
        f"effective_date: 'YYYY-MM-DD', source_url: URL}} (unit: image | megapixel | second | request)"
    )


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

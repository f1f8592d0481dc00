"""What a decision is asked: the signal, the margin, the constraints and the test's settings.

Read from the `report.decide` config block (configs/report/default.yaml) and `bench recommend`'s
flags. Margins are per signal, in the signal's own units: how much worse than the best a cheaper
group may be and still count as "as good". The defaults are stated in every verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bench.decide.signals import CHOICES, QUALITY_ORDER
from bench.errors import ConfigError

# Signal -> default margin, in the signal's units (configs/report/default.yaml states the same;
# tests/test_decide.py checks they agree).
DEFAULT_MARGINS: dict[str, float] = {
    "arena_elo": 25.0,  # Elo points: 25 = a 53.6% head-to-head win rate
    "judge_adherence": 0.05,  # share of the judge's yes/no questions answered yes
    "judge_rubric": 0.5,  # the judge's 1-10 rating
    "pickscore": 0.2,  # PickScore logit scale (~18-23 on real images)
    "hpsv2": 0.005,  # HPSv2.1 cosine scale (~0.2-0.35)
    "clip": 1.0,  # CLIP score (100 x cosine)
    "kid": 0.002,  # KID (unbiased MMD^2)
    "fid": 2.0,  # FID points
}
CONSTRAINT_KEYS = ("max_cost_per_1k", "max_p90_latency", "max_refusal_rate", "min_ok_rate")


@dataclass(frozen=True)
class Constraints:
    max_cost_per_1k: float | None = None  # USD per 1,000 images
    max_p90_latency: float | None = None  # seconds
    max_refusal_rate: float | None = None  # share of requests, 0-1
    min_ok_rate: float | None = None  # share of requests, 0-1

    def as_dict(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in CONSTRAINT_KEYS}

    def describe(self) -> str:
        parts = []
        if self.max_cost_per_1k is not None:
            parts.append(f"cost <= ${self.max_cost_per_1k:g}/1k images")
        if self.max_p90_latency is not None:
            parts.append(f"p90 latency <= {self.max_p90_latency:g} s")
        if self.max_refusal_rate is not None:
            parts.append(f"refusal rate <= {100 * self.max_refusal_rate:g}%")
        if self.min_ok_rate is not None:
            parts.append(f"ok rate >= {100 * self.min_ok_rate:g}%")
        return ", ".join(parts) or "none"


@dataclass(frozen=True)
class DecideSettings:
    signal: str = "auto"  # report.quality_metric
    margins: Mapping[str, float] = field(default_factory=dict)  # overrides of DEFAULT_MARGINS
    constraints: Constraints = field(default_factory=Constraints)
    confidence: float = 0.95  # one-sided, for the family of contenders (Holm)
    n_boot: int = 2000
    seed: int = 0
    min_prompts: int = 10  # shared prompts below which a per-image signal cannot carry a choice
    min_votes: int = 30  # arena votes below which Elo cannot carry a choice
    max_categories: int = 5  # rows of the per-category view

    def margin(self, name: str) -> tuple[float, str]:
        if name in self.margins:
            return float(self.margins[name]), "set"
        return DEFAULT_MARGINS[name], "default"

    def with_overrides(self, **values: Any) -> DecideSettings:
        cons = {k: values.pop(k) for k in CONSTRAINT_KEYS if k in values}
        out = replace(self, **values) if values else self
        return replace(out, constraints=replace(out.constraints, **cons)) if cons else out


def _number(key: str, value: Any, *, low: float | None = None, high: float | None = None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(key, value, "give a number (or null for no constraint)") from None
    if math.isnan(v) or (low is not None and v < low) or (high is not None and v > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ConfigError(key, value, f"give a number {bounds}")
    return v


def parse_constraints(cfg: Mapping[str, Any], *, as_flags: bool = False) -> Constraints:
    """Constraints from the config block (or `bench recommend`'s flags: errors then name the flag)."""

    def key(name: str) -> str:
        return "--" + name.replace("_", "-") if as_flags else "report.decide." + name

    return Constraints(
        max_cost_per_1k=_number(key("max_cost_per_1k"), cfg.get("max_cost_per_1k"), low=0.0),
        max_p90_latency=_number(key("max_p90_latency"), cfg.get("max_p90_latency"), low=0.0),
        max_refusal_rate=_number(key("max_refusal_rate"), cfg.get("max_refusal_rate"), low=0.0, high=1.0),
        min_ok_rate=_number(key("min_ok_rate"), cfg.get("min_ok_rate"), low=0.0, high=1.0),
    )


def parse_settings(report_cfg: Mapping[str, Any] | None) -> DecideSettings:
    """DecideSettings from the `report` block (quality_metric + its `decide` sub-block); ConfigError names the key."""
    report_cfg = report_cfg or {}
    cfg: Mapping[str, Any] = report_cfg.get("decide") or {}
    wanted = str(report_cfg.get("quality_metric", "auto"))
    if wanted not in CHOICES:
        raise ConfigError("report.quality_metric", wanted, f"use one of {', '.join(CHOICES)}")
    margins_cfg = cfg.get("margins") or {}
    margins: dict[str, float] = {}
    for name, value in dict(margins_cfg).items():
        if name not in QUALITY_ORDER:
            raise ConfigError(
                f"report.decide.margins.{name}", value, f"use one of {', '.join(QUALITY_ORDER)}"
            )
        number = _number(f"report.decide.margins.{name}", value, low=0.0)
        if number is None or number <= 0:
            raise ConfigError(
                f"report.decide.margins.{name}", value, "give a margin > 0 in the signal's units"
            )
        if number != DEFAULT_MARGINS[name]:  # the shipped config states the defaults; they stay "default"
            margins[name] = number
    confidence = _number("report.decide.confidence", cfg.get("confidence", 0.95), low=0.5, high=0.9999)
    defaults = DecideSettings()
    return DecideSettings(
        signal=wanted,
        margins=margins,
        constraints=parse_constraints(cfg),
        confidence=confidence if confidence is not None else 0.95,
        n_boot=int(cfg.get("n_boot", defaults.n_boot)),
        seed=int(cfg.get("seed", defaults.seed)),
        min_prompts=int(cfg.get("min_prompts", defaults.min_prompts)),
        min_votes=int(cfg.get("min_votes", defaults.min_votes)),
    )

"""The `study` config block: grid (every prompt x every contender, the default) or adaptive (prompts in
rounds, contenders that can no longer win dropped between rounds: docs/adaptive.md)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.errors import ConfigError

# The range each per-image signal's scores lie in: the adaptive rule's tests assume nothing else.
# Narrower ranges decide sooner; a score outside the range would void the guarantee, so a run
# that meets one stops with an error naming study.score_range.
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "judge_adherence": (0.0, 1.0),  # share of the judge's yes/no questions answered yes
    "judge_rubric": (1.0, 10.0),  # the judge's 1-10 rating
    "clip": (0.0, 100.0),  # 100 x max(cosine, 0)
    "pickscore": (0.0, 100.0),  # logit scale x cosine, clipped at 0 by the scorer's use
    "hpsv2": (0.0, 1.0),  # cosine
}


@dataclass(frozen=True)
class StudySettings:
    mode: str = "grid"  # grid | adaptive
    seed: int = 0  # the prompts' order in an adaptive study
    max_prompts: int | None = None  # stop an adaptive study after this many prompts (None: all)
    first_round: int = 10  # prompts in the first round (the rule decides nothing on fewer)
    round_prompts: int = 20  # prompts per later round
    score_range: tuple[float, float] | None = None  # None: SCORE_RANGES of the signal

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "seed": self.seed,
            "max_prompts": self.max_prompts,
            "first_round": self.first_round,
            "round_prompts": self.round_prompts,
            "score_range": list(self.score_range) if self.score_range else None,
        }


def _int(cfg: Mapping[str, Any], key: str, default: int | None, minimum: int) -> int | None:
    value = cfg.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"study.{key}", value, f"give a whole number >= {minimum}")
    return value


def parse_study(cfg: Mapping[str, Any] | None) -> StudySettings:
    cfg = cfg or {}
    mode = str(cfg.get("mode", "grid"))
    if mode not in ("grid", "adaptive"):
        raise ConfigError("study.mode", mode, "use grid (every prompt x every contender) or adaptive")
    raw_range = cfg.get("score_range")
    score_range = None
    if raw_range is not None:
        try:
            low, high = (float(v) for v in raw_range)
        except (TypeError, ValueError):
            raise ConfigError("study.score_range", raw_range, "give [low, high], e.g. [0, 1]") from None
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError("study.score_range", raw_range, "give [low, high] with low < high")
        score_range = (low, high)
    d = StudySettings()
    first = _int(cfg, "first_round", d.first_round, 2)
    rounds = _int(cfg, "round_prompts", d.round_prompts, 1)
    return StudySettings(
        mode=mode,
        seed=_int(cfg, "seed", 0, 0) or 0,
        max_prompts=_int(cfg, "max_prompts", None, 2),
        first_round=first if first is not None else d.first_round,
        round_prompts=rounds if rounds is not None else d.round_prompts,
        score_range=score_range,
    )

"""How an emulator behaves: latencies, the fault it injects, the key it wants, what it reports."""

from __future__ import annotations

from dataclasses import dataclass

# Injectable faults. Each protocol renders them in its own documented error shape.
FAULTS: tuple[str, ...] = (
    "rate_limit",  # 429 with Retry-After
    "server_error",  # 500
    "unavailable",  # 503
    "slow",  # answers, but after `slow_s` more
    "hang",  # never finishes (sync: holds the connection; async: the job stays running)
    "refuse",  # content-policy refusal
    "malformed_json",  # a 200 whose body is not JSON
    "bad_image",  # the image bytes do not decode
    "expired_url",  # the image URL answers 404
    "missing_field",  # a JSON answer without the image field
)


@dataclass(frozen=True)
class Knobs:
    """How an emulator behaves. Latencies are uniform in [lo, hi] seconds."""

    queue_s: tuple[float, float] = (0.0, 0.0)
    inference_s: tuple[float, float] = (0.0, 0.0)
    fault: str | None = None
    fault_rate: float = 1.0  # share of submissions that get the fault
    fault_first: int | None = None  # only the first N submissions get it (retries, then success)
    retry_after_s: float = 1.0
    slow_s: float = 1.0
    hang_s: float = 300.0  # how long a hung sync request holds the connection
    report_cost: bool = True
    # Reported costs count each image's megapixels rounded up to whole units of this many pixels
    # (a provider that rounds, as fal does with 1024x1024-px megapixels); None: not rounded.
    cost_round_up_px: int | None = None
    api_key: str | None = None  # None: any non-empty key is accepted
    refuse_word: str = "REFUSE"  # prompts containing this word are refused, whatever the fault
    max_side_px: int = 256  # images are rendered no larger than this (tests use 64)
    rng_seed: int = 0
    # Where a transient fault (rate_limit, server_error, unavailable) answers: at "submit", or,
    # on queue APIs that have them, at the "status" or "result" call of the job it hit.
    fault_at: str = "submit"
    # Models whose images are drawn with every colour gray (the local generator's "nocolor" variant):
    # a model that is clearly worse on colour prompts, for studies that must tell one apart.
    gray_models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; use one of {', '.join(FAULTS)}")
        if self.fault_at not in ("submit", "status", "result"):
            raise ValueError(f"fault_at must be submit, status or result, got {self.fault_at!r}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {self.fault_rate}")
        for name in ("queue_s", "inference_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")

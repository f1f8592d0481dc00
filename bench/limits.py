"""Per-provider limits: concurrency, requests per minute, and the spend budget."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bench.catalog.spec import ModelSpec


class Clock(Protocol):
    """Where the rate limiter reads the time and sleeps: the event loop's in a run, a fake in tests."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart (a leaky bucket of size one)."""

    def __init__(self, requests_per_minute: float | None, clock: Clock | None = None) -> None:
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._clock = clock or MonotonicClock()
        self._next_start = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.interval_s <= 0:
            return
        async with self._lock:
            now = self._clock.now()
            delay = self._next_start - now
            self._next_start = max(now, self._next_start) + self.interval_s
            if delay > 0:
                await self._clock.sleep(delay)


class ProviderLane:
    """At most `concurrency` requests at once to one provider, started no faster than its rpm.

    The runner reserves a request's expected cost only once it holds a slot here, so
    requests queued behind the concurrency limit hold no money and are priced with
    the freshest estimate.
    """

    def __init__(
        self, concurrency: int, requests_per_minute: float | None, clock: Clock | None = None
    ) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._rate = RateLimiter(requests_per_minute, clock)

    def slot(self) -> asyncio.Semaphore:
        """`async with lane.slot():` holds one of the provider's concurrency slots; call pace()
        right before sending. (The semaphore itself: an asynccontextmanager around it cost ~2% of
        the event loop's CPU at concurrency 1000.)"""
        return self._semaphore

    async def pace(self) -> None:
        """Wait for the requests-per-minute spacing. Only a request about to be sent takes a turn."""
        await self._rate.wait()


@dataclass(frozen=True)
class CostKey:
    """What a request's cost depends on: its target, its parameters, and its size.

    `setting` is the payload without the seed and negative prompt (they do not change the
    price); `family` also leaves out the size, so a known cost at one size can be scaled
    by megapixels to another.
    """

    target: str
    setting: str
    family: str
    megapixels: float | None


def cost_key(
    target: str, spec: ModelSpec, payload: Mapping[str, Any], width: float | None, height: float | None
) -> CostKey:
    unpriced = {spec.seed_param, spec.negative_prompt_param, spec.prompt_param}
    setting = {k: v for k, v in payload.items() if k not in unpriced}
    sized = {spec.size_param, spec.size_param_2, spec.aspect_ratio_param, *spec.size_custom}
    family = {k: v for k, v in setting.items() if k not in sized}
    megapixels = None
    if width and height and not (math.isnan(width) or math.isnan(height)):
        megapixels = width * height / 1e6
    return CostKey(target, _canonical(setting), _canonical(family), megapixels)


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class CostEstimator:
    """The expected cost of a request, from the costs the API reported most recently.

    Order: the last reported cost at this exact setting; else the last reported cost of
    this target at another size, scaled by megapixels (never below the price table's
    figure, which may be per image); else the price table or the adapter's guess; else
    the last reported cost of the target as is; else unknown (None).

    Each estimate comes with its basis: "reported" (this setting was billed before), "table",
    "scaled" or "target" (a guess from another setting: providers round, so the first request at
    a new setting is a probe), or None (unknown).
    """

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], float] = {}
        self._family: dict[tuple[str, str], tuple[float, float | None]] = {}
        self._target: dict[str, float] = {}

    def observe(self, key: CostKey, cost_usd: float, megapixels: float | None) -> None:
        if math.isnan(cost_usd):
            return
        self._exact[(key.target, key.setting)] = cost_usd
        # Priced by the size asked for; the delivered image's size only when none was asked.
        self._family[(key.target, key.family)] = (cost_usd, key.megapixels or megapixels)
        self._target[key.target] = cost_usd

    def estimate(self, key: CostKey, priced: float | None) -> float | None:
        return self.estimate_with_basis(key, priced)[0]

    def estimate_with_basis(self, key: CostKey, priced: float | None) -> tuple[float | None, str | None]:
        exact = self._exact.get((key.target, key.setting))
        if exact is not None:
            return exact, "reported"
        has_price = priced is not None and not math.isnan(priced)
        family = self._family.get((key.target, key.family))
        if family is not None and family[1] and key.megapixels:
            scaled = family[0] * key.megapixels / family[1]
            if has_price and priced is not None:
                return max(scaled, priced), "table"
            return scaled, "scaled"
        if has_price:
            return priced, "table"
        latest = self._target.get(key.target)
        return (latest, "target") if latest is not None else (None, None)


class Budget:
    """The run folder's spend so far plus what requests holding a slot are expected to cost, against a cap.

    `spent_usd` starts at what the folder's journal already records (a resume does not get
    the cap again). Requests go one at a time ("probes") while what they cost is a guess: a
    target never billed (in this run or earlier in the folder), a target nobody can price, and
    the first request at a setting whose estimate is only scaled from another size (providers
    round: fal bills a 512x512 image a whole megapixel). A target that nobody can price and
    whose probe was billed at an unknown cost gets no more requests: the cap cannot be enforced.
    """

    def __init__(self, max_cost_usd: float | None, spent_usd: float = 0.0) -> None:
        self.max_cost_usd = max_cost_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.estimator = CostEstimator()
        self._probing: set[str] = set()  # targets, or target+setting, with a probe in flight
        self.settled: set[str] = set()  # targets billed at least once: their cost is calibrated
        self.unpriceable: set[str] = set()  # billed at a cost nobody knows, and no price to go by

    @property
    def enabled(self) -> bool:
        return self.max_cost_usd is not None

    @property
    def remaining_usd(self) -> float:
        return math.inf if self.max_cost_usd is None else max(self.max_cost_usd - self.spent_usd, 0.0)

    def estimate(self, key: CostKey, priced: float | None) -> float | None:
        return self.estimator.estimate(key, priced)

    def estimate_with_basis(self, key: CostKey, priced: float | None) -> tuple[float | None, str | None]:
        return self.estimator.estimate_with_basis(key, priced)

    def refuses_unpriced(self, target: str, estimate: float | None) -> bool:
        """True when a cap is set and this target can only be sent at an unknown price that was
        already probed (billed, and nobody said what it cost): refuse it, naming the fix."""
        return self.max_cost_usd is not None and estimate is None and target in self.unpriceable

    def try_reserve(
        self, target: str, estimate: float | None, *, probe_setting: str | None = None
    ) -> tuple[bool, str]:
        """(True, "") if the request may go; (False, "wait") to try again once in-flight work
        settles; else (False, why) and the run stops. Call release() or charge() when it ends.

        Until a target has been billed once (in this run or earlier in the folder), its requests
        go one at a time: a stale price table must not send a whole concurrency wave at a
        price the API then contradicts. `probe_setting`: this request's estimate is a guess from
        another setting, so it goes alone among requests at that setting.
        """
        if self.max_cost_usd is None:
            return True, ""
        cap = self.max_cost_usd + 1e-12
        if estimate is None:
            if target in self.unpriceable:
                return (
                    False,
                    f"cost of {target} is unknown, so max_cost_usd cannot be enforced; add a price entry",
                )
            if target in self._probing:
                return False, "wait"  # another request is finding out what this target costs
            if self.spent_usd >= cap - 1e-12:
                return False, (
                    f"max_cost_usd={self.max_cost_usd:g} reached (spent {self.spent_usd:.4f} in this run "
                    f"folder; the next request's cost is unknown)"
                )
            self._probing.add(target)
            return True, ""
        guard = target if target not in self.settled else _probe_key(target, probe_setting)
        if guard is not None and guard in self._probing:
            return False, "wait"  # another request is finding out what this costs
        if self.spent_usd + estimate > cap:
            return False, (
                f"max_cost_usd={self.max_cost_usd:g} reached (spent {self.spent_usd:.4f} in this run "
                f"folder, next ~{estimate:.4f})"
            )
        if self.spent_usd + self.reserved_usd + estimate > cap:
            return False, "wait"  # what is in flight may cost less than reserved, or fail unbilled
        if guard is not None:
            self._probing.add(guard)
        self.reserved_usd += estimate
        return True, ""

    def release(self, target: str, estimate: float | None, setting: str | None = None) -> None:
        """The request ended without being billed: give its reservation back."""
        if estimate is not None:
            self.reserved_usd = max(self.reserved_usd - estimate, 0.0)
        self._end_probe(target, setting)  # a failed probe tells nothing; the next request probes again

    def charge(
        self,
        key: CostKey,
        estimate: float | None,
        actual_usd: float,
        *,
        reported: bool,
        megapixels: float | None = None,
    ) -> None:
        """The request was billed `actual_usd` (NaN: unknown). Reported costs refine later estimates."""
        if estimate is not None:
            self.reserved_usd = max(self.reserved_usd - estimate, 0.0)
        self.settled.add(key.target)
        if not math.isnan(actual_usd):
            self.spent_usd += actual_usd
            if reported:
                self.estimator.observe(key, actual_usd, megapixels)
        elif estimate is None:
            self.unpriceable.add(key.target)
        else:
            self.spent_usd += estimate  # billed at an unknown price: count what we expected
        # Only now: a request waiting on this probe must see its cost first.
        self._end_probe(key.target, key.setting)

    def _end_probe(self, target: str, setting: str | None) -> None:
        self._probing.discard(target)
        if setting is not None:
            self._probing.discard(_probe_key(target, setting) or "")


def _probe_key(target: str, setting: str | None) -> str | None:
    return None if setting is None else f"{target}\x00{setting}"

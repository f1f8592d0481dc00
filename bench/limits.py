"""Per-provider limits: concurrency, requests per minute, and the spend budget."""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class RateLimiter:
    """Spaces request starts at least 60/rpm seconds apart (a leaky bucket of size one)."""

    def __init__(self, requests_per_minute: float | None) -> None:
        self.interval_s = 60.0 / requests_per_minute if requests_per_minute else 0.0
        self._next_start = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.interval_s <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            delay = self._next_start - now
            self._next_start = max(now, self._next_start) + self.interval_s
            if delay > 0:
                await asyncio.sleep(delay)


class ProviderLane:
    """At most `concurrency` requests at once to one provider, started no faster than its rpm."""

    def __init__(self, concurrency: int, requests_per_minute: float | None) -> None:
        self._semaphore = asyncio.Semaphore(concurrency)
        self._rate = RateLimiter(requests_per_minute)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            await self._rate.wait()
            yield


class Budget:
    """Spend so far plus what requests in flight are expected to cost, against a cap.

    An estimate comes from the price table, the adapter, or the mean cost that
    target has reported so far. A target whose cost nobody can estimate is
    probed one request at a time; if even that reports no cost, the cap cannot
    be enforced for it and it gets no more requests.
    """

    def __init__(self, max_cost_usd: float | None) -> None:
        self.max_cost_usd = max_cost_usd
        self.spent_usd = 0.0
        self.reserved_usd = 0.0
        self._reported: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # target -> [sum, n]
        self._probing: set[str] = set()
        self.unpriceable: set[str] = set()

    @property
    def enabled(self) -> bool:
        return self.max_cost_usd is not None

    def estimate(self, target: str, priced: float | None) -> float | None:
        if priced is not None and not math.isnan(priced):
            return priced
        total, n = self._reported[target]
        return total / n if n else None

    def try_reserve(self, target: str, estimate: float | None) -> tuple[bool, str]:
        """(True, "") if the request may go; else (False, why). Call release() when it ends."""
        if self.max_cost_usd is None:
            return True, ""
        if target in self.unpriceable:
            return (
                False,
                f"cost of {target} is unknown, so max_cost_usd cannot be enforced; add a price entry",
            )
        if estimate is None:
            if target in self._probing:
                return False, "wait"  # another request is probing this target's cost
            self._probing.add(target)
            return True, ""
        if self.spent_usd + self.reserved_usd + estimate > self.max_cost_usd + 1e-12:
            return False, (
                f"max_cost_usd={self.max_cost_usd:g} reached (spent {self.spent_usd:.4f}, "
                f"in flight {self.reserved_usd:.4f}, next ~{estimate:.4f})"
            )
        self.reserved_usd += estimate
        return True, ""

    def release(
        self,
        target: str,
        estimate: float | None,
        actual_usd: float | None,
        *,
        reported: bool,
        succeeded: bool,
    ) -> None:
        if estimate is not None:
            self.reserved_usd = max(self.reserved_usd - estimate, 0.0)
        else:
            self._probing.discard(target)
        if not succeeded:
            return  # a failed probe tells nothing about cost; the next request probes again
        if actual_usd is not None and not math.isnan(actual_usd):
            self.spent_usd += actual_usd
            if reported:
                acc = self._reported[target]
                acc[0] += actual_usd
                acc[1] += 1
        elif estimate is None and self.max_cost_usd is not None:
            self.unpriceable.add(target)

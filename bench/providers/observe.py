"""What an adapter saw while making one request, beyond its result: for honest labels in the records.

- `emulated`: an answer carried the EMULATOR_HEADER. Every protocol emulator of
  `bench emulate` sets it on every response; the real providers never do. This is the
  server saying what it is, unlike a loopback base_url (a self-hosted real model can
  listen on 127.0.0.1 too). Emulators draw with the local generator, so their images
  are synthetic.
- `poll_interval_s`: the longest sleep between two polls of an async job. Latency
  measured by polling is late by up to this much (it is NaN when nothing was polled).

The runner opens one Observation per attempt with `start()` (a context variable, so
thousands of concurrent requests each see their own); the HTTP helpers record into
the current one, and record rows read it back. Outside a run (tests driving an adapter
directly) there is no current observation and nothing is recorded.
"""

from __future__ import annotations

import contextvars
import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

EMULATOR_HEADER = "x-t2i-bench-emulator"
FIRST_POLL_S = 0.1  # polls start this soon and double up to the configured poll_interval_s


@dataclass
class Observation:
    emulated: bool = False
    poll_interval_s: float = math.nan
    # perf_counter() when the attempt got its lane slot, and when its first HTTP request left
    # (it had its connection; bench.providers.transport). NaN: no HTTP (local provider).
    slot_at: float = math.nan
    left_at: float = math.nan

    @property
    def client_wait_s(self) -> float:
        """Time between the lane slot and the request leaving: waiting inside our own client."""
        return self.left_at - self.slot_at  # NaN when either is unknown


_current: contextvars.ContextVar[Observation | None] = contextvars.ContextVar(
    "bench_request_observation", default=None
)


def start(slot_at: float = math.nan) -> Observation:
    """A fresh observation for the attempt about to be made in this task."""
    observation = Observation(slot_at=slot_at)
    _current.set(observation)
    return observation


def current() -> Observation | None:
    return _current.get()


def note_headers(headers: Mapping[str, str]) -> None:
    observation = _current.get()
    if observation is not None and headers.get(EMULATOR_HEADER):
        observation.emulated = True


def note_poll(interval_s: float) -> None:
    observation = _current.get()
    if observation is not None and not interval_s <= observation.poll_interval_s:  # NaN-safe max
        observation.poll_interval_s = interval_s


def poll_delays(max_interval_s: float, first_s: float = FIRST_POLL_S) -> Iterator[float]:
    """0.1, 0.2, 0.4, ... capped at max_interval_s: a job that finishes in 0.6 s is seen within
    0.2 s of it rather than at the next whole poll_interval_s (which quantised fal's latency to 0.5 s)."""
    delay = min(first_s, max_interval_s)
    while True:
        yield delay
        delay = min(delay * 2.0, max_interval_s)


def note_left() -> None:
    """A request is leaving (it has its connection): the first one of an attempt marks when it left."""
    observation = _current.get()
    if observation is not None and math.isnan(observation.left_at):
        observation.left_at = time.perf_counter()

"""How late polling sees a finished job: fal emulator, inference uniform in 0.5-0.75 s, poll_interval_s=0.5.

Prints, measured in the same run, the overshoot (end-to-end latency minus the emulator's inference time,
so HTTP, image rendering and download included) for polls that back off from 0.1 s doubling to
poll_interval_s (what the adapters do) and for a fixed 0.5 s interval (what they did), and the ratio of
the medians (goal: < 1).

Run: PYTHONPATH=$PWD .venv/bin/python tests/benchmarks/bench_poll_backoff.py [--requests 12]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.catalog.mapping import map_request
from bench.emulators import fal
from bench.providers import observe
from bench.providers.base import ProviderSettings
from bench.providers.registry import create_provider
from bench.request import ImageRequest

MODEL = "fal-ai/flux/schnell"


def overshoots(first_s: float, n: int) -> list[float]:
    backoff = observe.poll_delays

    def delays(max_interval_s: float, _first: float = first_s) -> Iterator[float]:
        return backoff(max_interval_s, _first)

    observe.poll_delays = delays  # poll_until looks it up at call time
    out: list[float] = []

    async def go(url: str) -> None:
        settings = ProviderSettings(name="fal", base_url=url, api_key_env=KEY_ENV, poll_interval_s=0.5)
        provider = create_provider("fal", settings)
        spec = provider.model_spec(MODEL)
        try:
            for i in range(n):
                req = ImageRequest(prompt=f"a red circle {i}", seed=i, width=256, height=256, steps=4)
                t0 = time.perf_counter()
                result = await provider.generate(spec, map_request(spec, req).payload, req)
                out.append(time.perf_counter() - t0 - result.timings.inference_s)
        finally:
            await provider.aclose()

    try:
        with emulator(fal.create_app(knobs(inference_s=(0.5, 0.75)))) as (url, _):
            asyncio.run(go(url))
    finally:
        observe.poll_delays = backoff
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=12)
    n = parser.parse_args().requests
    os.environ[KEY_ENV] = KEY
    medians = {}
    for name, first in (("backoff 0.1 s doubling", observe.FIRST_POLL_S), ("fixed 0.5 s", 0.5)):
        over = overshoots(first, n)
        medians[name] = statistics.median(over)
        print(f"{name:>22}: overshoot median {medians[name]:.3f} s, max {max(over):.3f} s (n={n})")
    print(
        f"ratio of medians (backoff / fixed): {medians['backoff 0.1 s doubling'] / medians['fixed 0.5 s']:.2f}"
    )


if __name__ == "__main__":
    main()

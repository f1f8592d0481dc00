"""Polling starts at 0.1 s and doubles to poll_interval_s; the request records the interval it was
polled at (its latency's quantisation) and that an emulator answered it."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.catalog.mapping import map_request
from bench.emulators import fal
from bench.providers import observe
from bench.providers.base import ProviderSettings
from bench.providers.registry import create_provider
from bench.request import ImageRequest


def test_poll_delays_double_from_a_tenth_of_a_second_to_the_interval() -> None:
    assert list(itertools.islice(observe.poll_delays(0.5), 6)) == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
    assert list(itertools.islice(observe.poll_delays(0.05), 3)) == [0.05, 0.05, 0.05]
    assert list(itertools.islice(observe.poll_delays(2.0), 6)) == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0]


def test_nothing_is_recorded_outside_an_observed_request() -> None:
    observe.note_poll(1.0)  # no current observation: a no-op, not an error
    seen = observe.start()
    observe.note_poll(0.1)
    observe.note_poll(0.4)
    observe.note_poll(0.2)
    observe.note_headers({"content-type": "image/png"})
    assert seen.poll_interval_s == 0.4 and not seen.emulated
    observe.note_headers({observe.EMULATOR_HEADER: "fal"})
    assert seen.emulated


def test_fal_polls_with_backoff_and_records_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    app = fal.create_app(knobs(inference_s=(0.35, 0.35)))
    request = ImageRequest(prompt="a red circle", seed=1, width=256, height=256, steps=4)

    async def go() -> observe.Observation:
        provider = create_provider(
            "fal", ProviderSettings(name="fal", base_url=url, api_key_env=KEY_ENV, poll_interval_s=0.5)
        )
        try:
            seen = observe.start()
            spec = provider.model_spec("fal-ai/flux/schnell")
            await provider.generate(spec, map_request(spec, request).payload, request)
            return seen
        finally:
            await provider.aclose()

    with emulator(app) as (url, emu):
        seen = asyncio.run(go())
    statuses = sum(1 for c in emu.calls if c.endswith("/status"))
    assert seen.emulated
    # k sleeps of 0.1, 0.2, 0.4, ... before the last status call: the longest is 0.1 * 2^(k-1),
    # below the 0.5 s a fixed interval would have quantised the latency to.
    sleeps = statuses - 1
    assert sleeps >= 1 and not math.isnan(seen.poll_interval_s)
    assert seen.poll_interval_s == pytest.approx(min(0.1 * 2 ** (sleeps - 1), 0.5))

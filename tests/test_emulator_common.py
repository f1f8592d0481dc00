"""Emulator plumbing: knobs, fault scheduling, serving on a free loopback port, `bench emulate` parsing."""

from __future__ import annotations

import math

import httpx
import pytest
import yaml

from bench.catalog.retired import RetiredModelError
from bench.emulators.cli import EMULATORS, build_app, parser
from bench.emulators.common import EmulatorState, Knobs, fit_size, size_from_payload
from bench.emulators.openai_compat import create_app
from bench.emulators.replicate import prefer_wait_s
from bench.emulators.serve import running
from bench.prices import PriceEntry, PriceTable
from bench.providers.base import ProviderSettings
from bench.providers.registry import create_provider
from bench.request import ImageRequest


def test_knobs_reject_unknown_fault_and_bad_ranges() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Knobs(fault="explode")
    with pytest.raises(ValueError, match="inference_s"):
        Knobs(inference_s=(2.0, 1.0))
    with pytest.raises(ValueError, match="fault_rate"):
        Knobs(fault_rate=1.5)


def test_fault_first_then_clean_and_refuse_word() -> None:
    emu = EmulatorState(Knobs(fault="rate_limit", fault_first=2))
    faults = [emu.new_job("a cat", width=64, height=64).fault for _ in range(4)]
    assert faults == ["rate_limit", "rate_limit", None, None]
    assert emu.new_job("please REFUSE", width=64, height=64).refused


def test_fault_rate_is_a_share() -> None:
    emu = EmulatorState(Knobs(fault="server_error", fault_rate=0.5, rng_seed=1))
    hits = sum(emu.new_job("x", width=8, height=8).fault is not None for _ in range(400))
    assert 150 < hits < 250


def test_sizes() -> None:
    assert fit_size(1024, 576, 64) == (64, 36)
    assert fit_size(32, 32, 64) == (32, 32)
    assert size_from_payload({"image_size": "landscape_16_9"}) == (1024, 576)
    assert size_from_payload({"image_size": {"width": 300, "height": 200}}) == (300, 200)
    assert size_from_payload({"size": "1792x1024"}) == (1792, 1024)
    assert size_from_payload({"aspect_ratio": "16:9"}) == (1024, 576)
    assert size_from_payload({}) == (1024, 1024)


def test_prefer_header() -> None:
    assert prefer_wait_s("wait") == 60 and prefer_wait_s("wait=5") == 5 and prefer_wait_s("wait=500") == 60
    assert prefer_wait_s(None) == 0


def test_running_serves_on_loopback_and_stops() -> None:
    app = create_app(Knobs(max_side_px=32), profile="aimlapi")
    with running(app) as url:
        assert url.startswith("http://127.0.0.1:")
        answer = httpx.post(
            f"{url}/v1/images/generations",
            json={"model": "flux/schnell", "prompt": "a red circle"},
            headers={"Authorization": "Bearer k"},
        )
        assert answer.status_code == 200
        image_url = answer.json()["data"][0]["url"]
        assert httpx.get(image_url).headers["content-type"] == "image/png"
        assert httpx.post(f"{url}/v1/images/generations", json={}).status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(image_url, timeout=1)


@pytest.mark.parametrize("provider", sorted(EMULATORS))
def test_cli_builds_every_emulator(provider: str) -> None:
    args = parser().parse_args(
        [provider, "--latency", "0.1,0.2", "--fault", "rate_limit", "--fail-first", "1"]
    )
    app = build_app(args)
    assert app.state.emu.knobs.inference_s == (0.1, 0.2)
    assert app.state.emu.knobs.fault_first == 1


def test_cli_rejects_bad_latency() -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["fal", "--latency", "2,1"])


def test_gpt_image_estimate_from_documented_tokens() -> None:
    with open("configs/prices/default.yaml") as fh:
        table = PriceTable.from_prices_config(yaml.safe_load(fh))
    provider = create_provider(
        "openai_compat", ProviderSettings(name="openai", options={"profile": "openai", "price_table": table})
    )
    spec = provider.model_spec("gpt-image-2")
    low = provider.estimate_cost_usd(spec, ImageRequest(prompt="a" * 40, extra={"quality": "low"}))
    assert low is not None and math.isclose(low, (10 * 5.0 + 272 * 30.0) / 1e6)
    # A quality above high (gpt-image-2.6's xhigh, max) has no published token count: unknown.
    top = provider.model_spec("gpt-image-2.6-sunburst")
    assert "max" in top.params["quality"].options
    assert provider.estimate_cost_usd(top, ImageRequest(prompt="a", extra={"quality": "max"})) is None
    # Retired at OpenAI: asking its own host for dall-e-3 is one line naming the date and the successor.
    with pytest.raises(
        RetiredModelError,
        match=r"^openai:dall-e-3: retired on 2026-05-12, use openai:gpt-image-2\.5-sunburst",
    ):
        provider.model_spec("dall-e-3")


def test_slow_fault_lengthens_inference_for_every_protocol() -> None:
    emu = EmulatorState(Knobs(fault="slow", slow_s=2.5, inference_s=(0.1, 0.1)))
    job = emu.new_job("x", width=8, height=8)
    assert job.inference_s == pytest.approx(2.6)
    assert job.phase() in ("queued", "running")


def test_token_price_of_a_bare_total_is_unknown_not_free() -> None:
    """A usage block with only a token total (no per-kind counts) and no `total` rate is NaN."""
    entry = PriceEntry(
        "aimlapi",
        "openai/gpt-image-1",
        "token",
        0.0,
        "2026-11-23",
        "https://developers.openai.com/api/docs/models/gpt-image-1",
        token_usd_per_million={"input_text": 5.0, "input_image": 10.0, "output_image": 40.0},
    )
    bare = entry.cost_usd(n_images=1, megapixels=None, seconds=None, usage={"total_tokens": 1597})
    assert math.isnan(bare)
    # The per-kind block of AIML's gpt-image-1 doc example: 29 text tokens in, 1568 image tokens out.
    usage = {
        "input_tokens": 29,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 29},
        "output_tokens": 1568,
        "total_tokens": 1597,
    }
    cost = entry.cost_usd(n_images=1, megapixels=None, seconds=None, usage=usage)
    assert math.isclose(cost, (29 * 5.0 + 1568 * 40.0) / 1e6)


def test_a_gray_model_draws_without_colour_and_requests_are_counted_per_model() -> None:
    """`gray_models` (bench emulate --gray-model): a clearly worse model for studies; counts per model."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    app = create_app(Knobs(max_side_px=64, gray_models=("flux/schnell",)), profile="aimlapi")
    assert build_app(
        parser().parse_args(["aimlapi", "--gray-model", "flux/schnell"])
    ).state.emu.knobs.gray_models == ("flux/schnell",)
    saturation = {}
    with running(app) as url, httpx.Client(base_url=url, timeout=10) as c:
        for model in ("flux/schnell", "flux/dev", "flux/dev"):
            r = c.post("/v1/images/generations", headers={"authorization": "Bearer k"},
                       json={"model": model, "prompt": "a red apple on a blue background", "seed": 3,
                             "response_format": "b64_json"})  # fmt: skip
            assert r.status_code == 200, r.text
            data = base64.b64decode(r.json()["data"][0]["b64_json"])
            with Image.open(io.BytesIO(data)) as im:
                saturation[model] = float(np.asarray(im.convert("RGB").convert("HSV"))[..., 1].mean())
    assert saturation["flux/schnell"] < 1.0 < saturation["flux/dev"]
    emu: EmulatorState = app.state.emu
    assert emu.submissions == 3 and emu.submissions_by_model == {"flux/schnell": 1, "flux/dev": 2}

"""The local provider and its renderer: prompt parsing, determinism, and that each parameter does what it says."""

from __future__ import annotations

import asyncio
import io
import math
import time

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from bench.catalog.mapping import map_request
from bench.errors import InvalidRequestError
from bench.providers.base import GenerationResult, ProviderSettings
from bench.providers.local import LocalProvider
from bench.providers.local_render import render, render_png, render_with_stats
from bench.providers.local_scene import (
    COLORS,
    ObjectGroup,
    Surface,
    drift_probability,
    interpret,
    parse_prompt,
)
from bench.request import ImageRequest

CLEAN_STEPS = 40  # enough refinement passes that no starting noise is left


def pixels(
    prompt: str,
    *,
    variant: str = "fast",
    seed: int = 3,
    steps: int = CLEAN_STEPS,
    guidance: float = 7.0,
    negative_prompt: str | None = None,
) -> np.ndarray:
    """A 128x128 render as int16, so differences and distances do not wrap around."""
    image = render(
        prompt,
        width=128,
        height=128,
        seed=seed,
        steps=steps,
        guidance=guidance,
        variant=variant,
        negative_prompt=negative_prompt,
    )
    return np.asarray(image, dtype=np.int16)


def near(image: np.ndarray, color: str, tolerance: int = 40) -> np.ndarray:
    """Mask of pixels within `tolerance` of a palette colour on every channel."""
    mask: np.ndarray = np.all(np.abs(image - np.array(COLORS[color])) <= tolerance, axis=2)
    return mask


def blobs(mask: np.ndarray, min_pixels: int = 20) -> int:
    labels, _ = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    return int(np.sum(sizes >= min_pixels))


# ---- parsing ---------------------------------------------------------------------------


def test_parse_count_colour_object_and_surface() -> None:
    scene = parse_prompt("Two red apples on a blue table")
    assert scene.groups == (ObjectGroup(2, "apple", "red"),)
    assert scene.surface == Surface("table", "blue")


def test_parse_several_groups_digits_plurals_and_synonyms() -> None:
    assert parse_prompt("two red apples and a yellow banana").groups == (
        ObjectGroup(2, "apple", "red"),
        ObjectGroup(1, "banana", "yellow"),
    )
    assert parse_prompt("3 grey boxes, some cats, one fish").groups == (
        ObjectGroup(3, "cube", "gray"),
        ObjectGroup(2, "cat", None),  # a plural without a count means more than one
        ObjectGroup(1, "fish", None),
    )


@pytest.mark.parametrize(
    ("prompt", "surface"),
    [
        ("a dog in a green field", Surface("field", "green")),
        ("a cup, purple background", Surface("background", "purple")),
        ("a cup on a table", Surface("table", None)),
    ],
)
def test_parse_surface_phrases(prompt: str, surface: Surface) -> None:
    assert parse_prompt(prompt).surface == surface


def test_unrecognised_prompt_still_renders_something_deterministic() -> None:
    assert parse_prompt("a photograph of quantum entanglement").groups == ()
    first = render_png("quantum entanglement", 96, 96, seed=1, steps=CLEAN_STEPS)
    assert first == render_png("quantum entanglement", 96, 96, seed=1, steps=CLEAN_STEPS)
    assert first != render_png("the sound of silence", 96, 96, seed=1, steps=CLEAN_STEPS)
    assert np.asarray(Image.open(io.BytesIO(first))).std() > 10  # shapes were drawn, not a flat page


# ---- rendering -------------------------------------------------------------------------


def test_same_inputs_same_bytes_and_seed_changes_them() -> None:
    png = render_png("two red apples on a blue table", 96, 80, seed=7, steps=4, guidance=2.0)
    assert png == render_png("two red apples on a blue table", 96, 80, seed=7, steps=4, guidance=2.0)
    assert png != render_png("two red apples on a blue table", 96, 80, seed=8, steps=4, guidance=2.0)
    assert Image.open(io.BytesIO(png)).size == (96, 80)
    assert Image.open(io.BytesIO(render_png("a cup", 8, 8, seed=-1))).size == (8, 8)  # emulator edge cases


@pytest.mark.parametrize("variant", ["fast", "quality"])
def test_named_colour_is_drawn_at_high_guidance(variant: str) -> None:
    image = pixels("a red ball", variant=variant)
    assert near(image, "red").mean() > 0.05


def test_nocolor_variant_draws_no_colour() -> None:
    image = pixels("a red ball", variant="nocolor", steps=4)  # noise included
    assert near(image, "red").sum() == 0
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_are_drawn_as_separate_objects(seed: int) -> None:
    assert blobs(near(pixels("three blue balls", seed=seed), "blue")) == 3
    assert blobs(near(pixels("five blue balls", seed=seed), "blue")) == 5


def high_frequency_energy(image: np.ndarray) -> float:
    gray = image.astype(np.float64).mean(axis=2)
    laplacian = 4 * gray[1:-1, 1:-1] - gray[:-2, 1:-1] - gray[2:, 1:-1] - gray[1:-1, :-2] - gray[1:-1, 2:]
    return float(np.mean(laplacian**2))


@pytest.mark.parametrize("variant", ["fast", "quality"])
def test_more_steps_leave_less_noise(variant: str) -> None:
    clean = pixels("a cat", variant=variant)
    # Measured on the difference from the clean drawing, so the cat's own edges do not count as noise.
    noise = [pixels("a cat", variant=variant, steps=s) - clean for s in (1, 4, 16)]
    energies = [high_frequency_energy(n) for n in noise]
    assert energies[0] > 2 * energies[1] > 4 * energies[2]
    assert np.sqrt(np.mean(noise[1] ** 2.0)) > 10  # 4 steps leave noise that can be seen (8-bit levels)


def test_negative_prompt_removes_objects_and_colours() -> None:
    prompt = "a red apple and a blue ball"
    assert near(pixels(prompt), "blue").sum() > 100
    assert near(pixels(prompt, negative_prompt="ball"), "blue").sum() == 0
    recoloured = pixels(prompt, negative_prompt="blurry, red")
    assert near(recoloured, "red").sum() == 0
    assert blobs(~near(recoloured, "blue") & (recoloured.std(axis=2) > 30)) >= 1  # the apple is still there


def test_low_guidance_drifts_and_drift_only_shrinks_as_guidance_rises() -> None:
    prompt = "two red apples and three blue balls and a yellow banana"
    exact = parse_prompt(prompt)
    assert [drift_probability(g) for g in (0, 1, 2, 3, 7)] == sorted(
        (drift_probability(g) for g in (0, 1, 2, 3, 7)), reverse=True
    )
    assert drift_probability(3.0) == 0.0
    mistakes = {}
    for guidance in (0.0, 1.0, 2.0, 7.0):
        scenes = [interpret(prompt, seed=s, guidance=guidance) for s in range(30)]
        mistakes[guidance] = {
            (s, i)
            for s, scene in enumerate(scenes)
            for i, group in enumerate(exact.groups)
            if ObjectGroup(group.count, group.noun, group.resolved_color) not in scene.groups
        }
    assert mistakes[7.0] == set()
    assert mistakes[2.0] <= mistakes[1.0] <= mistakes[0.0]
    assert len(mistakes[0.0]) > len(mistakes[2.0]) > 0


def test_work_grows_with_steps_and_pixels() -> None:
    def stats(steps: int, size: int, variant: str = "fast") -> tuple[int, int]:
        _, s = render_with_stats(
            "a cat", width=size, height=size, seed=0, steps=steps, guidance=7.0, variant=variant
        )
        return s.passes, s.pixel_work

    passes, work = stats(4, 128)
    assert passes == 4
    assert stats(16, 128) == (16, 4 * work)
    assert stats(4, 256) == (4, 4 * work)
    assert stats(4, 128, "quality")[1] > work  # a wider blur per pass
    assert stats(4, 128, "nocolor")[1] < work  # one channel instead of three


# ---- provider --------------------------------------------------------------------------


def generate(provider: LocalProvider, model: str, request: ImageRequest) -> GenerationResult:
    spec = provider.model_spec(model)

    async def go() -> GenerationResult:
        try:
            return await provider.generate(spec, map_request(spec, request).payload, request)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def test_models_are_synthetic_and_take_the_normalized_parameters() -> None:
    provider = LocalProvider(ProviderSettings(name="local"))
    provider.check_ready()  # no key needed
    specs = {s.model: s for s in provider.models()}
    assert set(specs) == {"shapes-fast", "shapes-quality", "shapes-nocolor"}
    assert all(s.provider == "local" and s.synthetic for s in specs.values())
    assert specs["shapes-quality"].params["num_inference_steps"].default == 20
    assert specs["shapes-fast"].params["num_inference_steps"].default == 8
    assert set(specs["shapes-fast"].normalized_parameters()) == {
        "negative_prompt",
        "steps",
        "guidance",
        "seed",
        "num_images",
        "size",
    }


def test_generate_returns_png_of_requested_size_with_timings() -> None:
    request = ImageRequest(
        "two red apples", steps=4, guidance=7.0, seed=11, width=96, height=64, num_images=2
    )
    result = generate(LocalProvider(ProviderSettings(name="local", concurrency=2)), "shapes-fast", request)
    assert result.seed_used == 11
    assert result.metadata == {"variant": "fast", "synthetic": True}
    assert len(result.images) == 2 and result.images[0].data != result.images[1].data  # seeds 11 and 12
    assert result.images[1].data == render_png("two red apples", 96, 64, seed=12, steps=4, guidance=7.0)
    for image in result.images:
        assert image.mime == "image/png"
        assert Image.open(io.BytesIO(image.data)).size == (96, 64)
    assert result.timings.queue_s >= 0 and result.timings.inference_s > 0 and result.timings.download_s == 0
    assert math.isnan(result.cost_usd)


def test_generate_without_seed_reports_the_seed_it_used() -> None:
    provider = LocalProvider(ProviderSettings(name="local"))
    result = generate(provider, "shapes-nocolor", ImageRequest("a star", steps=1, width=64, height=64))
    assert result.seed_used is not None
    assert result.images[0].data == render_png(
        "a star", 64, 64, seed=result.seed_used, steps=1, guidance=5.0, variant="nocolor"
    )


def test_extra_latency_holds_the_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # the worker's sleep, recorded instead of waited
    request = ImageRequest("a star", steps=1, width=64, height=64, extra={"extra_latency_s": 0.25})
    generate(LocalProvider(ProviderSettings(name="local")), "shapes-fast", request)
    assert slept == [0.25]


def test_invalid_payload_is_an_invalid_request() -> None:
    provider = LocalProvider(ProviderSettings(name="local"))
    spec = provider.model_spec("shapes-fast")
    with pytest.raises(InvalidRequestError, match="num_inference_steps"):
        asyncio.run(
            provider.generate(spec, {"prompt": "a cat", "num_inference_steps": 0}, ImageRequest("a cat"))
        )

"""Sweep expansion: the product, left-out parameters, de-duplication, validation before sending."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bench.catalog.spec import ModelSpec, ParamSpec
from bench.config import Size, SweepAxes, Target
from bench.errors import ConfigError
from bench.prompts import PromptItem
from bench.providers.base import GenerationResult, Provider, ProviderSettings
from bench.request import ImageRequest
from bench.sweep import plan_sweep

FULL = ModelSpec(
    provider="static",
    model="full",
    params={
        "prompt": ParamSpec("prompt", "string", required=True),
        "num_inference_steps": ParamSpec("num_inference_steps", "integer", minimum=1, maximum=50),
        "guidance_scale": ParamSpec("guidance_scale", "number", minimum=0, maximum=20),
        "seed": ParamSpec("seed", "integer"),
        "image_size": ParamSpec("image_size", "string", options=("square", "square_hd", "landscape_16_9")),
    },
    steps_param="num_inference_steps",
    guidance_param="guidance_scale",
    seed_param="seed",
    size_mode="image_size_preset",
    size_param="image_size",
)
# Like many hosted models: no steps, no guidance, aspect ratios only.
BARE = ModelSpec(
    provider="static",
    model="bare",
    params={
        "prompt": ParamSpec("prompt", "string", required=True),
        "seed": ParamSpec("seed", "integer"),
        "aspect_ratio": ParamSpec("aspect_ratio", "string", options=("1:1", "16:9")),
    },
    seed_param="seed",
    size_mode="aspect_ratio",
    size_param="aspect_ratio",
)


class StaticProvider(Provider):
    """A provider whose catalog is fixed; the sweep never calls generate()."""

    name = "static"
    needs_api_key = False

    def models(self) -> Sequence[ModelSpec]:
        return [FULL, BARE]

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        raise AssertionError("planning a sweep must not send anything")


PROMPTS = [PromptItem(id=f"p{i}", text=f"prompt {i}", suite="t") for i in range(3)]


def plan(targets: list[Target], axes: SweepAxes) -> Any:
    return plan_sweep(targets, {"static": StaticProvider(ProviderSettings(name="static"))}, PROMPTS, axes)


AXES = SweepAxes(
    steps=(4, 8),
    guidance=(3.0, 7.0),
    seeds=(0, 1, 2),
    sizes=(Size(512, 512), Size(1024, 1024)),
    repeats=2,
)


def test_full_product_for_a_model_that_takes_everything() -> None:
    p = plan([Target("static:full", "static", "full")], AXES)
    jobs = list(p.jobs())
    assert p.total == len(jobs) == 3 * 2 * 2 * 3 * 2 * 2
    assert len({j.key for j in jobs}) == len(jobs)
    assert {j.payload["image_size"] for j in jobs} == {"square", "square_hd"}
    assert all(not j.left_out for j in jobs)


def test_values_a_model_lacks_are_left_out_with_a_reason_and_never_sent() -> None:
    p = plan([Target("static:bare", "static", "bare")], AXES)
    jobs = list(p.jobs())
    # steps and guidance collapse; seeds stay; both square sizes map to "1:1" once.
    assert p.total == len(jobs) == 3 * 3 * 2
    for job in jobs:
        assert "num_inference_steps" not in job.payload and "guidance_scale" not in job.payload
        assert job.request.steps is None and job.request.guidance is None
        assert "no steps parameter" in job.left_out["steps"]
        assert "no guidance parameter" in job.left_out["guidance"]
        assert job.payload["aspect_ratio"] == "1:1"


def test_size_a_model_cannot_express_is_left_out_not_approximated() -> None:
    axes = SweepAxes(sizes=(Size(width=640, height=480),))
    job = next(plan([Target("static:full", "static", "full")], axes).jobs())
    assert "image_size" not in job.payload
    assert "640x480" in job.left_out["size"]


def test_mixed_targets_interleave_prompt_major() -> None:
    p = plan([Target("static:full", "static", "full"), Target("static:bare", "static", "bare")], SweepAxes())
    order = [(j.prompt.id, j.target.id) for j in p.jobs()]
    assert order[:2] == [("p0", "static:full"), ("p0", "static:bare")]


def test_invalid_value_is_a_config_error_before_anything_is_sent() -> None:
    with pytest.raises(ConfigError, match="num_inference_steps=99"):
        plan([Target("static:full", "static", "full")], SweepAxes(steps=(99,)))
    with pytest.raises(ConfigError, match="no such parameter"):
        plan([Target("static:full", "static", "full", params={"colour": "red"})], SweepAxes())


def test_fixed_target_params_reach_the_payload_and_the_key() -> None:
    base = next(plan([Target("static:full", "static", "full")], SweepAxes()).jobs())
    fixed = next(
        plan([Target("x", "static", "full", params={"image_size": "landscape_16_9"})], SweepAxes()).jobs()
    )
    assert fixed.payload["image_size"] == "landscape_16_9"
    assert fixed.key != base.key
    assert json.loads(json.dumps(dict(fixed.payload)))["prompt"] == "prompt 0"

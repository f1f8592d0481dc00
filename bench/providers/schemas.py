"""Parameter schemas that several providers share (fal-style flux inputs, OpenAI image inputs).

AIML API and Eachlabs resell fal models with fal's input names, and AIML API and
APIpie pass OpenAI's image parameters through, so these are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.catalog.mapping import IMAGE_SIZE_PRESETS
from bench.catalog.spec import ModelSpec, ParamSpec

IMAGE_SIZE_OPTIONS: tuple[str, ...] = tuple(IMAGE_SIZE_PRESETS)
DALLE3_SIZES: tuple[str, ...] = ("1024x1024", "1792x1024", "1024x1792")
GPT_IMAGE_SIZES: tuple[str, ...] = ("1024x1024", "1536x1024", "1024x1536", "auto")


def params(*specs: ParamSpec) -> dict[str, ParamSpec]:
    return {p.name: p for p in specs}


def fal_flux_params(
    *,
    steps: tuple[int, int, int] | None,
    guidance: tuple[float, float, float] | None,
    max_images: int = 4,
    output_formats: tuple[str, ...] = ("jpeg", "png"),
    extra: tuple[ParamSpec, ...] = (),
) -> dict[str, ParamSpec]:
    """fal's flux input schema; steps/guidance are (min, max, default) or None when not taken."""
    specs = [
        ParamSpec("prompt", "string", required=True),
        ParamSpec("image_size", "string", default="landscape_4_3", options=IMAGE_SIZE_OPTIONS),
        ParamSpec("seed", "integer", minimum=0, description="same seed and prompt give the same image"),
        ParamSpec("num_images", "integer", default=1, minimum=1, maximum=max_images),
        ParamSpec("enable_safety_checker", "boolean", default=True),
        ParamSpec("sync_mode", "boolean", default=False, description="true: images come back as data URIs"),
        ParamSpec("output_format", "string", default=output_formats[0], options=output_formats),
    ]
    if steps is not None:
        specs.append(
            ParamSpec("num_inference_steps", "integer", default=steps[2], minimum=steps[0], maximum=steps[1])
        )
    if guidance is not None:
        specs.append(
            ParamSpec(
                "guidance_scale", "number", default=guidance[2], minimum=guidance[0], maximum=guidance[1]
            )
        )
    return params(*specs, *extra)


def fal_flux_spec(
    provider: str, model: str, schema: Mapping[str, ParamSpec], title: str, **kw: Any
) -> ModelSpec:
    """A ModelSpec whose parameters use fal's names."""
    return ModelSpec(
        provider=provider,
        model=model,
        params=schema,
        steps_param="num_inference_steps" if "num_inference_steps" in schema else None,
        guidance_param="guidance_scale" if "guidance_scale" in schema else None,
        seed_param="seed",
        count_param="num_images",
        size_mode="image_size_preset",
        size_param="image_size",
        title=title,
        **kw,
    )


SAFETY_TOLERANCE = ParamSpec(
    "safety_tolerance",
    "string",
    default="2",
    options=("1", "2", "3", "4", "5", "6"),
    description="1 strictest",
)


def dalle3_spec(
    provider: str, *, with_response_format: bool = True, fixed: Mapping[str, Any] | None = None
) -> ModelSpec:
    specs = [
        ParamSpec("prompt", "string", required=True, description="up to 4000 characters"),
        ParamSpec("n", "integer", default=1, minimum=1, maximum=1, description="dall-e-3 makes one image"),
        ParamSpec("size", "string", default="1024x1024", options=DALLE3_SIZES),
        ParamSpec("quality", "string", default="standard", options=("standard", "hd")),
        ParamSpec("style", "string", default="vivid", options=("vivid", "natural")),
        ParamSpec("user", "string"),
    ]
    if with_response_format:
        specs.append(ParamSpec("response_format", "string", default="url", options=("url", "b64_json")))
    return ModelSpec(
        provider=provider,
        model="dall-e-3",
        params=params(*specs),
        size_mode="size_string",
        size_param="size",
        fixed=dict(fixed or {}),
        title="DALL-E 3",
    )


def gpt_image_1_spec(provider: str) -> ModelSpec:
    return ModelSpec(
        provider=provider,
        model="gpt-image-1",
        params=params(
            ParamSpec("prompt", "string", required=True),
            ParamSpec("n", "integer", default=1, minimum=1, maximum=10),
            ParamSpec("size", "string", default="auto", options=GPT_IMAGE_SIZES),
            ParamSpec("quality", "string", default="auto", options=("low", "medium", "high", "auto")),
            ParamSpec("background", "string", default="auto", options=("transparent", "opaque", "auto")),
            ParamSpec("output_format", "string", default="png", options=("png", "jpeg", "webp")),
            ParamSpec("output_compression", "integer", minimum=0, maximum=100),
            ParamSpec("moderation", "string", default="auto", options=("low", "auto")),
            ParamSpec("user", "string"),
        ),
        count_param="n",
        size_mode="size_string",
        size_param="size",
        title="GPT Image 1",
        description="always answers base64; its usage block carries the token counts it is priced by",
    )

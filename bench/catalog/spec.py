"""Model schemas as data: which parameters a model accepts, under which names.

A ModelSpec tells the mapping (bench.catalog.mapping) where each normalized
parameter goes: `steps` may be `num_inference_steps` on one model and `steps_num`
on another, and size may be a preset, an aspect ratio, a "WxH" string, width and
height, megapixels or a resolution tier.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]

# How a model takes its output size.
SizeMode = Literal[
    "width_height",  # two integer parameters (names in size_param / size_param_2)
    "size_string",  # one "WxH" string, e.g. OpenAI's size="1024x1024"
    "image_size_preset",  # fal-style presets: square_hd, landscape_16_9, ...
    "aspect_ratio",  # "16:9"
    "megapixels",  # "1", "0.25"
    "resolution",  # "1K", "2K", "4K"
    "none",  # the model picks its own size
]


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: ParamType
    required: bool = False
    default: Any = None
    options: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""

    def accepts_text(self) -> str:
        """How a user should read what this parameter accepts, for error messages."""
        if self.options is not None:
            return "one of " + ", ".join(str(o) for o in self.options)
        parts = [self.type]
        if self.minimum is not None:
            parts.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum:g}")
        return " ".join(parts)


@dataclass(frozen=True)
class ModelSpec:
    """One model of one provider, with the native names of the normalized parameters.

    A `*_param` of None means the model does not take that parameter; the sweep
    then leaves the value out for this model and records why.
    """

    provider: str
    model: str
    params: Mapping[str, ParamSpec]
    prompt_param: str = "prompt"
    negative_prompt_param: str | None = None
    steps_param: str | None = None
    guidance_param: str | None = None
    seed_param: str | None = None
    count_param: str | None = None
    size_mode: SizeMode = "none"
    size_param: str | None = None
    size_param_2: str | None = None  # height, when size_mode == "width_height"
    fixed: Mapping[str, Any] = field(default_factory=dict)  # always sent (e.g. output_format)
    title: str = ""
    description: str = ""
    synthetic: bool = False  # images are not photographs of a real model (the local provider)

    @property
    def target_id(self) -> str:
        return f"{self.provider}:{self.model}"

    def normalized_parameters(self) -> dict[str, str]:
        """normalized name -> native name, for the parameters this model takes (for `bench ls`)."""
        pairs = {
            "negative_prompt": self.negative_prompt_param,
            "steps": self.steps_param,
            "guidance": self.guidance_param,
            "seed": self.seed_param,
            "num_images": self.count_param,
        }
        out = {k: v for k, v in pairs.items() if v is not None}
        if self.size_mode != "none" and self.size_param is not None:
            native = self.size_param if self.size_param_2 is None else f"{self.size_param}+{self.size_param_2}"
            out["size"] = f"{native} ({self.size_mode})"
        return out

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
    "megapixels",  # "1", "0.25" (with aspect_ratio_param, the shape goes there)
    "resolution",  # "1K", "2K", "4K" (with aspect_ratio_param, the shape goes there)
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
    # False when the source listed only the first options (a catalog cut the list
    # short with "..."): the listed ones are valid, others may be too, so the
    # options are shown but not enforced.
    options_complete: bool = True
    # String limits (JSON Schema minLength/maxLength/pattern), checked before anything is sent.
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    def allows_option(self, value: Any) -> bool:
        """Whether `value` passes the options check (always true when there are no known options)."""
        return self.options is None or not self.options_complete or value in self.options

    def accepts_text(self) -> str:
        """How a user should read what this parameter accepts, for error messages."""
        if self.options is not None:
            listed = ", ".join(str(o) for o in self.options)
            if not self.options_complete:
                return f"{self.type}; known values include {listed}, … (the catalog's list is cut short)"
            return "one of " + listed
        parts: list[str] = [self.type]
        if self.min_length is not None:
            parts.append(f"of at least {self.min_length} characters")
        if self.max_length is not None:
            parts.append(f"of at most {self.max_length} characters")
        if self.pattern is not None:
            parts.append(f"matching {self.pattern}")
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
    # Sent unless the request sets the same parameter (a normalized value or an extra wins).
    fixed: Mapping[str, Any] = field(default_factory=dict)
    title: str = ""
    description: str = ""
    synthetic: bool = False  # images are not photographs of a real model (the local provider)
    # Added after the original fields so positional construction keeps working.
    # The model's aspect-ratio parameter when size_mode is another mode: with
    # megapixels/resolution it carries the shape while size_param carries the
    # magnitude; with any mode it takes requests given only as an aspect ratio.
    aspect_ratio_param: str | None = None
    # Sent together with a mapped width/height, e.g. {"aspect_ratio": "custom"}
    # on models that read width and height only in that case.
    size_custom: Mapping[str, Any] = field(default_factory=dict)
    version: str | None = None  # the provider's model version, where its API asks for one
    # Provenance (bench.catalog.sources): where this schema came from and which one it was.
    catalog_source: str = "shipped"  # shipped | fetched | user | generic
    schema_sha256: str | None = None
    fetched_at: str | None = None  # UTC ISO time a fetched schema was fetched
    # True when nobody published this schema: its parameters are a generic guess, not checked.
    unverified: bool = False
    # The size parameter also takes a {width, height} object (fal's image_size: a preset name or
    # an ImageSize); {"max_side_px": N} when the schema bounds the sides. None: presets only.
    size_object: Mapping[str, Any] | None = None

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
        if self.prompt_param != "prompt":  # say which field carries the text
            out = {"prompt": self.prompt_param, **out}
        if self.size_mode != "none" and self.size_param is not None:
            native = self.size_param
            if self.size_param_2 is not None:
                native += f"+{self.size_param_2}"
            out["size"] = f"{native} ({self.size_mode})"
            if self.aspect_ratio_param is not None and self.aspect_ratio_param != self.size_param:
                out["size"] += f", ratio via {self.aspect_ratio_param}"
        return out

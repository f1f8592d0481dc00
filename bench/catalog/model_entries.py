"""A catalog entry (the shape of bench/catalog/data/*.json) from a model's parameter list.

Used by tools/generate_eachlabs.py (the shipped Eachlabs catalog, from its seed) and by
bench.catalog.schema_import (schemas fetched from the providers), so both map alike.

How the normalized parameters are assigned (first name present wins):
- steps: num_inference_steps, steps, steps_num, num_steps, number_of_steps
- guidance: guidance_scale, guidance, text_guidance_scale, true_cfg_scale, cfg
- seed: seed, image_seed
- count: num_images, num_outputs, num_results, number_of_images, image_number,
  max_images (last: on Seedream 4.5 it means images *per* generation, while
  num_images there is the number of generations)
- negative prompt: negative_prompt

Size: every parameter that can carry a size is classified by its options, not its
name alone (GPT Image's `image_size` takes "1024x1024", fal's takes presets), and
the most precise one is used, in this order:
  1. width + height (two integer parameters); when the model also has an
     aspect_ratio with a "custom" option, width/height are only read with
     aspect_ratio="custom", so that goes into size_custom;
  2. a "WxH" / "W*H" string whose option list is complete;
  3. an image_size preset (IMAGE_SIZE_PRESETS);
  4. megapixels or a 1K/2K/4K resolution tier, together with an aspect_ratio
     parameter that carries the shape;
  5. an aspect ratio;
  6. a "WxH" string whose option list the seed cut short (cannot check that a
     size is offered, so an aspect ratio, when present, is preferred);
  7. megapixels or a resolution tier alone.
When an aspect_ratio parameter exists next to a more precise size parameter, it
is kept as aspect_ratio_param: requests given as a ratio only go there.

`fixed` holds only values a model requires and has a default for (a required
parameter other than the prompt with a default): they are sent unless the
request sets them. A required parameter without a default (an input image) is
left to the caller; map_request names it when it is missing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.catalog.mapping import IMAGE_SIZE_PRESETS, RESOLUTION_TIERS_PX
from bench.catalog.prompt_field import PromptFieldError, choose_prompt_field
from bench.catalog.spec import SizeMode

STEPS_NAMES = ("num_inference_steps", "steps", "steps_num", "num_steps", "number_of_steps")
GUIDANCE_NAMES = ("guidance_scale", "guidance", "text_guidance_scale", "true_cfg_scale", "cfg")
SEED_NAMES = ("seed", "image_seed")
COUNT_NAMES = ("num_images", "num_outputs", "num_results", "number_of_images", "image_number", "max_images")
NEGATIVE_NAMES = ("negative_prompt",)

_RATIO = re.compile(r"^\d+(\.\d+)?:\d+(\.\d+)?$")  # 16:9, and 2.4:1 too
_WXH = re.compile(r"^\d+[x*]\d+$")


class SeedFormatError(ValueError):
    """The seed does not read as the expected catalog; names the line."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"seed line {line_no}: {message}")


@dataclass
class Param:
    name: str
    type: str
    required: bool
    default: Any
    options: list[Any] | None
    options_complete: bool
    minimum: float | None
    maximum: float | None
    description: str
    # String limits (JSON Schema minLength/maxLength/pattern), written only when the source has them.
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "options": self.options,
            "options_complete": self.options_complete,
            "min": self.minimum,
            "max": self.maximum,
            "description": self.description,
        }
        for key, value in (
            ("min_length", self.min_length),
            ("max_length", self.max_length),
            ("pattern", self.pattern),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass
class Model:
    slug: str
    title: str
    line_no: int
    params: list[Param] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)


# --- assigning the normalized parameters --------------------------------------------------


def _first(model: Model, names: Sequence[str], types: Sequence[str]) -> str | None:
    for name in names:
        param = model.param(name)
        if param is not None:
            if param.type in types:
                return name
            model.notes.append(f"{name} has type {param.type}, not {'/'.join(types)}; not mapped")
    return None


@dataclass(frozen=True)
class _SizeChoice:
    rank: int  # higher is more precise: 7 width+height ... 1 megapixels/tier alone (module doc)
    mode: SizeMode
    param: str
    param_2: str | None = None


def _size_candidates(model: Model) -> tuple[list[_SizeChoice], Param | None]:
    """Every way this model can take a size, and its aspect-ratio parameter if any."""
    aspect: Param | None = None
    found: list[_SizeChoice] = []
    magnitude: list[tuple[SizeMode, Param]] = []
    for p in model.params:
        if p.type != "string" or not p.options:
            continue
        values = [str(o) for o in p.options]
        ratios = [v for v in values if _RATIO.match(v)]
        # An aspect-ratio parameter is one listing ratios; an option that is not one ("auto",
        # "custom", a value nobody foresaw) never disqualifies the parameter (issue 21, defect 3):
        # the mapping just never picks it.
        if len(ratios) >= 2 or (ratios and "ratio" in p.name.lower()):
            aspect = aspect or p
        elif all(v in IMAGE_SIZE_PRESETS or v == "auto" for v in values):
            found.append(_SizeChoice(5, "image_size_preset", p.name))
        elif any(_WXH.match(v) for v in values) and all(
            _WXH.match(v) or v in ("auto", "None") for v in values
        ):
            found.append(_SizeChoice(6 if p.options_complete else 2, "size_string", p.name))
        elif all(v in RESOLUTION_TIERS_PX for v in values):
            magnitude.append(("resolution", p))
        elif p.name == "megapixels":
            magnitude.append(("megapixels", p))
    width, height = model.param("width"), model.param("height")
    if width is not None and height is not None and width.type == height.type == "integer":
        found.append(_SizeChoice(7, "width_height", "width", "height"))
    for mode, p in magnitude:
        found.append(_SizeChoice(4 if aspect is not None else 1, mode, p.name))
    if aspect is not None:
        found.append(_SizeChoice(3, "aspect_ratio", aspect.name))
    return found, aspect


def _assign_size(model: Model) -> dict[str, Any]:
    candidates, aspect = _size_candidates(model)
    out: dict[str, Any] = {
        "size_mode": "none",
        "size_param": None,
        "size_param_2": None,
        "aspect_ratio_param": None,
        "size_custom": {},
    }
    if not candidates:
        return out
    best = max(candidates, key=lambda c: c.rank)
    out.update(size_mode=best.mode, size_param=best.param, size_param_2=best.param_2)
    if aspect is not None and aspect.name != best.param:
        out["aspect_ratio_param"] = aspect.name
        if best.mode == "width_height" and aspect.options and "custom" in aspect.options:
            out["size_custom"] = {aspect.name: "custom"}
    others = sorted(c.param for c in candidates if c.param not in (best.param, out["aspect_ratio_param"]))
    if others:
        used = best.param if best.param_2 is None else f"{best.param}+{best.param_2}"
        model.notes.append(f"size: {used} ({best.mode}) used; {', '.join(others)} not mapped")
    return out


def _implied_minimum(model: Model, name: str | None, what: str) -> None:
    param = model.param(name) if name else None
    if param is not None and param.minimum is None:
        param.minimum = 1
        model.notes.append(f"{param.name}: min 1 implied ({what} below one is meaningless)")


def model_entry(model: Model, version: str, prompt_field: str | None = None) -> dict[str, Any]:
    try:
        prompt, how = choose_prompt_field(model.params, prompt_field)
    except PromptFieldError as exc:
        raise SeedFormatError(model.line_no, f"{model.slug}: {exc}") from None
    if prompt != "prompt":
        model.notes.append(f"prompt field {how}")
    steps = _first(model, STEPS_NAMES, ("integer",))
    guidance = _first(model, GUIDANCE_NAMES, ("number", "integer"))
    seed = _first(model, SEED_NAMES, ("integer", "string"))
    count = _first(model, COUNT_NAMES, ("integer",))
    negative = _first(model, NEGATIVE_NAMES, ("string",))
    _implied_minimum(model, steps, "a number of steps")
    _implied_minimum(model, count, "an image count")
    size = _assign_size(model)
    fixed = {
        p.name: p.default for p in model.params if p.required and p.name != prompt and p.default is not None
    }
    for p in model.params:
        if p.required and p.name != prompt and p.default is None:
            model.notes.append(f"{p.name}: required, no default; the caller must give it")
        elif p.required and p.name != prompt:
            model.notes.append(
                f"{p.name}: required with default {p.default!r}; sent unless the request sets it"
            )
        if p.name == prompt and not p.required:
            model.notes.append(f"{prompt}: marked optional in the seed; always sent")
    return {
        "slug": model.slug,
        "title": model.title,
        "version": version,
        "prompt_param": prompt,
        "negative_prompt_param": negative,
        "steps_param": steps,
        "guidance_param": guidance,
        "seed_param": seed,
        "count_param": count,
        **size,
        "fixed": fixed,
        "notes": model.notes,
        "params": [p.to_json() for p in model.params],
    }

"""Map a normalized ImageRequest onto one model's own parameter names, and validate.

Two outcomes are kept apart on purpose:
- a normalized value the model has no parameter for (steps on a model without
  steps) is *left out*, with the reason, and never sent;
- a value the model has the parameter for but does not accept (steps=-3, an
  aspect ratio not in its options, an unknown extra parameter) is an error,
  raised before any request is sent.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from bench.catalog.spec import ModelSpec, ParamSpec
from bench.errors import BenchError
from bench.request import ImageRequest

# fal-style size presets, in pixels (fal's documented values).
IMAGE_SIZE_PRESETS: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
RESOLUTION_TIERS_PX: dict[str, int] = {"1K": 1024, "2K": 2048, "4K": 4096}


class ParameterError(BenchError):
    """A value the model's schema rejects; names the model, the parameter and what it accepts."""

    def __init__(self, spec: ModelSpec, param: str, value: Any, accepts: str) -> None:
        self.target, self.param, self.value, self.accepts = spec.target_id, param, value, accepts
        super().__init__(f"{spec.target_id}: parameter {param}={value!r} is not accepted; it takes {accepts}")


@dataclass(frozen=True)
class MappedRequest:
    payload: dict[str, Any]  # native names -> values; what the adapter sends (prompt included)
    left_out: dict[str, str]  # normalized name -> why it was not sent


def map_request(spec: ModelSpec, request: ImageRequest) -> MappedRequest:
    # Fixed values go in first so that what the request sets (a normalized value,
    # then an extra) replaces them: a model that requires num_images=1 by default
    # must still get num_images=4 when four are asked for.
    payload: dict[str, Any] = {spec.prompt_param: request.prompt, **spec.fixed}
    left_out: dict[str, str] = {}

    def put(normalized: str, native: str | None, value: Any) -> None:
        if value is None:
            return
        if native is None:
            left_out[normalized] = f"{spec.target_id} has no {normalized} parameter"
            return
        param = spec.params.get(native)
        payload[native] = _coerce(param, value) if param is not None else value

    put("negative_prompt", spec.negative_prompt_param, request.negative_prompt)
    put("steps", spec.steps_param, request.steps)
    put("guidance", spec.guidance_param, request.guidance)
    put("seed", spec.seed_param, request.seed)
    if request.num_images != 1:
        put("num_images", spec.count_param, request.num_images)
    _map_size(spec, request, payload, left_out)

    for name, value in request.extra.items():
        if name not in spec.params:
            accepted = ", ".join(sorted(spec.params)) or "no extra parameters"
            raise ParameterError(spec, name, value, f"no such parameter; it has: {accepted}")
        payload[name] = value
    # An empty prompt is the planner's stand-in (settings are planned before prompts are known);
    # each real prompt is checked against the prompt parameter's limits by check_prompt.
    validate_payload(spec, payload, skip=() if request.prompt else (spec.prompt_param,))
    return MappedRequest(payload=payload, left_out=left_out)


def check_prompt(spec: ModelSpec, prompt: str) -> str | None:
    """Why this model's prompt parameter refuses this text (its length or pattern), or None."""
    param = spec.params.get(spec.prompt_param)
    if param is None or _string_ok(param, prompt):
        return None
    return f"{spec.target_id}: {spec.prompt_param} of {len(prompt)} characters is not accepted; it takes {param.accepts_text()}"


def _coerce(param: ParamSpec, value: Any) -> Any:
    """A normalized value in the type the model declares, where that loses nothing.

    Some schemas declare a seed as a string, or guidance as an integer: seed 7
    becomes "7" and guidance 5.0 becomes 5. A value that would change (guidance
    3.5 for an integer parameter) is left as is, for validation to reject.
    """
    if isinstance(value, bool):
        return value
    if param.type == "string" and isinstance(value, int | float):
        return str(value)
    if param.type == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _map_size(
    spec: ModelSpec, request: ImageRequest, payload: dict[str, Any], left_out: dict[str, str]
) -> None:
    if request.width is None and request.aspect_ratio is None:
        return
    label = request.size_label
    if spec.size_mode == "none" or spec.size_param is None:
        left_out["size"] = f"{spec.target_id} has no size parameter; it picks its own size"
        return
    ratio_param = spec.aspect_ratio_param if spec.aspect_ratio_param != spec.size_param else None
    if ratio_param is not None and (request.width is None or spec.size_mode in ("megapixels", "resolution")):
        # The aspect-ratio parameter carries the shape when only a shape was asked
        # for, and always next to megapixels or a tier (they do not fix the shape).
        # The shape must be expressible; the magnitude is sent when it is too, and
        # otherwise stays the model's, as on a model with aspect_ratio only.
        shape = _ratio_option(spec.params.get(ratio_param), _ratio(request))
        if shape is None:
            param = spec.params.get(ratio_param)
            accepts = param.accepts_text() if param else "aspect_ratio"
            left_out["size"] = f"{label} cannot be expressed as {ratio_param} ({accepts}); model default used"
            return
        payload[ratio_param] = shape
        if spec.size_mode in ("megapixels", "resolution") and request.width is not None:
            magnitude = _size_value(spec, request)
            if magnitude is not None:
                payload[spec.size_param] = magnitude
            else:  # the shape went; the magnitude is the model's own: say so
                param = spec.params.get(spec.size_param)
                accepts = param.accepts_text() if param else spec.size_mode
                left_out["size"] = (
                    f"{label}: its shape went as {ratio_param}={shape!r}, but its size cannot be "
                    f"expressed as {spec.size_param} ({accepts}); the model's default size is used"
                )
        return
    if spec.size_mode == "image_size_preset":
        _map_preset(spec, request, payload, left_out)
        return
    value = _size_value(spec, request)
    if value is None:
        param = spec.params.get(spec.size_param)
        accepts = param.accepts_text() if param else spec.size_mode
        left_out["size"] = f"{label} cannot be expressed as {spec.size_param} ({accepts}); model default used"
        return
    if spec.size_mode == "width_height":
        assert spec.size_param_2 is not None and isinstance(value, tuple)
        payload.update(spec.size_custom)
        payload[spec.size_param], payload[spec.size_param_2] = value
    else:
        payload[spec.size_param] = value


def _map_preset(
    spec: ModelSpec, request: ImageRequest, payload: dict[str, Any], left_out: dict[str, str]
) -> None:
    """fal-style image_size: the exact preset, else a {width, height} object where the schema takes
    one, else the preset of the same shape (said in left_out: the size is approximated)."""
    assert spec.size_param is not None
    param = spec.params.get(spec.size_param)
    presets = {n: wh for n, wh in IMAGE_SIZE_PRESETS.items() if param is None or param.allows_option(n)}
    ratio = _ratio(request)
    same_shape = [n for n, (w, h) in presets.items() if ratio is not None and Fraction(w, h) == ratio]
    same_shape.sort(key=lambda n: -presets[n][0] * presets[n][1])  # the larger first: square_hd over square
    label = request.size_label
    if request.width is not None and request.height is not None:
        exact = [n for n, wh in presets.items() if wh == (request.width, request.height)]
        limit = (spec.size_object or {}).get("max_side_px")
        if exact:
            payload[spec.size_param] = exact[0]
        elif spec.size_object is not None and (limit is None or max(request.width, request.height) <= limit):
            payload[spec.size_param] = {"width": request.width, "height": request.height}
        elif same_shape:
            w, h = presets[same_shape[0]]
            payload[spec.size_param] = same_shape[0]
            left_out["size"] = (
                f"{label} approximated as {same_shape[0]} ({w}x{h}): the model takes only presets"
            )
        else:
            accepts = param.accepts_text() if param else "presets"
            left_out["size"] = (
                f"{label} cannot be expressed as {spec.size_param} ({accepts}); model default used"
            )
        return
    if same_shape:  # a shape alone: the preset of that shape
        payload[spec.size_param] = same_shape[0]
    else:
        accepts = param.accepts_text() if param else "presets"
        left_out["size"] = f"{label} cannot be expressed as {spec.size_param} ({accepts}); model default used"


def _ratio(request: ImageRequest) -> Fraction | None:
    if request.width is not None and request.height is not None:
        return Fraction(request.width, request.height)
    if request.aspect_ratio is not None:
        a, _, b = request.aspect_ratio.partition(":")
        return Fraction(int(a), int(b))
    return None


def _ratio_option(param: ParamSpec | None, ratio: Fraction | None) -> Any:
    """The option of an aspect-ratio parameter equal to `ratio` ("16:9" for 1024x576), or None."""
    if ratio is None:
        return None
    options = param.options if param is not None else None
    candidates = options if options is not None else (f"{ratio.numerator}:{ratio.denominator}",)
    for option in candidates:
        if _parse_ratio(option) == ratio:
            return option
    if param is not None and not param.options_complete:
        return f"{ratio.numerator}:{ratio.denominator}"
    return None


def _parse_ratio(option: Any) -> Fraction | None:
    """ "16:9" -> 16/9, "2.4:1" -> 12/5; None for anything else ("auto", "custom")."""
    a, sep, b = str(option).partition(":")
    try:
        ratio = Fraction(a) / Fraction(b) if sep else None
    except (ValueError, ZeroDivisionError):
        return None
    return ratio if ratio is not None and ratio > 0 else None


def _size_value(spec: ModelSpec, request: ImageRequest) -> Any:
    """The native size value for this request, or None if the model cannot express it exactly."""
    assert spec.size_param is not None
    param = spec.params.get(spec.size_param)
    options = param.options if param is not None else None

    def allowed(value: Any) -> bool:
        return param is None or param.allows_option(value)

    mode = spec.size_mode
    if mode == "width_height":
        if request.width is None or request.height is None:
            return None
        # Some models take width and height from a list (Kandinsky: 384, 512, ...).
        height_param = spec.params.get(spec.size_param_2) if spec.size_param_2 is not None else None
        if not allowed(request.width) or (
            height_param is not None and not height_param.allows_option(request.height)
        ):
            return None
        return (request.width, request.height)
    if mode == "size_string":
        if request.width is None:
            return None
        # Most APIs write "1024x1024"; some (Fooocus) write "1024*1024": follow the options.
        sep = "*" if options is not None and any("*" in str(o) for o in options) else "x"
        text = f"{request.width}{sep}{request.height}"
        return text if allowed(text) else None
    if mode == "image_size_preset":
        if request.width is None:
            return None
        for name, wh in IMAGE_SIZE_PRESETS.items():
            if wh == (request.width, request.height) and allowed(name):
                return name
        return None
    if mode == "aspect_ratio":
        return _ratio_option(param, _ratio(request))
    if mode == "megapixels":
        if request.width is None or request.height is None:
            return None
        mp = request.width * request.height / 1_000_000
        if options is None:
            return f"{mp:g}"
        return min(options, key=lambda o: abs(float(o) - mp)) if _close_option(options, mp) else None
    if mode == "resolution":
        if request.width is None or request.height is None:
            return None
        long_side = max(request.width, request.height)
        for tier, px in RESOLUTION_TIERS_PX.items():
            if px == long_side and allowed(tier):
                return tier
        return None
    raise AssertionError(f"unknown size mode {mode}")


def _close_option(options: tuple[Any, ...], mp: float) -> bool:
    # Megapixel options are coarse (0.25, 1, 2, 4): accept the nearest within 10%.
    return any(math.isclose(float(o), mp, rel_tol=0.1) for o in options)


def validate_payload(spec: ModelSpec, payload: Mapping[str, Any], skip: tuple[str, ...] = ()) -> None:
    """Check every payload value against the model's schema (type, options, range, length, required)."""
    for name, param in spec.params.items():
        if param.required and name not in payload:
            # Nothing in a normalized request supplies it (an input image, say):
            # say so, and how to give it.
            accepts = f"a required {param.accepts_text()}; the request does not set it, give it with extra"
            raise ParameterError(spec, name, None, accepts)
    for name, value in payload.items():
        listed = spec.params.get(name)
        if listed is None or name in skip:
            continue  # prompt and fixed parameters a spec did not list
        _check_value(spec, listed, value)


def _string_ok(param: ParamSpec, value: str) -> bool:
    if param.min_length is not None and len(value) < param.min_length:
        return False
    if param.max_length is not None and len(value) > param.max_length:
        return False
    if param.pattern is not None:
        try:
            return re.search(param.pattern, value) is not None
        except re.error:
            return True  # a pattern Python cannot read (an ECMA-only construct) is not enforced
    return True


def _check_value(spec: ModelSpec, param: ParamSpec, value: Any) -> None:
    if param.name == spec.size_param and spec.size_object is not None and isinstance(value, Mapping):
        sides = [value.get("width"), value.get("height")]
        limit = spec.size_object.get("max_side_px")
        if set(value) != {"width", "height"} or not all(
            isinstance(v, int) and not isinstance(v, bool) and 0 < v <= (limit or v) for v in sides
        ):
            raise ParameterError(spec, param.name, value, f"a preset or {{width, height}} up to {limit} px")
        return
    ok_type = {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list | tuple),
        "object": isinstance(value, Mapping),
    }[param.type]
    if not ok_type:
        raise ParameterError(spec, param.name, value, param.accepts_text())
    if not param.allows_option(value):
        raise ParameterError(spec, param.name, value, param.accepts_text())
    if isinstance(value, str) and not _string_ok(param, value):
        shown = value if len(value) <= 60 else f"{value[:57]}... ({len(value)} characters)"
        raise ParameterError(spec, param.name, shown, param.accepts_text())
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (
            (param.minimum is not None and value < param.minimum)
            or (param.maximum is not None and value > param.maximum)
        )
    ):
        raise ParameterError(spec, param.name, value, param.accepts_text())

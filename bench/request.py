"""The normalized request every provider receives, and the stable key that names it.

The key is what caching and resume are built on, so it is computed from the
*canonical provider payload* (the exact parameters that would be sent, after the
catalog mapped them onto the model's own names), not from the normalized request:
two normalized requests that a model cannot tell apart (say, different `steps`
on a model without a steps parameter) share a key, and a change in how a
parameter is mapped changes the key.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KEY_VERSION = 1


@dataclass(frozen=True)
class ImageRequest:
    """What the user asked for, in provider-neutral terms.

    `None` means "not set: let the model use its default". Size is either
    `width`/`height` in pixels or an `aspect_ratio` like "16:9" (never both).
    """

    prompt: str
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None
    num_images: int = 1
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ValueError("width and height must be given together")
        if self.width is not None and self.aspect_ratio is not None:
            raise ValueError("give either width/height or aspect_ratio, not both")
        if self.num_images < 1:
            raise ValueError(f"num_images must be >= 1, got {self.num_images}")
        # A frozen dataclass with a dict inside is still mutable through the dict.
        object.__setattr__(self, "extra", dict(self.extra))

    @property
    def size_label(self) -> str | None:
        if self.width is not None:
            return f"{self.width}x{self.height}"
        return self.aspect_ratio


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; floats that are whole become ints.

    `7.0` and `7` must give the same key: YAML, CLI overrides and Python code
    spell the same guidance value differently.
    """
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"cannot key a non-finite number: {value}")
        return int(value) if value.is_integer() else value
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"cannot key a value of type {type(value).__name__}: {value!r}")


def request_key(provider: str, model: str, payload: Mapping[str, Any], repeat: int) -> str:
    """sha256 over provider, model, the canonical payload and the repeat index."""
    material = canonical_json(
        {"v": KEY_VERSION, "provider": provider, "model": model, "payload": payload, "repeat": repeat}
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()

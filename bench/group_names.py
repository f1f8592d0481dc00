"""How a group (a target and the settings sent) is named everywhere: tables, plots, notes, verdicts."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

# What makes a group when nothing else is said: the target and the settings sent to it.
DEFAULT_GROUP_KEYS = ("target", "steps", "guidance", "size")


def group_label(key: Mapping[str, Any]) -> str:
    """A short human label for a group: target plus the settings that were sent,
    e.g. "local:shapes-fast steps=4 cfg=7 512x512" (never a Python tuple)."""
    parts = [str(key.get("target", "?"))]
    for name, short in (("steps", "steps"), ("guidance", "cfg")):
        value = key.get(name)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            try:
                parts.append(f"{short}={float(value):g}")
            except (TypeError, ValueError):
                parts.append(f"{short}={value}")
    size = key.get("size")
    if isinstance(size, str) and size:
        parts.append(size)
    return " ".join(parts)

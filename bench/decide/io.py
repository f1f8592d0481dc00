"""verdict.json: the verdict with its evidence, written beside summary.parquet, read by the notebook."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from bench.decide.verdict import VERDICT_FILE, Verdict


def _plain(value: Any) -> Any:
    """JSON has no NaN or infinity: unknown numbers are written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def write_verdict(folder: Path, verdict: Verdict) -> Path:
    path = Path(folder) / VERDICT_FILE
    tmp = path.with_name(f".{VERDICT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_plain(verdict.to_dict()), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_verdict(folder: Path) -> Verdict:
    data = json.loads((Path(folder) / VERDICT_FILE).read_text(encoding="utf-8"))
    return Verdict.from_dict(data)

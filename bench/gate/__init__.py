"""The CI regression gate: `bench compare BASELINE CANDIDATE` (see bench.gate.compare)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.gate.compare import EXIT_UNUSABLE, GateConfig, GateResult, GateUnusable, compare
from bench.gate.render import markdown, text_table, to_json, write_outputs

__all__ = [
    "GateConfig",
    "GateResult",
    "GateUnusable",
    "compare",
    "markdown",
    "run_gate",
    "text_table",
    "to_json",
]


def run_gate(baseline: Path, candidate: Path, gate_cfg: Mapping[str, Any] | None) -> int:
    """Compare, print the table, write gate.md + gate.json; the process exit code (0, 1 or 2)."""
    try:
        cfg = GateConfig.from_mapping(gate_cfg)
        result = compare(baseline, candidate, cfg)
    except (GateUnusable, ConfigError) as exc:
        print(f"bench compare: unusable input: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(text_table(result))
    out_dir = Path(cfg.output_dir) if cfg.output_dir else Path(candidate)
    md, js = write_outputs(result, out_dir)
    print(f"wrote {md} and {js}", file=sys.stderr)
    return result.exit_code

"""The gate's outputs: a terminal table, a markdown file for a pull-request comment, and JSON."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from bench.gate.compare import Check, GateResult

LABELS = {
    "clip": "CLIP score",
    "latency_p50": "latency p50",
    "latency_p90": "latency p90",
    "cost_per_image": "cost / image",
    "ok_rate": "ok rate",
    "refusal_rate": "refusal rate",
    "retry_rate": "requests retried",
    "mean_attempts": "attempts / request",
    "fid": "FID",
    "kid_mean": "KID",
    "pickscore": "PickScore",
    "hpsv2": "HPSv2.1",
    "judge_adherence": "judge adherence",
    "judge_rubric": "judge rubric",
}


def _value(metric: str, v: float) -> str:
    if math.isnan(v):
        return "-"
    if metric.startswith("latency"):
        return f"{v:.3f} s"
    if metric == "cost_per_image":
        return f"${v:.4f}"
    if metric in ("ok_rate", "refusal_rate", "retry_rate"):
        return f"{100 * v:.1f}%"
    if metric == "mean_attempts":
        return f"{v:.3f}"
    if metric == "kid_mean":
        return f"{v:.4f}"
    return f"{v:.2f}"


def _num(v: float, c: Check) -> str:
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    if c.relative:
        return f"{100 * v:+.1f}%"
    if c.metric in ("ok_rate", "refusal_rate", "retry_rate"):
        return f"{100 * v:+.1f} pts"
    if c.metric == "kid_mean":
        return f"{v:+.4f}"
    return f"{v:+.2f}"


def _delta(c: Check) -> str:
    if math.isnan(c.delta):
        return c.status if c.status in ("unknown", "skipped") else "-"
    ci = "" if math.isnan(c.low) else f" [{_num(c.low, c)}, {_num(c.high, c)}]"
    return _num(c.delta, c) + ci


def rows(result: GateResult, checks: list[Check] | None = None) -> list[list[str]]:
    out = []
    for c in result.checks if checks is None else checks:
        status = c.status + (f" ({c.detail})" if c.detail and c.status != "pass" else "")
        out.append([
            c.target, LABELS.get(c.metric, c.metric), _value(c.metric, c.baseline), _value(c.metric, c.candidate),
            _delta(c), str(c.n_pairs), c.rule, status,
        ])  # fmt: skip
    return out


HEADER = ["target", "check", "baseline", "candidate", "delta [CI]", "pairs", "rule", "status"]


def verdict_line(result: GateResult) -> str:
    if result.failed:
        names = "; ".join(f"{c.target} {LABELS.get(c.metric, c.metric)} {_delta(c)}" for c in result.failed)
        return f"REGRESSION: {len(result.failed)} check(s) failed: {names}"
    return f"PASS: no confident regression over {result.n_pairs} matched pairs"


def text_table(result: GateResult) -> str:
    table = [HEADER, *rows(result)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"note: {n}" for n in result.notes]
    return "\n".join([*lines, "", *notes, verdict_line(result)])


def _md_table(table: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in table)
    return lines


def markdown(result: GateResult) -> str:
    """A pull-request comment read in five seconds: the verdict, then only the failing checks;
    the full table, notes and fingerprints folded in a <details> below (gate.json keeps all)."""
    icon = "❌" if result.failed else "✅"
    conf = f"{100 * result.confidence_per_check:.2f}".rstrip("0").rstrip(".")
    out = [f"## {icon} t2i-bench gate: {result.verdict}", "", f"**{verdict_line(result)}**", ""]
    if result.failed:
        out.extend(["### Failing checks", "", *_md_table(rows(result, result.failed)), ""])
    out.extend([
        f"<details><summary>All {len(result.checks)} checks, notes and fingerprints</summary>",
        "",
        f"Baseline `{result.baseline}` vs candidate `{result.candidate}`: {result.n_pairs} matched pairs "
        f"(same target, prompt, settings, seed). Intervals: paired bootstrap, {conf}% per check.",
        "",
        *_md_table(rows(result)),
        "",
    ])  # fmt: skip
    if result.clip_fingerprint:
        out.append(f"CLIP fingerprint: `{result.clip_fingerprint}`")
    if result.fid_fingerprint:
        out.append(f"FID/KID fingerprint: `{result.fid_fingerprint}`")
    out.extend(f"- {n}" for n in result.notes)
    out.extend(["", "</details>"])
    return "\n".join(out) + "\n"


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    return v


def to_json(result: GateResult) -> str:
    return json.dumps(_json_safe(result.to_dict()), indent=2, sort_keys=True)


def write_outputs(result: GateResult, out_dir: Path) -> tuple[Path, Path]:
    """gate.md and gate.json into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = (out_dir / "gate.md", out_dir / "gate.json")
    for path, text in zip(paths, (markdown(result), to_json(result)), strict=True):
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return paths

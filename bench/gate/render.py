"""The gate's outputs: a terminal table, a markdown file for a pull-request comment, and JSON."""

from __future__ import annotations

import json
import math
import os
import textwrap
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
    "arena_elo": "arena Elo",
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
    if metric == "arena_elo":
        return f"{v:.0f}"
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
    if c.metric == "arena_elo":
        return f"{v:+.0f}"
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


def _names(names: list[str], limit: int | None) -> str:
    if limit is None or len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def verdict_parts(result: GateResult, limit: int | None = None) -> list[str]:
    """Why the verdict is what it is, most serious first; [PASS ...] when nothing is wrong."""
    parts = []
    if result.not_measured:
        unmeasured = result.unmeasured_targets or sorted(result.paired)
        counts = [f"{t} ({result.measured.get(t, 0)} of {result.paired.get(t, 0)})" for t in unmeasured]
        parts.append(
            f"NOT MEASURED: too few live pairs for {_names(counts, limit)}: need {100 * result.min_measured:g}% "
            f"per target (--min-measured) and at least one; {result.n_measured} of {result.n_pairs} in all. The other candidate "
            "answers were replayed from the response cache: run the candidate with cache.mode=off"
        )
    if result.missing_targets:
        parts.append(
            f"FAIL: {len(result.missing_targets)} baseline target(s) have no candidate counterpart: "
            f"{_names(result.missing_targets, limit)} (--allow-missing TARGET to accept)"
        )
    if result.failed:
        names = [f"{c.target} {LABELS.get(c.metric, c.metric)} {_delta(c)}" for c in result.failed]
        parts.append(f"REGRESSION: {len(result.failed)} check(s) failed: {_names(names, limit)}")
    if not parts:
        replayed = result.n_pairs - result.n_measured
        left_out = f" ({replayed} replayed pairs left out)" if replayed else ""
        parts.append(f"PASS: no confident regression over {result.n_measured} live matched pairs{left_out}")
    return parts


def verdict_line(result: GateResult) -> str:
    """The first line of every output: the verdict word, then every reason for it."""
    return "; ".join(verdict_parts(result))


TERMINAL_COLUMNS = 120
TERMINAL_HEADER = ["check", "baseline", "candidate", "delta [CI]", "pairs", "status"]


def _fit(line: str, width: int = TERMINAL_COLUMNS) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def text_table(result: GateResult) -> str:
    """The terminal view, at most 120 columns: the verdict first, one block per target (its name as
    the block's heading), no rule column (gate.md and gate.json keep rules and details)."""
    verdict = [
        line
        for part in verdict_parts(result, limit=3)
        for line in textwrap.wrap(part, TERMINAL_COLUMNS, subsequent_indent="  ", break_on_hyphens=False)
    ]
    blocks: dict[str, list[list[str]]] = {}
    for c in result.checks:
        blocks.setdefault(c.target, []).append(
            [LABELS.get(c.metric, c.metric), _value(c.metric, c.baseline), _value(c.metric, c.candidate),
             _delta(c), str(c.n_pairs), c.status]
        )  # fmt: skip
    cells = [TERMINAL_HEADER, *(r for rows_ in blocks.values() for r in rows_)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(TERMINAL_HEADER))]

    def fmt(r: list[str]) -> str:
        return _fit("  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())

    lines = [*verdict, "", fmt(TERMINAL_HEADER), _fit("  " + "  ".join("-" * w for w in widths))]
    for target, target_rows in blocks.items():
        lines.append(_fit(target))
        lines.extend(fmt(r) for r in target_rows)
    notes = [
        _fit(line)
        for n in result.notes
        for line in textwrap.wrap(f"note: {n}", TERMINAL_COLUMNS, subsequent_indent="  ")
    ]
    tail = "rules and details of every check: gate.md (full table) and gate.json"
    return "\n".join([*lines, "", *notes, tail, *verdict])


def _md_table(table: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines.extend("| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in table)
    return lines


def markdown(result: GateResult) -> str:
    """A pull-request comment read in five seconds: the verdict, then only the failing checks;
    the full table, notes and fingerprints folded in a <details> below (gate.json keeps all)."""
    icon = "✅" if result.exit_code == 0 else "❌"
    conf = f"{100 * result.confidence_per_check:.2f}".rstrip("0").rstrip(".")
    out = [f"## {icon} t2i-bench gate: {result.verdict}", "", f"**{verdict_line(result)}**", ""]
    if result.decision:  # the candidate's own verdict (bench.decide), so a CI reader sees the choice too
        out.extend([result.decision, ""])
    if result.failed:
        out.extend(["### Failing checks", "", *_md_table(rows(result, result.failed)), ""])
    out.extend([
        f"<details><summary>All {len(result.checks)} checks, notes and fingerprints</summary>",
        "",
        f"Baseline `{result.baseline}` vs candidate `{result.candidate}`: {result.n_pairs} matched pairs "
        f"(same target, prompt, settings, seed), {result.n_measured} of them live (the candidate's answer not "
        f"replayed from the response cache). Intervals: {conf}% per check (docs/gate-checks.md).",
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

"""An adaptive study's trace: adaptive.jsonl (one line per look) read back, for verdict.json, the
report and the terminal. Written by bench.cli.adaptive; read here so the report can show it."""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.decide.sequential import METHOD

JOURNAL = "adaptive.jsonl"
ADAPTIVE_KEY = "adaptive"  # verdict.json's block
ADAPTIVE_NOTE = (
    "adaptive study: its always-valid rule recommends {rec}; the fixed-sample verdict here was computed on data "
    "gathered with repeated looks, where its error rate does not hold"
)
ROUND_KEYS = ("round", "prompts", "drops", "alive", "candidate", "recommended", "settled", "spent_usd")


def append_journal(run_dir: Path, entry: Mapping[str, Any]) -> None:
    """One look, appended and synced: a crash after this line keeps the look; before it, the look is taken again."""
    with open(run_dir / JOURNAL, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(plain(entry)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_journal(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / JOURNAL
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line (killed mid-write): that look is taken again
    return out


def plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def adaptive_trace(run_dir: Path) -> dict[str, Any] | None:
    """The study's trace for verdict.json and the report: rounds, drops, spend, the grid's cost."""
    entries = read_journal(run_dir)
    looks = [e for e in entries if e.get("kind") == "look"]
    if not looks:
        return None
    last = looks[-1]
    return {
        "method": METHOD,
        "study": entries[0].get("study"),
        "status": "settled" if last["settled"] else ("recommended" if last["recommended"] else "undecided"),
        "recommended": last["recommended"],
        "stopped_because": last["stop"],
        "prompts": last["prompts"],
        "prompts_in_suite": len(entries[0].get("order") or []),
        "signal": last["signal"],
        "margin": last["margin"],
        "rounds": [{k: e.get(k) for k in ROUND_KEYS} for e in looks],
        "open": last["open"],
        "spent_usd": last["spent_usd"],
        "judge_usd": last.get("judge_usd"),
        "grid_usd": last["grid_usd"],
    }


def merge_into_verdict(run_dir: Path, trace: Mapping[str, Any]) -> None:
    """Add the trace to verdict.json (written by the report) under "adaptive"."""
    from bench.decide.verdict import VERDICT_FILE

    path = run_dir / VERDICT_FILE
    if not path.is_file():
        return
    data = json.loads(path.read_text(encoding="utf-8"))
    data[ADAPTIVE_KEY] = plain(dict(trace))
    if trace["recommended"] != data.get("recommended"):
        # bench.decide's fixed-sample test does not keep its error rate under the study's repeated
        # looks: the adaptive rule's decision is the study's.
        data.setdefault("notes", []).insert(0, ADAPTIVE_NOTE.format(rec=trace["recommended"] or "none"))
    tmp = path.with_name(f".{VERDICT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def trace_block(trace: Mapping[str, Any]) -> str:
    """The study's outcome and trace as text (terminal; the report shows the same)."""
    spent = sum(float(v or 0.0) for v in trace["spent_usd"].values())
    grid = float(trace["grid_usd"] or math.nan)
    share = f" = {spent / grid:.0%} of the full grid's ${grid:.4g}" if grid > 0 else ""
    rec = trace["recommended"]
    head = {
        "settled": f"Adaptive study: settled after {trace['prompts']} of {trace['prompts_in_suite']} prompts: {rec}",
        "recommended": f"Adaptive study: stopped ({trace['stopped_because']}) at {trace['prompts']} prompts; "
        f"recommended: {rec} (cheaper groups still open)",
        "undecided": f"Adaptive study: stopped ({trace['stopped_because']}) at {trace['prompts']} prompts, undecided",
    }[trace["status"]]
    lines = [head, f"  spent ${spent:.4g} on generation{share}; the judge ${float(trace['judge_usd'] or 0):.4g}",
             f"  rule: {trace['method']}"]  # fmt: skip
    for r in trace["rounds"]:
        for d in r["drops"]:
            lines.append(
                f"  round {r['round']} ({r['prompts']} prompts): dropped {d['group']}: {d['reason']}"
            )
    lines += [f"  open: {o}" for o in trace["open"]]
    lines.append("  (the verdict above is bench.decide's fixed-sample test; under repeated looks the study's own rule "
                 "above is the one that keeps its error rate)")  # fmt: skip
    lines += [f"  spent on {g}: ${float(v or 0.0):.4g}" for g, v in trace["spent_usd"].items()]
    return "\n".join(lines)


def trace_html(trace: Mapping[str, Any] | None) -> str:
    """The report's section: the outcome, then round by round who was dropped and why, the spend per
    contender and what the full grid would have cost."""
    if not trace:
        return ""
    esc = html.escape
    lines = trace_block(trace).splitlines()
    rows = []
    for r in trace["rounds"]:
        drops = "; ".join(f"<b>{esc(d['group'])}</b>: {esc(d['reason'])}" for d in r["drops"]) or "-"
        spent = sum(float(v or 0.0) for v in (r.get("spent_usd") or {}).values())
        rows.append(f"<tr><td>{r['round']}</td><td>{r['prompts']}</td><td>{len(r['alive'])}</td>"
                    f"<td>${spent:.4g}</td><td>{drops}</td></tr>")  # fmt: skip
    spend = "".join(
        f"<tr><td>{esc(g)}</td><td>${float(v or 0.0):.4g}</td></tr>" for g, v in trace["spent_usd"].items()
    )
    opened = "".join(f"<li>{esc(o)}</li>" for o in trace["open"])
    return (
        "<section id='adaptive'><h2>Adaptive study</h2>"
        f"<p>{esc(lines[0])}</p><p>{esc(lines[1].strip())}</p><p><small>{esc(trace['method'])}</small></p>"
        "<table><tr><th>round</th><th>prompts</th><th>contenders left</th><th>spent so far</th><th>dropped</th></tr>"
        + "".join(rows) + "</table>"
        + (f"<p>Still open:</p><ul>{opened}</ul>" if opened else "")
        + "<table><tr><th>contender</th><th>spent on generation</th></tr>" + spend + "</table></section>"
    )  # fmt: skip

"""The verdict as text: the terminal block (fits 120 columns) and the one-line summaries others reuse."""

from __future__ import annotations

import math
import textwrap

from bench.decide.verdict import GroupVerdict, Verdict

WIDTH = 120


def _num(v: float, spec: str = ".3g", missing: str = "-") -> str:
    return missing if v is None or math.isnan(v) else format(v, spec)


def _cost(v: float) -> str:
    return "cost unknown" if math.isnan(v) else f"${v:,.2f}/1k"


def quality_text(g: GroupVerdict) -> str:
    ci = "" if math.isnan(g.quality_low) else f" [{_num(g.quality_low)}, {_num(g.quality_high)}]"
    return f"{_num(g.quality)}{ci}"


def diff_text(g: GroupVerdict) -> str:
    """This group minus the best (higher-is-better units), with its one-sided bounds."""
    if math.isnan(g.diff_to_best):
        return "-"
    if g.diff_to_best == 0.0 and math.isnan(g.diff_low):
        return "best"
    bounds = "" if math.isnan(g.diff_low) else f" [{g.diff_low:+.3g}, {g.diff_high:+.3g}]"
    return f"{g.diff_to_best:+.3g}{bounds}"


def headline(v: Verdict) -> str:
    """One line: what to choose, or why nothing is recommended."""
    if v.status == "recommended":
        return f"Recommended: {v.recommended} (on {v.signal_name}, margin {v.margin:g})"
    if v.status == "undecided":
        return f"No recommendation yet: {v.reason}"
    return f"No recommendation: {v.reason}"


def _wrap(text: str, indent: str = "  ", hang: str = "    ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=hang, break_on_hyphens=False)


def verdict_block(v: Verdict, path: str | None = None) -> str:
    lines = [f"Verdict: {headline(v)}"[:WIDTH] if len(headline(v)) < WIDTH - 10 else "Verdict:"]
    if len(lines[0]) <= len("Verdict:"):
        lines += _wrap(headline(v))
    by = {g.group: g for g in v.groups}
    if v.signal:
        lines += _wrap(
            f"Signal: {v.signal_label}{' — EMULATED JUDGE (pixel measurements, not a VLM)' if v.emulated else ''}; "
            f"margin {v.margin:g} ({v.margin_source}); {round(100 * v.confidence)}% one-sided; "
            f"{v.n} {v.unit} {'shared at most' if len(v.groups) > 1 else 'scored'}"
        )
    for role, name in (("recommended", v.recommended), ("best", v.best)):
        if name and name in by and not (role == "best" and name == v.recommended):
            g = by[name]
            vs_best = f", {diff_text(g)} vs the best" if role == "recommended" and name != v.best else ""
            lines += _wrap(
                f"{role.capitalize()}: {name} — {quality_text(g)}, {_cost(g.cost_per_1k_usd)}, "
                f"p90 {_num(g.latency_p90_s)} s{vs_best}"
            )
    if v.non_inferior:
        lines += _wrap(f"Within {v.margin:g} of every other contender ({len(v.non_inferior)}): "
                       + ", ".join(v.non_inferior))  # fmt: skip
    worse = [g.group for g in v.groups if not g.excluded and g.diff_high < -v.margin]
    if worse:
        lines += _wrap(f"Shown worse than the best by more than {v.margin:g} ({len(worse)}): " + ", ".join(worse[:4])
                       + (f", and {len(worse) - 4} more" if len(worse) > 4 else ""))  # fmt: skip
    excluded = [g for g in v.groups if g.excluded]
    if excluded:
        shown = "; ".join(f"{g.group} ({g.excluded})" for g in excluded[:4])
        more = f"; and {len(excluded) - 4} more" if len(excluded) > 4 else ""
        lines += _wrap(f"Excluded by constraints: {shown}{more}")
    for line in v.undecided:
        lines += _wrap(f"Undecided: {line}")
    if v.categories:
        cats = ", ".join(
            f"{c.category} {c.diff:+.3g}" + ("" if math.isnan(c.low) else f" [{c.low:+.3g}, {c.high:+.3g}]")
            for c in v.categories[:3]
        )
        lines += _wrap(f"What the recommendation gives up, by category (recommended - best): {cats}")
    for note in v.notes:
        lines += _wrap(f"Note: {note}")
    if path:
        lines += _wrap(f"Details: {path}")
    return "\n".join(lines)

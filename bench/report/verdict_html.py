"""The verdict at the top of report.html: what to choose, the groups as good as the best, and why."""

from __future__ import annotations

import html
import math

from bench.decide.render import diff_text, headline, quality_text
from bench.decide.verdict import GroupVerdict, Verdict

VERDICT_CSS = (
    ".verdict{border:2px solid #0072B2;border-radius:6px;padding:.6em 1em;margin:1em 0;background:#f4f9fd}"
    ".verdict.none{border-color:#D55E00;background:#fdf6f2}.verdict h2{margin:.1em 0 .4em}"
    "table.vt{border-collapse:collapse;font-size:13px;margin:.4em 0}"
    "table.vt th,table.vt td{border:1px solid #ccc;padding:3px 7px;text-align:right;white-space:nowrap}"
    "table.vt th{background:#eee}table.vt .l{text-align:left}tr.rec td{font-weight:bold;background:#e8f3e8}"
    ".verdict code{word-break:break-all}.verdict .tablewrap{overflow-x:auto;max-width:100%}"
    ".emujudge{background:#D55E00;color:#fff;border-radius:3px;padding:0 4px;font-size:11px}"
)


def _f(v: float, spec: str) -> str:
    return "-" if math.isnan(v) else format(v, spec)


def _row(g: GroupVerdict, v: Verdict) -> str:
    role = "recommended" if g.group == v.recommended else ("best" if g.group == v.best else "")
    if g.group == v.recommended and g.group == v.best:
        role = "recommended, best"
    cells = [
        f"<td class='l'>{html.escape(g.group)}</td>",
        f"<td class='l'>{role}</td>",
        f"<td>{html.escape(quality_text(g))}</td>",
        f"<td>{html.escape(diff_text(g))}</td>",
        f"<td>{'unknown' if math.isnan(g.cost_per_1k_usd) else f'${g.cost_per_1k_usd:,.2f}'}</td>",
        f"<td>{_f(g.latency_p90_s, '.3f')}</td>",
        f"<td>{_f(100 * g.refusal_rate, '.1f')}</td>",
        f"<td>{g.n_pairs or '-'}</td>",
    ]
    cls = " class='rec'" if g.group == v.recommended else ""
    return f"<tr{cls}>{''.join(cells)}</tr>"


def verdict_html(v: Verdict) -> str:
    emu = (
        " <span class='emujudge' title='the judge is the chat emulator measuring pixels, not a VLM'>emulated judge</span>"
        if v.emulated
        else ""
    )
    cls = "verdict" if v.status == "recommended" else "verdict none"
    parts = [f"<section class='{cls}' id='verdict'><h2>{html.escape(headline(v))}{emu}</h2>"]
    parts.append(f"<p>{html.escape(v.reason)}.</p>")
    if v.signal:
        parts.append(
            f"<p>Signal: <b>{html.escape(v.signal_label)}</b>{emu} (fingerprint <code>{html.escape(v.fingerprint)}"
            f"</code>); margin <b>{v.margin:g}</b> ({v.margin_source}); constraints: "
            f"{html.escape(_constraints(v))}; method: {html.escape(v.method)}; at most {v.n} {v.unit} shared.</p>"
        )
    shown = [g for g in v.groups if g.non_inferior or g.group in (v.recommended, v.best)]
    if shown:
        head = "".join(
            f"<th>{h}</th>"
            for h in ("group", "", "quality [95% CI]", "minus the best [one-sided bounds]", "$/1k images",
                      "p90 s", "refused %", "prompts paired")
        )  # fmt: skip
        parts.append(
            f"<div class='tablewrap'><table class='vt' id='verdict-table'><thead><tr>{head}</tr></thead><tbody>"
        )
        parts.append("".join(_row(g, v) for g in shown) + "</tbody></table></div>")
        parts.append(
            f"<p>Rows: the groups shown within {v.margin:g} of every other contender (non-inferior), and the best.</p>"
        )
    for line in v.undecided:
        parts.append(f"<p>Undecided: {html.escape(line)}.</p>")
    for note in v.notes:
        parts.append(f"<p>Note: {html.escape(note)}.</p>")
    excluded = [g for g in v.groups if g.excluded]
    if excluded:
        items = "".join(f"<li>{html.escape(g.group)}: {html.escape(g.excluded)}</li>" for g in excluded)
        parts.append(
            f"<details><summary>{len(excluded)} group(s) excluded by constraints</summary><ul>{items}</ul></details>"
        )
    if v.categories and v.category_pair:
        rec, best = v.category_pair
        rows = "".join(
            f"<tr><td class='l'>{html.escape(c.category)}</td><td>{c.n}</td><td>{c.diff:+.3g}</td>"
            f"<td>{'-' if math.isnan(c.low) else f'[{c.low:+.3g}, {c.high:+.3g}]'}</td></tr>"
            for c in v.categories
        )
        parts.append(
            f"<p>What the recommendation gives up: {html.escape(rec)} minus {html.escape(best)}, by prompt category "
            "(largest differences first; 95% BCa interval over the category's prompts).</p>"
            "<div class='tablewrap'><table class='vt' id='verdict-categories'><thead><tr><th>category</th>"
            f"<th>prompts</th><th>difference</th><th>95% CI</th></tr></thead><tbody>{rows}</tbody></table></div>"
        )
    parts.append(
        "<p>Also in <a href='verdict.json'>verdict.json</a>; `bench recommend PATH` prints it.</p></section>"
    )
    return "".join(parts)


def _constraints(v: Verdict) -> str:
    from bench.decide.settings import Constraints

    return Constraints(**v.constraints).describe()

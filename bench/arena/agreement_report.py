"""The agreement table in report.html and in the terminal, and the signal `auto` should prefer."""

from __future__ import annotations

import html

import numpy as np

from bench.arena.agreement import (
    SIGNAL_LABELS,
    Agreement,
    SignalAgreement,
    compute_agreement,
    preferred_signal,
)
from bench.arena.gold import FLAG_MIN_FAILED, GOLD_FILE, gold_results, read_gold
from bench.arena.pairs import arm_images
from bench.arena.report import folder_votes, vote_files
from bench.report.runs import RunSet


def folder_agreement(
    runs: RunSet,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    exclude_flagged: bool = False,
) -> Agreement | None:
    """Agreement of the folder's automated signals with its votes; None when nobody has voted."""
    votes = folder_votes(runs, exclude_flagged=exclude_flagged)
    if not votes or runs.records.empty:
        return None
    arm_of = {
        img.sha256: img.arm
        for arms in arm_images(runs.records).values()
        for imgs in arms.values()
        for img in imgs
    }
    return compute_agreement(votes, runs.records, arm_of, n_boot=n_boot, confidence=confidence, seed=seed)


def _pct(x: float) -> str:
    return "-" if np.isnan(x) else f"{100 * x:.0f}%"


def _num(x: float) -> str:
    return "-" if np.isnan(x) else f"{x:+.2f}"


def _cells(r: SignalAgreement) -> tuple[str, str, str, str, str, str]:
    return (
        SIGNAL_LABELS.get(r.signal, r.signal),
        _pct(r.accuracy),
        f"[{_pct(r.accuracy_low)}, {_pct(r.accuracy_high)}]",
        f"{r.n_used} ({r.n_tied_votes} tied, {r.n_unscored} unscored)",
        _num(r.tau),
        f"[{_num(r.tau_low)}, {_num(r.tau_high)}] over {r.n_arms} arms",
    )


def preference_line(agreement: Agreement | None) -> str:
    """One line: which signal agrees best with the votes, and whether there are enough votes to trust it."""
    if agreement is None or not agreement.rows:
        return ""
    best = preferred_signal(agreement)
    if best is None:
        top = max(agreement.rows, key=lambda r: (r.n_used, r.accuracy))
        return (
            f"No automated signal is trusted by the votes yet: it takes at least {agreement.min_votes} scored "
            f"decisive votes and agreement above 50% ({SIGNAL_LABELS.get(top.signal, top.signal)} has "
            f"{top.n_used} votes, {_pct(top.accuracy)})."
        )
    return (
        f"{SIGNAL_LABELS.get(best.signal, best.signal)} agrees best with the votes: {_pct(best.accuracy)} of "
        f"{best.n_used} decisive votes [{_pct(best.accuracy_low)}, {_pct(best.accuracy_high)}], Kendall's τ "
        f"{_num(best.tau)} across {best.n_arms} arms (trusted from {agreement.min_votes} votes)."
    )


def _alpha_line(agreement: Agreement) -> str:
    ir = agreement.inter_rater
    if ir.n_pairs == 0:
        return "Inter-rater agreement: no image pair was voted on by two raters yet."
    alpha = "undefined (every answer the same)" if np.isnan(ir.alpha) else f"{ir.alpha:.2f}"
    return (
        f"Inter-rater agreement: Krippendorff's α (nominal) = {alpha} on {ir.n_pairs} image pairs voted by "
        f"two or more of {ir.n_raters} raters (1 = full agreement, 0 = chance)."
    )


HEAD = ("signal", "agrees with votes", "interval", "votes used", "Kendall τ vs Elo", "interval")


def agreement_html(agreement: Agreement | None) -> str:
    if agreement is None:
        return ""
    pct = round(100 * agreement.confidence)
    if not agreement.rows:
        body = "<p>" + html.escape("; ".join(agreement.notes)) + "</p>"
    else:
        rows = "".join(
            "<tr>" + "".join(f"<td class='l'>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>"
            for r in agreement.rows
        )
        head = "".join(f"<th>{html.escape(h)}</th>" for h in HEAD)
        body = (
            f"<table class='arena' id='signal-agreement'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>{html.escape(preference_line(agreement))}</p>"
        )
    return (
        "<h2 id='agreement'>Signals against the votes</h2>"
        f"<p>Pairwise accuracy: share of decisive votes whose winner the signal scores higher (equal scores "
        f"count half; tie and 'both bad' votes and unscored images left out). Kendall's τ: the arms' mean "
        f"signal against their Elo. {pct}% percentile-bootstrap intervals over votes.</p>"
        f"{body}<p>{html.escape(_alpha_line(agreement))}</p>"
    )


def agreement_text(agreement: Agreement | None) -> str:
    """The same table for the terminal ("" when nobody has voted)."""
    if agreement is None:
        return ""
    lines = ["Signals against the votes:"]
    if not agreement.rows:
        lines.append("  " + "; ".join(agreement.notes))
    else:
        cells = [HEAD, *(_cells(r) for r in agreement.rows)]
        widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
        lines += ["  " + "  ".join(c[i].ljust(widths[i]) for i in range(len(HEAD))).rstrip() for c in cells]
        lines.append(preference_line(agreement))
    lines.append(_alpha_line(agreement))
    return "\n".join(lines)


def gold_html(runs: RunSet, excluded: bool) -> str:
    """Gold pairs per rater, the flagged ones named ("" when no rater answered a gold pair)."""
    results = gold_results(read_gold(p.with_name(GOLD_FILE) for p in vote_files(runs)))
    if not results:
        return ""
    rows = "".join(
        f"<tr><td class='l'>{html.escape(r.rater)}</td><td>{r.passed}</td><td>{r.failed}</td>"
        f"<td class='l'>{'FLAGGED' if r.flagged else 'ok'}</td></tr>"
        for r in results
    )
    flagged = [r.rater for r in results if r.flagged]
    what = (
        ("their votes are left out of the ratings and the agreement (report.arena_exclude_flagged=true)"
         if excluded else "their votes are still counted; set report.arena_exclude_flagged=true to leave them out")
        if flagged else "no rater is flagged"
    )  # fmt: skip
    return (
        "<h3 id='gold'>Gold pairs (careless raters)</h3>"
        f"<p>A gold pair puts a real image against a blank one; a rater is flagged after failing at least "
        f"{FLAG_MIN_FAILED} and at least half of theirs. {html.escape(what)}.</p>"
        "<table class='arena' id='gold-table'><thead><tr><th>rater</th><th>passed</th><th>failed</th>"
        f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
    )

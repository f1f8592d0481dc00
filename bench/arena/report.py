"""Arena ratings in the summary (arena_elo, arena_elo_ci_low/high, arena_votes) and in report.html."""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.arena.ratings import ArenaRatings, rate
from bench.arena.votes import VOTES_FILE, Vote, read_all_votes
from bench.decide.evidence import Replicates
from bench.report.runs import RunSet

ARENA_COLUMNS = ("arena_elo", "arena_elo_ci_low", "arena_elo_ci_high", "arena_votes")
ARENA_CSS = (
    "table.arena{border-collapse:collapse;font-size:12px;margin:.5em 0}"
    "table.arena th,table.arena td{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}"
    "table.arena th{background:#eee}table.arena .l{text-align:left}"
)


def vote_files(runs: RunSet) -> list[Path]:
    """votes.jsonl of the folder rated and of each of its runs (a run may be rated on its own)."""
    return [runs.root / VOTES_FILE, *(d / VOTES_FILE for d in runs.run_dirs if d != runs.root)]


def folder_votes(runs: RunSet, *, exclude_flagged: bool = False) -> list[Vote]:
    """Every vote of the folder once; without the votes of raters flagged by gold pairs if asked."""
    from bench.arena.gold import GOLD_FILE, gold_results, read_gold, without_flagged

    votes = read_all_votes(vote_files(runs))
    if exclude_flagged:
        gold = gold_results(read_gold(p.with_name(GOLD_FILE) for p in vote_files(runs)))
        votes = without_flagged(votes, gold)
    return votes


def arena_ratings(
    runs: RunSet,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    exclude_flagged: bool = False,
) -> ArenaRatings | None:
    """Ratings from every votes.jsonl of the folder; None when nobody has voted."""
    votes = folder_votes(runs, exclude_flagged=exclude_flagged)
    if not votes:
        return None
    return rate(votes, n_boot=n_boot, confidence=confidence, seed=seed)


def _norm(v: Any) -> Any:
    """A key value comparable between a vote (JSON) and a summary row (pandas): 4 == 4.0, NaN == None."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return float(v)
    return str(v)


def _key(values: Mapping[Any, Any], keys: list[str]) -> tuple[Any, ...]:
    return tuple(_norm(values.get(k)) for k in keys)


def attach_arena(summary: pd.DataFrame, ratings: ArenaRatings | None, keys: list[str]) -> pd.DataFrame:
    """Add the arena columns to the summary, one arm per row (NaN Elo = not rated on the common scale)."""
    out = summary.copy()
    if out.empty:
        return out
    own = {
        a: v for a, v in (ratings.arm_keys if ratings is not None else {}).items() if not v.get("baseline")
    }
    by_key = {_key(v, keys): arm for arm, v in own.items()}
    arms = [by_key.get(_key(r, keys), "") for r in out.to_dict("records")]
    by_arm: dict[str, dict[str, Any]] = {}
    if ratings is not None:
        by_arm = {str(r["arm"]): {str(k): v for k, v in r.items()} for r in ratings.table.to_dict("records")}
    nan = float("nan")
    for col, src in (
        ("arena_elo", "elo"),
        ("arena_elo_ci_low", "elo_low"),
        ("arena_elo_ci_high", "elo_high"),
    ):
        out[col] = [float(by_arm[a][src]) if a in by_arm else nan for a in arms]
    out["arena_votes"] = [int(by_arm[a]["votes"]) if a in by_arm else 0 for a in arms]
    return out


def arena_replicates(
    summary: pd.DataFrame, ratings: ArenaRatings | None, keys: list[str]
) -> Replicates | None:
    """Elo per bootstrap replicate over votes, one column per summary group (NaN: not rated), for bench.decide."""
    if ratings is None or ratings.empty or ratings.elo_boot.size == 0 or summary.empty:
        return None
    own = {a: v for a, v in ratings.arm_keys.items() if not v.get("baseline")}
    by_key = {_key(v, keys): arm for arm, v in own.items()}
    col = {a: i for i, a in enumerate(ratings.boot_arms)}
    elo = dict(zip(ratings.table["arm"], ratings.table["elo"], strict=True))
    arms = [by_key.get(_key(r, keys), "") for r in summary.to_dict("records")]
    nan = np.full(ratings.elo_boot.shape[0], np.nan)
    boot = np.stack([ratings.elo_boot[:, col[a]] if a in col else nan for a in arms], axis=1)
    estimate = np.array([float(elo.get(a, np.nan)) for a in arms])
    return Replicates(tuple(str(g) for g in summary["group"]), estimate, boot, ratings.n_votes, "votes")


def _f(v: Any, spec: str = ".0f") -> str:
    x = float(v)
    return "-" if np.isnan(x) else format(x, spec)


def arena_html(ratings: ArenaRatings | None) -> str:
    """The report section: Elo with intervals, votes per arm, the win-rate matrix, position bias."""
    if ratings is None or ratings.empty:
        return (
            "<h2 id='arena'>Human preference (arena)</h2><p>No votes yet. Run <code>bench rate PATH</code> "
            "to compare images blind, two at a time; the ratings then appear here and in summary.parquet.</p>"
        )
    pct = round(100 * ratings.confidence)
    rows = "".join(
        f"<tr><td class='l'>{html.escape(str(r['arm']))}</td><td>{_f(r['elo'])}</td>"
        f"<td>[{_f(r['elo_low'])}, {_f(r['elo_high'])}]</td><td>{_f(r['votes'], 'g')}</td>"
        f"<td>{_f(r['wins'], 'g')} / {_f(r['losses'], 'g')} / {_f(r['ties'], 'g')}</td></tr>"
        for r in ratings.table.to_dict("records")
    )
    names = [str(a) for a in ratings.win_rate.index]
    win = {str(k): {str(c): x for c, x in v.items()} for k, v in ratings.win_rate.to_dict("index").items()}
    short = {a: f"#{i + 1}" for i, a in enumerate(names)}
    head = "".join(f"<th title='{html.escape(a, quote=True)}'>{short[a]}</th>" for a in names)
    matrix = "".join(
        f"<tr><th class='l'>{short[a]} {html.escape(a)}</th>"
        + "".join(f"<td>{_f(100 * win[a][b])}</td>" if a != b else "<td></td>" for b in names)
        + "</tr>"
        for a in names
    )
    bias = (
        f"Position: the left image won {100 * ratings.left_share:.0f}% of decisive votes "
        f"(exact binomial p={ratings.left_p_value:.2g}; 50% = no position bias)."
        if not np.isnan(ratings.left_share)
        else "No decisive votes yet (only ties or 'both bad')."
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in ratings.notes)
    return (
        f"<style>{ARENA_CSS}</style><h2 id='arena'>Human preference (arena)</h2>"
        f"<p>{ratings.n_votes} blind pairwise votes by {ratings.n_raters} rater(s). Bradley–Terry ratings "
        "on the Elo scale (mean of the rated arms = 1000; 400 points = 10:1 odds), fitted by maximum "
        f"likelihood with ties and 'both bad' as half a win each; {pct}% intervals from a bootstrap over "
        f"votes. {html.escape(bias)}</p>"
        f"<ul>{notes}</ul>"
        "<table class='arena' id='arena-table'><thead><tr><th>arm</th><th>Elo</th>"
        f"<th>{pct}% interval</th><th>votes</th><th>won / lost / tied</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        "<p>Win rate (%) of the row against the column (ties count half; blank = never compared):</p>"
        f"<table class='arena' id='arena-winrate'><thead><tr><th></th>{head}</tr></thead>"
        f"<tbody>{matrix}</tbody></table>"
    )

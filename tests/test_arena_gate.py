"""The gate's Elo check: `bench rate CANDIDATE --against BASELINE` votes; a candidate rated wholly below fails."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from _report_runs import NOCOLOR_TARGETS, bench, make_run

from bench.arena.app import Arena
from bench.arena.pairs import BASELINE_PREFIX
from bench.arena.votes import VOTES_FILE, Vote, read_votes
from bench.gate import GateConfig, compare


def _cast(arena: Arena, n: int, loser: str | None) -> None:
    """n votes through the arena's scheduler: `loser` (an arm) always loses; everything else ties."""
    for i in range(n):
        offer = arena.scheduler.next_offer("gate", arena.log.votes)
        assert offer is not None
        arena.scheduler.answer("gate", offer.token)
        choice = "tie"
        if offer.left.arm == loser:
            choice = "right"
        elif offer.right.arm == loser:
            choice = "left"
        arena.log.append(Vote(f"g{i}", dt.datetime.now(dt.UTC).isoformat(), "gate", offer.prompt_id, offer.prompt,
                              offer.side(offer.left), offer.side(offer.right), choice))  # fmt: skip


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("arena_gate")
    return make_run(root, "base"), make_run(root, "nocolor", NOCOLOR_TARGETS)


def test_candidate_rated_wholly_below_its_baseline_fails(runs: tuple[Path, Path]) -> None:
    base, cand = runs
    (cand / VOTES_FILE).unlink(missing_ok=True)
    arena = Arena.open(cand, "gate", seed=0, against=base)
    fast = next(a for a in arena.scheduler.arms if a.startswith("local:shapes-fast"))
    assert BASELINE_PREFIX + fast in arena.scheduler.arms
    _cast(arena, 60, loser=fast)  # the colour-blind candidate loses every time it is shown
    votes = read_votes(cand / VOTES_FILE)
    assert any(BASELINE_PREFIX + fast in (v.left.arm, v.right.arm) and fast in (v.left.arm, v.right.arm)
               for v in votes)  # fmt: skip
    result = compare(base, cand, GateConfig())
    elo = {c.target: c for c in result.checks if c.metric == "arena_elo"}
    assert elo[fast].status == "FAIL" and elo[fast].delta < 0
    assert "candidate" in elo[fast].detail and "baseline" in elo[fast].detail
    quality = next(a for a in elo if a.startswith("local:shapes-quality"))
    assert elo[quality].status == "pass"
    # The candidate's own summary carries its arms' Elo (the baseline's arms are not summary rows).
    assert bench("report", str(cand), "report.n_boot=200").returncode == 0
    summary = pd.read_parquet(cand / "summary.parquet").set_index("target")
    assert (
        summary.loc["local:shapes-fast", "arena_elo_ci_high"]
        < summary.loc["local:shapes-quality", "arena_elo"]
    )


def test_equal_candidates_pass_and_unpooled_votes_only_leave_a_note(runs: tuple[Path, Path]) -> None:
    base, cand = runs
    (cand / VOTES_FILE).unlink(missing_ok=True)
    arena = Arena.open(cand, "gate", seed=1, against=base)
    _cast(arena, 40, loser=None)  # all ties: nobody is worse
    result = compare(base, cand, GateConfig())
    assert {c.status for c in result.checks if c.metric == "arena_elo"} == {"pass"}
    (cand / VOTES_FILE).unlink()
    arena = Arena.open(cand, "gate", seed=2)  # rated without --against: no baseline arms in the pool
    _cast(arena, 10, loser=None)
    result = compare(base, cand, GateConfig())
    assert not [c for c in result.checks if c.metric == "arena_elo"]
    assert any("--against" in n for n in result.notes)

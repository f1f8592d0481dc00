"""The gate's Elo check: `bench rate CANDIDATE --against BASELINE` votes; a candidate rated wholly below fails."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_runs import NOCOLOR_TARGETS, bench_in_process, make_run

from bench.arena.app import Arena
from bench.arena.pairs import BASELINE_PREFIX, arm_images
from bench.arena.ratings import rate
from bench.arena.votes import VOTES_FILE, Side, Vote, read_votes
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


def test_candidate_rated_wholly_below_its_baseline_fails(
    runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert bench_in_process(capsys, "report", str(cand), "report.n_boot=200").returncode == 0
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


def _group_images(records: pd.DataFrame) -> dict[str, dict[str, str]]:
    """group label -> prompt_id -> one ok image sha256 (the images votes are cast on)."""
    out: dict[str, dict[str, str]] = {}
    for pid, arms in arm_images(records).items():
        for arm, images in arms.items():
            out.setdefault(arm, {})[pid] = images[0].sha256
    return out


def _side(arm: str, sha: str, run_path: str) -> Side:
    return Side(arm, sha, arm.split(" ")[0], {}, run_path)


def _planted(
    left: Side, right: Side, p_left: float, n: int, rng: np.random.Generator, pid: str
) -> list[Vote]:
    """n votes on one image pair, each from a rater of its own (one rater's repeat is one vote)."""
    out = []
    for i in range(n):
        choice = "left" if rng.random() < p_left else "right"
        rater = f"r{i}"
        out.append(
            Vote(
                f"{left.arm}-{right.arm}-{i}",
                "2026-01-01T00:00:00+00:00",
                rater,
                pid,
                "",
                left,
                right,
                choice,
            )
        )
    return out


def test_elo_regression_is_measured_from_the_comparison_votes_only(runs: tuple[Path, Path]) -> None:
    """True -261 Elo for the candidate's fast group; the baseline folder's 60 old votes must not move it."""
    base, cand = runs
    b_img = _group_images(pd.read_parquet(base / "records.parquet"))
    c_img = _group_images(pd.read_parquet(cand / "records.parquet"))
    fast = next(a for a in c_img if a.startswith("local:shapes-fast"))
    quality = next(a for a in c_img if a.startswith("local:shapes-quality"))
    pid = next(iter(c_img[fast]))
    rng = np.random.default_rng(261)
    p_loss = 1.0 / (1.0 + 10 ** (261 / 400))  # the candidate's chance against its baseline
    against = f"{BASELINE_PREFIX}{base.resolve()}"
    cand_fast = _side(fast, c_img[fast][pid], "")
    base_fast = _side(BASELINE_PREFIX + fast, b_img[fast][pid], against)
    cand_q = _side(quality, c_img[quality][pid], "")
    base_q = _side(BASELINE_PREFIX + quality, b_img[quality][pid], against)
    comparison = [
        *_planted(cand_fast, base_fast, p_loss, 90, rng, pid),
        *_planted(cand_q, base_q, 0.5, 30, rng, pid),
        *_planted(cand_fast, cand_q, 0.5, 30, rng, pid),
    ]
    # The baseline rated alone earlier: its arms carry the candidate's names, and fast won them all.
    old = _planted(
        _side(fast, b_img[fast][pid], ""), _side(quality, b_img[quality][pid], ""), 1.0, 60, rng, pid
    )
    for folder, votes in ((cand, comparison), (base, old)):
        (folder / VOTES_FILE).write_text("".join(v.to_json() + "\n" for v in votes), encoding="utf-8")
    try:
        cfg = GateConfig()
        result = compare(base, cand, cfg)
        elo = {c.target: c for c in result.checks if c.metric == "arena_elo"}
        # The same fit on the comparison's votes alone, arms named by run.
        alone = [
            replace(v, left=replace(v.left, arm=("c: " if v.left.run_path == "" else "b: ") + v.left.arm[-40:]),
                    right=replace(v.right, arm=("c: " if v.right.run_path == "" else "b: ") + v.right.arm[-40:]))
            for v in comparison
        ]  # fmt: skip
        truth = rate(alone, n_boot=cfg.n_boot, seed=cfg.seed, confidence=result.confidence_per_check)
        want = truth.difference("c: " + fast[-40:], "b: " + (BASELINE_PREFIX + fast)[-40:])
        assert elo[fast].delta == pytest.approx(want[0], abs=1e-6)
        assert (elo[fast].low, elo[fast].high) == pytest.approx(want[1:], abs=1e-6)
        assert -450 < elo[fast].delta < -150 and elo[fast].high < 0 and elo[fast].status == "FAIL"
        assert elo[quality].status == "pass"
        assert any("baseline folder's own 60 votes are not used" in n for n in result.notes)
    finally:
        (cand / VOTES_FILE).unlink(missing_ok=True)
        (base / VOTES_FILE).unlink(missing_ok=True)


def test_rating_against_a_baseline_spends_most_votes_on_the_same_group_before_and_after(
    runs: tuple[Path, Path],
) -> None:
    base, cand = runs
    (cand / VOTES_FILE).unlink(missing_ok=True)
    try:
        arena = Arena.open(cand, "gate", seed=5, against=base)
        _cast(arena, 90, loser=None)
        votes = read_votes(cand / VOTES_FILE)
        same_group = [
            v
            for v in votes
            if v.left.arm.removeprefix(BASELINE_PREFIX) == v.right.arm.removeprefix(BASELINE_PREFIX)
        ]
        assert len(votes) == 90
        assert all(v.left.arm != v.right.arm for v in same_group)  # one side is the baseline's
        assert len(same_group) >= 60, len(same_group)  # was 5 of 90 before
    finally:
        (cand / VOTES_FILE).unlink(missing_ok=True)

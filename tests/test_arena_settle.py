"""The arena settles the recommendation: the always-valid rule on head-to-head votes
(bench.decide.duels), its error rate in seeded simulations (tests/_arena_sim.py), and `bench rate`
on a study over real HTTP: the settle pairs, the settled message in the API and in the terminal."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
from _arena_sim import ALPHA, MARGIN, make_truth, run_arena
from _report_runs import BENCH, make_priced_study
from PIL import Image
from scipy.stats import binomtest

from bench.arena.app import Arena, build_app
from bench.arena.ratings import rate
from bench.arena.settle import CannotSettle
from bench.arena.votes import VOTES_FILE, Side, Vote, read_votes
from bench.decide.duels import ArenaRace, BetTracker, elo_of_score, score_of_elo
from bench.decide.sequential import max_log_wealth
from bench.emulators.serve import running


def test_the_vote_by_vote_bets_equal_the_adaptive_rules_bets() -> None:
    rng = np.random.default_rng(0)
    x = rng.choice([0.0, 0.5, 1.0], size=400, p=[0.45, 0.2, 0.35])
    for m in (0.3, score_of_elo(-25.0), 0.6):
        for side in (-1, +1):
            tracker = BetTracker(m, side)
            for v in x:
                tracker.update(float(v))
            reference = float(max_log_wealth(x[:, None], m, side, 0.75)[0])
            assert math.isclose(tracker.max_log_wealth, reference, rel_tol=1e-9, abs_tol=1e-12)


def test_the_margin_in_elo_is_bradley_terrys_expected_score_as_the_ratings_fit_it() -> None:
    assert math.isclose(score_of_elo(-25.0), 0.46408, abs_tol=1e-5)
    assert math.isclose(elo_of_score(score_of_elo(-25.0)), -25.0)
    # Two arms, 60 points of 100 to A: the maximum-likelihood Elo difference of bench.arena.ratings is
    # the one elo_of_score gives for a mean score of 0.6 (up to the fit's weak ridge).
    a, b = Side("A", "a", "A", {}, ""), Side("B", "b", "B", {}, "")
    votes = [Vote(str(i), "t", "r", "p", "", a, b, "left" if i < 60 else "right") for i in range(100)]
    ratings = rate(votes, n_boot=50)
    elo = dict(zip(ratings.table["arm"], ratings.table["elo"], strict=True))
    assert abs((elo["A"] - elo["B"]) - elo_of_score(0.6)) < 0.5


@pytest.mark.parametrize("votes", ["decisive", "ties"])
def test_a_cheap_group_exactly_on_the_margin_is_recommended_at_most_alpha(votes: str) -> None:
    """30 studies of 4 groups, the cheapest exactly 25 Elo below the best, looked at after every vote up
    to 1,500 votes: recommending the cheap one is the error the rule bounds by alpha (5%)."""
    rng = np.random.default_rng(22)
    bad = 0
    for _ in range(30):
        truth = make_truth("cheap_on_margin", votes, 4, rng)
        out = run_arena(truth, "settle", rng, max_votes=1500)
        bad += out.bad(truth)
    assert bad <= 1, bad  # 5% of 30 is 1.5
    assert binomtest(bad, 30, ALPHA, alternative="greater").pvalue > 0.05


def test_a_clear_winner_is_settled_correctly_with_far_fewer_votes_than_todays_pairs() -> None:
    rng = np.random.default_rng(5)
    settle, today = [], []
    for _ in range(8):
        truth = make_truth("clear_winner", "ties", 4, rng)
        new = run_arena(truth, "settle", np.random.default_rng(rng.integers(2**31)), max_votes=5000)
        old = run_arena(truth, "uncertainty", np.random.default_rng(rng.integers(2**31)), max_votes=5000)
        assert new.settled and new.recommended == truth.answer
        assert old.settled and old.recommended == truth.answer  # same rule, same answer
        settle.append(new.votes)
        today.append(old.votes)
    assert sum(today) > 2 * sum(settle), (settle, today)


def test_drops_are_final_and_the_messages_say_what_settled() -> None:
    race = ArenaRace(["cheap", "mid", "dear"], MARGIN, ALPHA)
    for _ in range(60):  # cheap loses every vote to dear: dropped; mid and dear tie
        race.add("cheap", "dear", 0.0)
    look = race.look()
    assert look.dropped == {"cheap": "dear"} and look.candidate == "mid" and not look.settled
    assert race.priority(look) == [("mid", "dear")]
    for _ in range(400):
        race.add("mid", "dear", 0.5)
    look = race.look()
    assert look.settled and look.recommended == "mid"
    assert race.message(look) == (
        "settled: mid is recommended; every cheaper group is worse beyond 25 Elo; you can stop"
    )
    for _ in range(200):  # later votes do not bring a dropped group back
        race.add("cheap", "dear", 1.0)
    assert race.look().dropped == {"cheap": "dear"}
    race2 = ArenaRace(["cheap", "dear"], MARGIN, ALPHA)
    rng = np.random.default_rng(3)  # cheap scores 0.5 on average against dear: as good, within 25 Elo
    for x in rng.choice([1.0, 0.5, 0.0], size=3000, p=[0.45, 0.1, 0.45]):
        race2.add("cheap", "dear", float(x))
    look2 = race2.look()
    assert look2.settled and look2.recommended == "cheap"
    assert re.fullmatch(
        r"settled: cheap is as good as dear within 25 Elo \(difference [+-]\d+ Elo, always-valid interval "
        r"-\d+ to [+-]\d+, 3000 votes\); you can stop",
        race2.message(look2),
    ), race2.message(look2)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study with a verdict: shapes-nocolor ($2/1k, every colour gray) against shapes-quality ($40/1k)."""
    return make_priced_study(tmp_path_factory.getbasetemp())


def _fresh(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "study"
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns(VOTES_FILE))
    return dst


def _saturation(data: bytes) -> float:
    import io

    with Image.open(io.BytesIO(data)) as im:
        return float(np.asarray(im.convert("RGB").convert("HSV"))[..., 1].mean())


def test_bench_rate_on_a_study_settles_and_says_so(study: Path, tmp_path: Path) -> None:
    folder = _fresh(study, tmp_path)
    verdict = json.loads((folder / "verdict.json").read_text())
    costs = {g["group"]: g["cost_per_1k_usd"] for g in verdict["groups"]}
    assert sorted(costs.values()) == [2.0, 40.0]
    cheap = min(costs, key=lambda g: costs[g])
    arena = Arena.open(folder, "ana", seed=1)
    assert arena.scheduler.settler is not None  # auto: a study with a verdict settles
    heard: list[str] = []
    arena.on_settled = heard.append
    with (
        running(build_app(arena)) as url,
        httpx.Client(base_url=url, timeout=10, headers={"origin": url}) as c,
    ):
        d = c.get("/api/next", params={"rater": "ana"}).json()
        assert d["settle"] == {"mode": "settle", "settled": False, "open": 1, "margin_elo": 25.0, "votes": 0}
        assert "local:" not in json.dumps(d)  # no names before it is settled
        n = 0
        while not d["settle"]["settled"]:
            # A rater who prefers colour: the colourful image wins.
            left, right = (_saturation(c.get(d[s]).content) for s in ("left", "right"))
            d = c.post("/api/vote", json={"token": d["token"], "choice": "left" if left > right else "right",
                                          "rater": "ana"}).json()  # fmt: skip
            n += 1
            assert n < 40
    message = d["settle"]["message"]
    assert message == (
        "settled: local:shapes-quality steps=4 cfg=2 128x128 is recommended; every cheaper group is worse "
        "beyond 25 Elo; you can stop"
    )
    assert heard == [message]  # the terminal hears it once
    votes = read_votes(folder / VOTES_FILE)
    assert len(votes) == n and all({v.left.arm, v.right.arm} == set(costs) for v in votes)
    assert sum((v.left.arm == cheap) == (v.choice == "right") for v in votes) == n  # the cheap one lost each
    # Restarted on the same votes: settled at once, said at startup (the terminal line).
    proc = subprocess.Popen([*BENCH, "rate", str(folder), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert "pairs: settle the recommendation (2 contenders" in lines[1]
    assert lines[2].strip() == f"bench rate: {message}"


def test_todays_pairs_stay_available_and_settle_needs_a_verdict(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.arena.cli import main

    folder = _fresh(study, tmp_path)
    assert Arena.open(folder, "ana", pairs="uncertainty").scheduler.settler is None
    (folder / "verdict.json").unlink()
    assert Arena.open(folder, "ana").scheduler.settler is None  # auto without a verdict: today's pairs
    with pytest.raises(CannotSettle, match=re.escape("no verdict.json: run `bench recommend")):
        Arena.open(folder, "ana", pairs="settle")
    assert main([str(folder), "--pairs", "settle", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pairs settle" in err and "bench recommend" in err
    assert main([str(folder), "--margin", "-3", "--port", "0"]) == 2
    assert "--margin -3: give a margin > 0" in capsys.readouterr().err

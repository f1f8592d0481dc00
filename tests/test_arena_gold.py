"""Gold pairs (a real image against a blank one) flag careless raters; their votes can be left out."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
from test_arena_raters import _run

from bench.arena.agreement_report import gold_html
from bench.arena.app import Arena, build_app
from bench.arena.gold import BLANK_FILE, GOLD_FILE, GoldResult, gold_due
from bench.arena.report import arena_ratings
from bench.arena.votes import VOTES_FILE, read_votes
from bench.emulators.serve import running
from bench.report.runs import RunSet

SLIP = 0.03  # a careful rater's mistakes on an obvious pair (a mis-key)
CARELESS_PASS = 0.25  # a careless rater pressing one of the four keys at random


def flag_rate(pass_prob: float, n_gold: int, reps: int = 4000, seed: int = 0) -> float:
    """Share of simulated raters with n_gold gold answers that GoldResult flags."""
    passed = np.random.default_rng(seed).binomial(n_gold, pass_prob, size=reps)
    return float(np.mean([GoldResult("r", int(p), n_gold - int(p)).flagged for p in passed]))


def table() -> dict[int, tuple[float, float]]:
    return {k: (flag_rate(1 - SLIP, k), flag_rate(CARELESS_PASS, k)) for k in (2, 3, 4, 6, 10)}


def test_flag_rule_error_rates() -> None:
    rates = table()
    # From 4 gold pairs: a careless rater is flagged at least 90% of the time, a careful one at most 1%.
    for k in (4, 6, 10):
        careful, careless = rates[k]
        assert careful <= 0.01 and careless >= 0.9, rates
    # A rater who answered a single gold pair is never flagged for one slip.
    assert not GoldResult("r", 0, 1).flagged


def test_gold_due_spacing() -> None:
    assert [a for a in range(25) if gold_due(a, 10)] == [5, 15]
    assert not any(gold_due(a, 0) for a in range(25))


def test_gold_pairs_flag_a_careless_rater_and_exclude_their_votes(tmp_path: Path) -> None:
    folder = _run(tmp_path / "run", prompts=4)
    arena = Arena.open(folder, "owner", seed=4)
    arena.enable_gold(4)
    blank = (folder / BLANK_FILE).read_bytes()
    with running(build_app(arena)) as url, httpx.Client(base_url=url, timeout=10) as c:
        for rater in ("careful", "careless"):
            d = c.get("/api/next", params={"rater": rater}).json()
            for _ in range(16):
                left_blank = c.get(d["left"]).content == blank
                right_blank = c.get(d["right"]).content == blank
                choice = "tie" if rater == "careless" else "right" if left_blank else "left"
                assert not (left_blank and right_blank)
                r = c.post("/api/vote", json={"token": d["token"], "choice": choice, "rater": rater},
                           headers={"origin": url})  # fmt: skip
                assert r.status_code == 200, r.text
                d = r.json()
            assert d["progress"]["yours"] == 16  # gold answers count as progress: the page moves on
    gold = [json.loads(line) for line in (folder / GOLD_FILE).read_text().splitlines()]
    assert (
        sorted((g["rater"], g["passed"]) for g in gold) == [("careful", True)] * 4 + [("careless", False)] * 4
    )
    votes = read_votes(folder / VOTES_FILE)
    assert len(votes) == 24 and all("gold" not in v.left.arm + v.right.arm for v in votes)  # never a vote
    runs = RunSet.load(folder)
    counted = arena_ratings(runs, n_boot=20)
    kept = arena_ratings(runs, n_boot=20, exclude_flagged=True)
    assert counted is not None and counted.n_raters == 2 and counted.n_votes == 24
    assert kept is not None and kept.n_raters == 1 and kept.n_votes == 12
    page = gold_html(runs, excluded=True)
    assert "careless</td><td>0</td><td>4</td><td class='l'>FLAGGED" in page
    assert "careful</td><td>4</td><td>0</td><td class='l'>ok" in page


if __name__ == "__main__":
    print(f"gold pairs per rater: flagged careful (slip {SLIP:.0%}) / careless (random key)")
    for k, (careful, careless) in table().items():
        print(f"  {k:3d}: {100 * careful:.1f}% / {100 * careless:.1f}%")

"""Bradley–Terry / Elo from votes: simulated tournaments with known strengths, ties, position bias."""

from __future__ import annotations

import numpy as np
import pytest

from bench.arena.ratings import rate
from bench.arena.votes import Side, Vote

TRUE_ELO = {"a": 1250.0, "b": 1150.0, "c": 1100.0, "d": 1000.0, "e": 950.0, "f": 750.0}


def _side(arm: str) -> Side:
    return Side(arm, f"sha-{arm}", arm, {"steps": None, "guidance": None, "size": None}, "")


def _vote(i: int, a: str, b: str, choice: str, rater: str = "r") -> Vote:
    return Vote(str(i), "2026-01-01T00:00:00+00:00", rater, "p", "prompt", _side(a), _side(b), choice)


def tournament(rng: np.random.Generator, n_votes: int, truth: dict[str, float] = TRUE_ELO) -> list[Vote]:
    """Random pairs, outcomes drawn from the Bradley–Terry model with the true ratings."""
    names = list(truth)
    votes = []
    for i in range(n_votes):
        a, b = rng.choice(names, size=2, replace=False)
        p_a = 1.0 / (1.0 + 10 ** ((truth[b] - truth[a]) / 400.0))
        votes.append(_vote(i, str(a), str(b), "left" if rng.random() < p_a else "right"))
    return votes


def _centred_truth() -> dict[str, float]:
    mean = float(np.mean(list(TRUE_ELO.values())))
    return {k: v - mean + 1000.0 for k, v in TRUE_ELO.items()}


def test_recovers_order_and_spacing_within_the_intervals() -> None:
    # 99% intervals: six arms at once stay covered with ~94% probability (Bonferroni), not ~74%.
    r = rate(tournament(np.random.default_rng(0), 1500), n_boot=400, seed=1, confidence=0.99)
    table = r.table.set_index("arm")
    assert list(r.table["arm"]) == ["a", "b", "c", "d", "e", "f"]  # best first, the true order
    truth = _centred_truth()
    for arm, true in truth.items():
        row = table.loc[arm]
        assert row.elo_low <= true <= row.elo_high, (arm, true, row.elo_low, row.elo_high)
        assert row.elo_high - row.elo_low < 150  # 1500 votes pin each rating to within tens of points
    # Spacing: every estimated gap is within the combined interval half-widths of the true gap.
    for x, y in [("a", "b"), ("b", "d"), ("e", "f"), ("a", "f")]:
        est = table.loc[x, "elo"] - table.loc[y, "elo"]
        slack = (
            table.loc[x, "elo_high"]
            - table.loc[x, "elo_low"]
            + table.loc[y, "elo_high"]
            - table.loc[y, "elo_low"]
        ) / 2
        assert abs(est - (TRUE_ELO[x] - TRUE_ELO[y])) <= slack
    assert table["elo"].mean() == pytest.approx(1000.0)
    assert int(table["votes"].sum()) == 2 * 1500


def test_intervals_cover_the_true_ratings_across_tournaments() -> None:
    rng = np.random.default_rng(42)
    truth = _centred_truth()
    covered = total = 0
    for rep in range(12):
        table = rate(tournament(rng, 400), n_boot=300, seed=rep).table
        for row in table.itertuples(index=False):
            covered += row.elo_low <= truth[str(row.arm)] <= row.elo_high
            total += 1
    assert covered / total >= 0.88, covered / total  # nominal 0.95 per arm


def test_ties_and_both_bad_count_as_half_a_win() -> None:
    votes = [_vote(0, "x", "y", "left"), _vote(1, "y", "x", "right"), _vote(2, "x", "y", "tie"),
             _vote(3, "y", "x", "both_bad")]  # fmt: skip
    r = rate(votes, n_boot=50)
    table = r.table.set_index("arm")
    # x scored 3 of 4 points: odds 3:1, an Elo gap of 400*log10(3) (the tiny ridge shaves < 1 point).
    gap = table.loc["x", "elo"] - table.loc["y", "elo"]
    assert gap == pytest.approx(400 * np.log10(3.0), abs=1.0)
    assert r.win_rate.loc["x", "y"] == pytest.approx(0.75) and r.win_rate.loc["y", "x"] == pytest.approx(0.25)
    assert table.loc["x", "ties"] == 2 and table.loc["x", "wins"] == 2 and table.loc["y", "losses"] == 2


def test_position_bias_is_measured_and_few_votes_are_flagged() -> None:
    votes = [_vote(i, "x", "y", "left") if i % 2 else _vote(i, "y", "x", "left") for i in range(20)]
    r = rate(votes, n_boot=50)
    assert r.left_share == 1.0 and r.left_p_value < 1e-4  # the left image always won: position bias
    assert any("few votes" in n for n in r.notes)


def test_arms_never_compared_with_the_rest_get_no_rating() -> None:
    votes = [_vote(0, "x", "y", "left"), _vote(1, "x", "y", "right"), _vote(2, "x", "y", "left"),
             _vote(3, "u", "v", "left")]  # fmt: skip
    r = rate(votes, n_boot=50, arms=["x", "y", "u", "v", "w"])
    table = r.table.set_index("arm")
    assert np.isfinite(table.loc["x", "elo"]) and np.isfinite(table.loc["y", "elo"])
    assert np.isnan(table.loc["u", "elo"]) and np.isnan(table.loc["w", "elo"])
    assert table.loc["w", "votes"] == 0
    assert any("not compared" in n for n in r.notes)
    assert np.isnan(r.win_rate.loc["x", "u"])


def test_no_votes_gives_no_ratings() -> None:
    r = rate([], arms=["x", "y"])
    assert r.empty and r.table["elo"].isna().all()

"""Agreement of automated signals with arena votes: tie rules, Kendall's τ, Krippendorff's α, intervals."""

from __future__ import annotations

import _agreement_sim as sim
import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from bench.arena.agreement import (
    MIN_VOTES,
    compute_agreement,
    inter_rater,
    preferred_signal,
    vote_agreement,
)
from bench.arena.votes import Side, Vote


def _side(sha: str, arm: str | None = None) -> Side:
    return Side(arm or f"arm-{sha}", sha, "t", {}, "")


def _vote(i: int, a: str, b: str, choice: str, rater: str = "r", arms: tuple[str, str] | None = None) -> Vote:
    arm_a, arm_b = arms or (None, None)
    return Vote(
        str(i), f"2026-01-01T00:00:{i % 60:02d}", rater, "p", "", _side(a, arm_a), _side(b, arm_b), choice
    )


def test_pairwise_accuracy_tie_rules() -> None:
    scores = {"x": 3.0, "y": 1.0, "z": 1.0}
    votes = [
        _vote(0, "x", "y", "left"),  # signal agrees: 1
        _vote(1, "x", "y", "right"),  # signal disagrees: 0
        _vote(2, "y", "z", "left"),  # signal tie: 0.5
        _vote(3, "x", "y", "tie"),  # rater tie: left out, counted
        _vote(4, "x", "y", "both_bad"),  # counted as a rater tie
        _vote(5, "x", "w", "left"),  # w unscored: left out, counted
    ]
    agree, used, tied, unscored = vote_agreement(votes, scores)
    assert list(used) == [1, 1, 1, 0, 0, 0]
    assert list(agree[:3]) == [1.0, 0.0, 0.5]
    assert (tied, unscored) == (2, 1)


def _study(rng: np.random.Generator, n_votes: int) -> tuple[list[Vote], pd.DataFrame, dict[str, str]]:
    """Four arms of known quality, 5 images each; votes from the Bradley–Terry model on image quality.

    Signal `pickscore` = image quality (agrees by construction); `clip` = minus quality (disagrees).
    """
    arm_quality = {"A": 1.5, "B": 0.5, "C": -0.5, "D": -1.5}
    images = {
        arm: [(f"{arm}{j}", q + 0.3 * rng.standard_normal()) for j in range(5)]
        for arm, q in arm_quality.items()
    }
    quality = {sha: q for imgs in images.values() for sha, q in imgs}
    arm_of = {sha: arm for arm, imgs in images.items() for sha, _ in imgs}
    votes = []
    arms = list(arm_quality)
    for i in range(n_votes):
        a, b = rng.choice(arms, size=2, replace=False)
        x = images[str(a)][int(rng.integers(5))][0]
        y = images[str(b)][int(rng.integers(5))][0]
        p_left = 1 / (1 + np.exp(-(quality[x] - quality[y])))
        choice = "tie" if rng.random() < 0.1 else ("left" if rng.random() < p_left else "right")
        votes.append(_vote(i, x, y, choice, rater=f"r{i % 3}", arms=(arm_of[x], arm_of[y])))
    records = pd.DataFrame(
        {
            "image_sha256": list(quality),
            "pickscore": list(quality.values()),
            "clip_score": [-q for q in quality.values()],
            "hpsv2": np.nan,  # not scored: no row
        }
    )
    return votes, records, arm_of


def test_agreeing_and_disagreeing_signals_by_construction() -> None:
    votes, records, arm_of = _study(np.random.default_rng(0), 300)
    result = compute_agreement(votes, records, arm_of, n_boot=300, seed=1)
    rows = {r.signal: r for r in result.rows}
    assert set(rows) == {"pickscore", "clip"}
    good, bad = rows["pickscore"], rows["clip"]
    assert good.n_used + good.n_tied_votes + good.n_unscored == len(votes)
    # The agreeing signal is right on most decisive votes, the mirror one on the rest: they sum to 1.
    assert good.accuracy == pytest.approx(1 - bad.accuracy)
    assert 0.7 < good.accuracy_low < good.accuracy < good.accuracy_high
    assert bad.accuracy_high < 0.3
    assert good.tau == pytest.approx(1.0) and bad.tau == pytest.approx(-1.0)
    assert good.n_arms == 4 and good.tau_low > 0
    best = preferred_signal(result)
    assert best is not None and best.signal == "pickscore"


def test_tau_matches_scipy_on_the_arms_mean_signal() -> None:
    votes, records, arm_of = _study(np.random.default_rng(3), 60)
    noisy = records.assign(
        pickscore=records["pickscore"] + np.random.default_rng(4).normal(0, 2, len(records))
    )
    result = compute_agreement(votes, noisy, arm_of, n_boot=50, seed=0)
    row = next(r for r in result.rows if r.signal == "pickscore")
    from bench.arena.ratings import rate

    elo = rate(votes, n_boot=10).table.set_index("arm")["elo"]
    means = noisy.assign(arm=noisy["image_sha256"].map(arm_of)).groupby("arm")["pickscore"].mean()
    arms = sorted(means.index)
    assert row.tau == pytest.approx(kendalltau(means[arms], elo[arms]).statistic)
    assert row.tau_low <= row.tau <= row.tau_high


def test_preferred_signal_needs_enough_votes() -> None:
    votes, records, arm_of = _study(np.random.default_rng(5), MIN_VOTES - 1)
    few = compute_agreement(votes, records, arm_of, n_boot=20)
    assert preferred_signal(few) is None
    # A signal that agrees with nobody is never preferred, however many votes.
    votes, records, arm_of = _study(np.random.default_rng(6), 200)
    worse = compute_agreement(votes, records.drop(columns=["pickscore"]), arm_of, n_boot=20)
    assert preferred_signal(worse) is None


def _alpha_nominal_reference(units: list[list[float]]) -> float:
    """Krippendorff's α for nominal data from the coincidence matrix (Krippendorff 2011, section C)."""
    values = sorted({v for u in units for v in u})
    o = np.zeros((len(values), len(values)))
    for u in units:
        m = len(u)
        if m < 2:
            continue
        for i, a in enumerate(u):
            for j, b in enumerate(u):
                if i != j:
                    o[values.index(a), values.index(b)] += 1 / (m - 1)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    d_o = o.sum() - np.trace(o)
    d_e = (n * n - (n_c**2).sum()) / (n - 1)
    return float(1 - d_o / d_e)


def test_inter_rater_alpha_against_the_textbook_formula() -> None:
    # Pair (a, b) is shown to bob the other way round: his "right" is the same answer as alice's "left".
    votes = [
        _vote(0, "a", "b", "left", "alice"),
        _vote(1, "b", "a", "right", "bob"),
        _vote(2, "c", "d", "left", "alice"),
        _vote(3, "c", "d", "tie", "bob"),
        _vote(4, "e", "f", "right", "alice"),
        _vote(5, "e", "f", "right", "bob"),
        _vote(6, "e", "f", "left", "carol"),
        _vote(7, "g", "h", "left", "alice"),  # one rater only: not an overlapping pair
    ]
    result = inter_rater(votes)
    assert (result.n_pairs, result.n_raters) == (3, 3)
    # first image by sha preferred = 0, second = 1, no preference = 2
    units = [[0.0, 0.0], [0.0, 2.0], [1.0, 1.0, 0.0]]
    assert result.alpha == pytest.approx(_alpha_nominal_reference(units))
    assert np.isnan(inter_rater(votes[:1]).alpha) and inter_rater(votes[:1]).n_pairs == 0


@pytest.mark.parametrize(("true_p", "n"), [(0.8, 40), (0.95, 60)])
def test_accuracy_interval_covers_the_true_agreement(true_p: float, n: int) -> None:
    """Percentile bootstrap over votes: 95% intervals cover the true agreement rate ~95% of the time.

    0.8 is the symmetric case; 0.95 near the ceiling is the skewed one (a lopsided proportion).
    """
    rng = np.random.default_rng(12)
    covered = 0
    reps = 200
    for _ in range(reps):
        agree = rng.random(n) < true_p
        votes = [_vote(i, f"w{i}", f"l{i}", "left", arms=("A", "B")) for i in range(n)]
        scores = {f"w{i}": float(agree[i]) for i in range(n)} | {f"l{i}": 0.5 for i in range(n)}
        records = pd.DataFrame({"image_sha256": list(scores), "pickscore": list(scores.values())})
        row = compute_agreement(votes, records, {}, n_boot=400, seed=int(rng.integers(1 << 30))).rows[0]
        covered += row.accuracy_low <= true_p <= row.accuracy_high
    assert 0.88 <= covered / reps <= 0.99, covered / reps


@pytest.mark.parametrize("dist", ["normal", "skewed"])
def test_min_votes_picks_the_agreeing_signal_90_percent_of_the_time(dist: str) -> None:
    sigmas = {name: sim.calibrate(t, dist) for name, t in sim.TARGETS.items()}
    rates = {name: sim.agreement_rate(s, dist, seed=11) for name, s in sigmas.items()}
    assert rates["pickscore"] == pytest.approx(0.80, abs=0.01) and rates["clip"] == pytest.approx(
        0.55, abs=0.01
    )
    assert sim.pick_rate(MIN_VOTES, dist, sigmas) >= 0.9
    # MIN_VOTES is the smallest of the simulated sizes that does it, not a padded guess.
    smaller = max(n for n in sim.GRID if n < MIN_VOTES)
    assert sim.pick_rate(smaller, dist, sigmas) < 0.9

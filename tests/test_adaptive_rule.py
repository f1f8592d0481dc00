"""The adaptive rule's error rates under repeated looks (seeded simulations, normal and skewed data).

docs/adaptive.md states these figures and the benchmark's (tests/benchmarks/bench_adaptive.py)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from _adaptive_sim import grid_recommendation, make_truth, run_adaptive

from bench.decide.sequential import (
    GroupEvidence,
    PairScale,
    SequentialRules,
    confidence_sequence,
    look,
    shown,
)
from bench.decide.settings import Constraints

Draw = Callable[[np.random.Generator, tuple[int, int]], np.ndarray]


def _normal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return np.clip(0.5 + rng.normal(0.0, 0.15, shape), 0.2, 0.8)  # symmetric cut: mean stays 0.5


def _skewed(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return np.where(rng.random(shape) < 0.1, 0.5 - 0.36, 0.5 + 0.04)  # mean 0.5, a rare deep failure


@pytest.mark.parametrize("draw", [_normal, _skewed], ids=["normal", "skewed"])
def test_a_true_null_is_rejected_at_most_alpha_of_the_time_over_every_look(draw: Draw) -> None:
    """Mean exactly on the threshold, 400 sequences of 1,000 looks each (one after every
    observation, the most a study could take): the share ever rejected stays <= alpha, both sides."""
    rng = np.random.default_rng(7)
    x = draw(rng, (1000, 400))
    for side in (+1, -1):
        rate = float(shown(x, 0.5, side, 0.05, 0.5).mean())
        assert rate <= 0.05, (side, rate)


def test_a_naive_fixed_sample_test_at_every_look_would_not_hold_its_level() -> None:
    """Why always-valid: a one-sided z-test at 5% repeated after every 20 observations rejects a
    true null far more often than 5% over 1,000 observations (the bet stays below it, above)."""
    rng = np.random.default_rng(7)
    x = _normal(rng, (1000, 400))
    t = np.arange(1, 1001)[:, None]
    mean = np.cumsum(x, axis=0) / t
    sd = np.sqrt(np.maximum(np.cumsum(x * x, axis=0) / t - mean**2, 1e-12))
    z = (mean - 0.5) / (sd / np.sqrt(t))
    looks = z[19::20]
    assert float((looks > 1.645).any(axis=0).mean()) > 0.10


@pytest.mark.parametrize("draw", [_normal, _skewed], ids=["normal", "skewed"])
def test_the_confidence_sequence_covers_the_mean_and_shrinks(draw: Draw) -> None:
    rng = np.random.default_rng(3)
    covered = 0
    widths = []
    for _ in range(40):
        x = draw(rng, (600, 1))[:, 0]
        lo, hi = confidence_sequence(x, 0.05, 0.5)
        covered += lo <= 0.5 <= hi
        widths.append(hi - lo)
    assert covered >= 38  # two-sided, each side at 5%
    assert float(np.mean(widths)) < 0.25  # it says something after 600 observations


@pytest.mark.parametrize("noise", ["normal", "skewed"])
def test_a_cheap_model_exactly_on_the_margin_is_recommended_at_most_alpha_of_the_time(noise: str) -> None:
    """The hardest case for the guarantee: the cheapest model is 1 margin below the best.
    Studies of 5 models x 300 prompts, looked at after every round."""
    rng = np.random.default_rng(11 if noise == "normal" else 12)
    hits = 0
    for _ in range(40):
        truth = make_truth("cheap_on_margin", noise, 5, 300, rng)
        hits += run_adaptive(truth).recommended == "m0"
    assert hits / 40 <= 0.05


@pytest.mark.parametrize("noise", ["normal", "skewed"])
def test_a_cheap_model_within_the_margin_is_found_for_less_than_the_grid(noise: str) -> None:
    rng = np.random.default_rng(21 if noise == "normal" else 22)
    found, shares = 0, []
    for i in range(10):
        truth = make_truth("cheap_within", noise, 5, 600, rng)
        out = run_adaptive(truth)
        found += out.recommended == "m0" == grid_recommendation(truth, n_boot=400, seed=i)
        shares.append(out.cost_share)
    assert found >= 9
    assert float(np.mean(shares)) < 0.6


def test_same_data_same_decisions() -> None:
    a = run_adaptive(make_truth("all_within", "skewed", 6, 400, np.random.default_rng(5)))
    b = run_adaptive(make_truth("all_within", "skewed", 6, 400, np.random.default_rng(5)))
    assert (a.recommended, a.rounds, a.prompts_per_model.tolist()) == (
        b.recommended,
        b.rounds,
        b.prompts_per_model.tolist(),
    )
    assert [d.reason for d in a.drops] == [d.reason for d in b.drops]


def _group(name: str, scores: np.ndarray, cost: float, **kw: np.ndarray) -> GroupEvidence:
    return GroupEvidence(name, scores, cost_per_1k_usd=cost, cheapest_image_usd=cost / 1000, **kw)  # type: ignore[arg-type]


def test_a_constraint_shown_unmet_drops_a_group_with_the_numbers() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.7, 200)
    rules = SequentialRules(
        margin=0.05, alpha=0.05, score_low=0.0, score_high=1.0,
        constraints=Constraints(max_refusal_rate=0.1, max_p90_latency=5.0, max_cost_per_1k=20.0),
    )  # fmt: skip
    refuses = (rng.random(200) < 0.5).astype(float)
    slow = rng.uniform(4.0, 12.0, 200)  # p90 ~ 11 s
    groups = [
        _group("good", base.copy(), 10.0, refused=np.zeros(200), latencies_s=np.full(200, 1.0)),
        _group("refuser", base.copy(), 1.0, refused=refuses, latencies_s=np.full(200, 1.0)),
        _group("slow", base.copy(), 2.0, refused=np.zeros(200), latencies_s=slow),
        _group("dear", base.copy(), 30.0, refused=np.zeros(200), latencies_s=np.full(200, 1.0)),
    ]
    state = look(groups, {}, rules, 1)
    kinds = {d.group: d.kind for d in state.drops}
    assert kinds == {"refuser": "refusal", "slow": "latency", "dear": "cost"}
    refusal = next(d for d in state.drops if d.group == "refuser")
    assert refusal.low > 0.1 and refusal.n == 200 and "refusal rate" in refusal.reason
    assert state.settled and state.recommended == "good"


def test_a_clearly_worse_group_is_dropped_with_its_interval_and_the_cheap_equal_one_settles() -> None:
    rng = np.random.default_rng(1)
    difficulty = rng.uniform(0.35, 0.75, 500)
    noise = lambda: rng.normal(0.0, 0.05, 500)  # noqa: E731
    groups = [
        _group("cheap", np.clip(difficulty + noise(), 0, 1), 1.0),
        _group("best", np.clip(difficulty + 0.01 + noise(), 0, 1), 30.0),
        _group("worse", np.clip(difficulty - 0.2 + noise(), 0, 1), 5.0),
    ]
    rules = SequentialRules(margin=0.05, alpha=0.05, score_low=0.0, score_high=1.0)
    state = look(groups, {}, rules, 1)
    drop = next(d for d in state.drops if d.group == "worse")
    assert drop.kind == "quality" and drop.high < -0.05 and drop.low <= drop.diff <= drop.high
    against = next(g for g in groups if g.name == drop.against)
    assert math.isclose(drop.diff, float(np.mean(groups[2].scores - against.scores)), rel_tol=1e-9)
    assert state.settled and state.recommended == "cheap"
    pair = state.vs_candidate[0]
    assert pair.non_inferior and pair.low > -0.05


def test_pair_scale_round_trips() -> None:
    scale = PairScale(1.0, 10.0)
    assert math.isclose(scale.from_unit(float(scale.to_unit(-2.5))), -2.5)

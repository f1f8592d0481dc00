"""Synthetic model-selection studies with known truth, run adaptively (bench.decide.sequential) and
as the full grid (bench.decide.verdict.decide on every prompt of every model).

Scores live in [0, 1] like the judge's adherence (margin 0.05). Each prompt has a difficulty shared
by all models (what pairing removes); each image its own noise: normal (sd 0.08, cut at +-0.2,
symmetric so the mean stays 0) or skewed (a two-point law: -0.27 one time in ten, +0.03 otherwise;
mean 0, sd 0.09: now and then a model fails a prompt badly). Costs per image spread 30x.
Shapes of truth (gaps below the best, in margins):
- clear_winner: one model 2-5 margins above all others, at a random cost;
- cheap_within: the cheapest model 0.4 margins below the best (the most expensive), the rest 2-4 below;
- all_within: every model within 0.4 margins of the best;
- cheap_on_margin: the cheapest model exactly 1 margin below the best (must not be recommended
  more often than alpha), the rest 2-4 below.
Used by tests/test_adaptive_rule.py (small, fast) and tests/benchmarks/bench_adaptive.py (200 x 10 x 1000).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.decide.sequential import Drop, GroupEvidence, SequentialRules, look
from bench.decide.settings import DecideSettings
from bench.decide.verdict import decide

MARGIN = 0.05
SHAPES = ("clear_winner", "cheap_within", "all_within", "cheap_on_margin")


@dataclass(frozen=True)
class Truth:
    shape: str
    noise: str  # normal | skewed
    means: np.ndarray  # true mean score per model
    cost_per_image_usd: np.ndarray
    scores: np.ndarray  # models x prompts, in the study's prompt order

    @property
    def eligible(self) -> np.ndarray:
        """Models whose true gap to the best is within the margin (the others must not be recommended)."""
        return np.asarray(self.means.max() - self.means < MARGIN - 1e-12)


def make_truth(shape: str, noise: str, models: int, prompts: int, rng: np.random.Generator) -> Truth:
    cost = np.geomspace(0.001, 0.030, models)  # USD per image: 30x from cheapest to dearest
    gaps = rng.uniform(2.0, 4.0, models)  # margins below the best
    if shape == "clear_winner":
        gaps = rng.uniform(2.0, 5.0, models)
        gaps[rng.integers(models)] = 0.0
    elif shape == "cheap_within":
        gaps[-1], gaps[0] = 0.0, 0.4
    elif shape == "all_within":
        gaps = rng.uniform(0.0, 0.4, models)
        gaps[rng.integers(models)] = 0.0
    elif shape == "cheap_on_margin":
        gaps[-1], gaps[0] = 0.0, 1.0
    else:
        raise ValueError(shape)
    means = 0.6 - MARGIN * gaps
    difficulty = rng.uniform(-0.1, 0.1, prompts)
    if noise == "normal":
        eps = np.clip(rng.normal(0.0, 0.08, (models, prompts)), -0.2, 0.2)
    else:
        eps = np.where(rng.random((models, prompts)) < 0.1, -0.27, 0.03)
    scores = means[:, None] + difficulty[None, :] + eps
    return Truth(shape, noise, means, cost, scores)


@dataclass(frozen=True)
class Outcome:
    recommended: str | None
    settled: bool
    prompts_per_model: np.ndarray
    cost_share: float  # of the full grid's cost
    rounds: int
    drops: list[Drop]


def names(k: int) -> list[str]:
    return [f"m{i}" for i in range(k)]


def run_adaptive(
    truth: Truth,
    *,
    alpha: float = 0.05,
    first_round: int = 10,
    round_prompts: int = 20,
    max_prompts: int | None = None,
) -> Outcome:
    k, n = truth.scores.shape
    limit = min(n, max_prompts or n)
    rules = SequentialRules(margin=MARGIN, alpha=alpha, score_low=0.0, score_high=1.0)
    labels = names(k)
    asked = np.zeros(k, dtype=int)
    dropped: dict[str, Drop] = {}
    done, rnd = 0, 0
    state = None
    while done < limit:
        step = first_round if rnd == 0 else round_prompts
        done = min(limit, done + step)
        rnd += 1
        for i, name in enumerate(labels):
            if name not in dropped:
                asked[i] = done
        groups = [
            GroupEvidence(
                name, truth.scores[i, : asked[i]].astype(np.float64), cost_per_1k_usd=1000 * truth.cost_per_image_usd[i],
                cheapest_image_usd=float(truth.cost_per_image_usd[i]),
            )
            for i, name in enumerate(labels)
        ]  # fmt: skip
        state = look(groups, dropped, rules, rnd, intervals=False)
        dropped.update({d.group: d for d in state.drops})
        if state.settled:
            break
    assert state is not None
    spent = float(asked @ truth.cost_per_image_usd)
    grid = float(n * truth.cost_per_image_usd.sum())
    return Outcome(state.if_stopped, state.settled, asked, spent / grid, rnd, list(dropped.values()))


def grid_recommendation(
    truth: Truth, *, alpha: float = 0.05, n_boot: int = 1000, seed: int = 0
) -> str | None:
    """bench.decide's recommendation on the full grid (every prompt of every model)."""
    k, n = truth.scores.shape
    labels = names(k)
    records = pd.DataFrame(
        {
            "target": np.repeat(labels, n),
            "prompt_id": np.tile([f"p{p:04d}" for p in range(n)], k),
            "clip_score": truth.scores.ravel(),
            "status": "ok",
        }
    )
    summary = pd.DataFrame(
        {
            "target": labels,
            "group": labels,
            "cost_per_1k_usd": 1000 * truth.cost_per_image_usd,
            "latency_p90_s": 1.0,
            "refusal_rate": 0.0,
            "ok_rate": 1.0,
            "clip_mean": truth.scores.mean(axis=1),
            "clip_ci_low": math.nan,
            "clip_ci_high": math.nan,
            "clip_fingerprint": "clip:sim",
        }
    )
    settings = DecideSettings(
        signal="clip",
        margins={"clip": MARGIN},
        confidence=1 - alpha,
        n_boot=n_boot,
        seed=seed,
        max_categories=0,
    )
    return decide(summary, records, settings).recommended

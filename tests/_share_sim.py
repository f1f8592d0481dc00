"""Coverage of bench.stats.share_ci (Clopper–Pearson, with an effective n for clustered shares).

Three kinds of data, at the sizes users run (12-200 prompts) and shares near 0, near 1 and 0.5:
- iid: independent 0/1 outcomes (one request per prompt): coverage computed exactly from the
  binomial distribution, no simulation needed;
- clustered: 0/1 outcomes, 2 seeds per prompt, each prompt with its own chance (Beta-distributed
  around p, intra-prompt correlation 0.3): refusals and failures cluster on prompts;
- judged: per-image shares of 4 yes/no questions (the judge's adherence), 2 seeds per prompt,
  prompt-level difficulty as above.
Used by tests/test_share_ci.py (asserts) and tests/benchmarks/bench_share_ci.py (prints the table).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from bench.stats import share_ci

SEEDS = 2
ICC = 0.3  # intra-prompt correlation of the 0/1 outcomes
QUESTIONS = 4


def iid_coverage(n: int, p: float, confidence: float = 0.95) -> float:
    """Exact coverage: the binomial probability of every k whose interval holds p."""
    total = 0.0
    for k in range(n + 1):
        iv = share_ci(np.r_[np.ones(k), np.zeros(n - k)], confidence=confidence)
        if iv.low <= p <= iv.high:
            total += float(binom.pmf(k, n, p))
    return total


def _prompt_chances(rng: np.random.Generator, prompts: int, p: float) -> np.ndarray:
    # Beta(a, b) with mean p and a + b + 1 = 1 / ICC: outcomes of one prompt correlate by ICC.
    s = 1.0 / ICC - 1.0
    return rng.beta(p * s, (1.0 - p) * s, size=prompts)


def simulated_coverage(kind: str, prompts: int, p: float, reps: int, seed: int) -> float:
    """Share of `reps` simulated data sets whose interval holds the true share p."""
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(prompts), SEEDS)
    hits = 0
    for _ in range(reps):
        chance = np.repeat(_prompt_chances(rng, prompts, p), SEEDS)
        if kind == "clustered":
            values = (rng.random(prompts * SEEDS) < chance).astype(float)
        else:
            values = rng.binomial(QUESTIONS, chance) / QUESTIONS
        iv = share_ci(values, clusters=clusters)
        hits += iv.low <= p <= iv.high
    return hits / reps

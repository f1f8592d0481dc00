"""Synthetic studies with known true quality, cost and noise, run through bench.decide.decide.

Group 0 is the expensive best (true mean 0); group 1 is the cheapest, `gap` below it; the others
sit between them in cost and 2-4 margins below the best (clearly worse). Each prompt has a shared
difficulty (what pairing removes) and each image its own noise: normal, or skewed (a mean-zero
exponential pointing down: the cheap group fails badly now and then, the worst case for a lower
bound). Used by tests/test_decide_simulation.py (fast) and tests/benchmarks/bench_decide.py (table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.decide.settings import DecideSettings
from bench.decide.verdict import decide

MARGIN = 1.0  # CLIP's default margin: the simulation runs on the CLIP column
SEEDS = 2


@dataclass(frozen=True)
class Study:
    groups: int
    prompts: int
    gap: float  # true gap of the cheapest group below the best, in margins
    noise: str  # normal | skewed
    sigma: float = 2.0  # per-image noise sd, in margins


def simulate(study: Study, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, records) of one synthetic study, in the shapes bench.report.summary writes."""
    k, n = study.groups, study.prompts
    truth = np.concatenate([[0.0, -study.gap * MARGIN], -MARGIN * np.linspace(2.0, 4.0, k - 2)])
    cost = np.concatenate([[10.0, 1.0], np.linspace(2.0, 9.0, k - 2)])
    difficulty = rng.normal(0.0, 2.0, size=n)
    shape = (k, n, SEEDS)
    noise = rng.normal(0.0, study.sigma, size=shape)
    if study.noise == "skewed":
        noise[1] = -study.sigma * (rng.exponential(1.0, size=(n, SEEDS)) - 1.0)
    scores = 25.0 + truth[:, None, None] + difficulty[None, :, None] + noise
    g_idx, p_idx, s_idx = np.indices(shape).reshape(3, -1)
    prompt_ids = np.array([f"p{p:03d}" for p in range(n)])
    records = pd.DataFrame(
        {
            "target": np.array([f"g{g}" for g in range(k)])[g_idx],
            "prompt_id": prompt_ids[p_idx],
            "seed": s_idx,
            "clip_score": scores.ravel(),
            "status": "ok",
            "category": np.array([f"c{p % 3}" for p in range(n)])[p_idx],
        }
    )
    means = records.groupby("target")["clip_score"].mean()
    summary = pd.DataFrame(
        {
            "target": [f"g{g}" for g in range(k)],
            "group": [f"g{g}" for g in range(k)],
            "cost_per_1k_usd": cost,
            "latency_p90_s": 1.0,
            "refusal_rate": 0.0,
            "ok_rate": 1.0,
            "clip_mean": [means[f"g{g}"] for g in range(k)],
            "clip_ci_low": np.nan,
            "clip_ci_high": np.nan,
            "clip_fingerprint": "clip:ViT-B-32:openai:sim",
        }
    )
    return summary, records


def recommended_rate(study: Study, reps: int, seed: int = 0, n_boot: int = 1000) -> float:
    """Share of `reps` studies in which the cheapest group (g1) is recommended."""
    rng = np.random.default_rng(seed)
    hits = 0
    for r in range(reps):
        summary, records = simulate(study, rng)
        # The per-category view does not change the recommendation: left out to keep the loop fast.
        verdict = decide(summary, records, DecideSettings(n_boot=n_boot, seed=r, max_categories=0))
        hits += verdict.recommended == "g1"
    return hits / reps

"""Synthetic studies with known true quality, cost and noise, run through bench.decide.decide.

Group 0 is the expensive best (true mean 0); group 1 is the cheapest, `gap` below it; the others
sit between them in cost and 2-4 margins below the best (clearly worse). Each prompt has a shared
difficulty (what pairing removes) and each image its own noise: normal, or skewed (a mean-zero
exponential pointing down: the cheap group fails badly now and then, the worst case for a lower
bound). Used by tests/test_decide_simulation.py (fast) and tests/benchmarks/bench_decide.py (table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def _summary(k: int, cost: Any, **signal: Any) -> pd.DataFrame:
    """A simulated summary: k groups g0..g{k-1} at the given costs, every constraint met, plus the signal's columns."""
    groups = [f"g{g}" for g in range(k)]
    return pd.DataFrame(
        {"target": groups, "group": groups, "cost_per_1k_usd": cost, "latency_p90_s": 1.0,
         "refusal_rate": 0.0, "ok_rate": 1.0, **signal}
    )  # fmt: skip


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
    summary = _summary(
        k,
        cost,
        clip_mean=[means[f"g{g}"] for g in range(k)],
        clip_ci_low=np.nan,
        clip_ci_high=np.nan,
        clip_fingerprint="clip:ViT-B-32:openai:sim",
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


# --- FID: a group-level signal, decided on bootstrap replicates over images ------------------------

FID_MARGIN = 2.0  # FID's default margin
FEATURE_DIM = 8  # small feature vectors keep the simulation fast; the replicate formulas do not depend on d


@dataclass(frozen=True)
class FidStudy:
    groups: int
    prompts: int
    gap: float  # true FID gap of the cheapest group above the best, in margins
    noise: str  # normal | skewed (the cheap group's per-image features: a centred exponential)
    sigma: float = 0.7  # per-image feature noise sd (each of `dim` coordinates)
    dim: int = FEATURE_DIM  # feature dimensions: above the number of images, the n x n (Inception-like) path


def simulate_fid(study: FidStudy, rng: np.random.Generator, n_boot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary, metrics) of one synthetic study scored on FID against fixed reference statistics N(0, I).

    Image features of group g, prompt p, seed s: mu_g + a_p + e_gps, with a_p ~ N(0, tau^2 I) shared by
    all groups (the prompt's content) and e normal or skewed, so every group's covariance is I and its
    true FID is |mu_g|^2: the true gaps are exact. The replicates come from bench.metrics.fid_replicates
    with the scorer's prompt draw, stored and read back as metrics.parquet's fid_boot column is."""
    from bench.metrics.fid import GaussianStats, fid_from_stats, gaussian_stats
    from bench.metrics.fid_replicates import fid_replicates, image_weights, prompt_draws

    k, n, d = study.groups, study.prompts, study.dim
    tau = np.sqrt(1.0 - study.sigma**2)
    base = 10.0  # the best group's true FID
    gaps = np.concatenate([[0.0, study.gap], np.linspace(2.0, 4.0, k - 2)]) * FID_MARGIN
    cost = np.concatenate([[10.0, 1.0], np.linspace(2.0, 9.0, k - 2)])
    ref = GaussianStats(mu=np.zeros(d), sigma=np.eye(d), n=0)
    prompts = [f"p{p:03d}" for p in range(n)]
    image_prompts = [p for p in prompts for _ in range(SEEDS)]
    order, counts = prompt_draws(image_prompts, n_boot, int(rng.integers(1 << 31)))
    weights = image_weights(image_prompts, order, counts)
    content = np.repeat(rng.normal(0.0, tau, size=(n, d)), SEEDS, axis=0)
    rows, fids = [], []
    for g in range(k):
        mu = np.zeros(d)
        mu[0] = np.sqrt(base + gaps[g])
        if study.noise == "skewed" and g == 1:
            e = study.sigma * (rng.exponential(1.0, size=(n * SEEDS, d)) - 1.0)
        else:
            e = rng.normal(0.0, study.sigma, size=(n * SEEDS, d))
        x = mu + content + e
        fids.append(fid_from_stats(gaussian_stats(x), ref))
        rows.append({"target": f"g{g}", "n": n * SEEDS, "fid_boot": fid_replicates(x, ref, weights).tolist()})
    summary = _summary(k, cost, fid=fids, fid_fingerprint="inception:sim", reference_id="folder:sim:0")
    return summary, pd.DataFrame(rows)


def fid_recommended_rate(study: FidStudy, reps: int, seed: int = 0, n_boot: int = 1000) -> float:
    """Share of `reps` studies in which the cheapest group (g1) is recommended on FID."""
    from bench.decide.evidence import metric_replicates

    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        summary, metrics = simulate_fid(study, rng, n_boot)
        rep = metric_replicates(summary, metrics, "fid")
        assert rep is not None
        verdict = decide(
            summary, None, DecideSettings(signal="fid", max_categories=0), replicates={"fid": rep}
        )
        hits += verdict.recommended == "g1"
    return hits / reps

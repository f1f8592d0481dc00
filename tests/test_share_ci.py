"""Shares get a binomial interval (bench.stats.share_ci): inside [0, 1], with its coverage measured.

The studentized bootstrap gave a share near 1 nonsense like 0.979 [-inf, 1.01]. Figures for
docs/statistics.md: tests/benchmarks/bench_share_ci.py.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from _share_sim import iid_coverage, simulated_coverage
from scipy.stats import binomtest

from bench import stats


@pytest.mark.parametrize(("k", "n"), [(0, 12), (1, 12), (47, 48), (100, 200), (200, 200)])
def test_iid_share_is_scipy_clopper_pearson(k: int, n: int) -> None:
    iv = stats.share_ci(np.r_[np.ones(k), np.zeros(n - k)])
    ref = binomtest(k, n).proportion_ci(method="exact")
    assert (iv.low, iv.high) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert iv.method == "clopper-pearson" and 0.0 <= iv.low <= iv.estimate <= iv.high <= 1.0


def test_the_bootstrap_of_a_0_1_column_is_the_share_interval_not_minus_infinity() -> None:
    # 47 of 48 ok, two seeds per prompt: the old studentized bootstrap printed [-inf, 1.01] here.
    values = np.r_[np.ones(47), 0.0]
    iv = stats.bootstrap_ci(values, clusters=np.arange(48) // 2)
    assert iv.method == "clopper-pearson" and math.isfinite(iv.low) and 0.85 < iv.low < iv.high <= 1.0
    every = stats.bootstrap_ci(np.ones(24), clusters=np.arange(24) // 2)
    assert every.high == 1.0 and 0.7 < every.low < 1.0  # all ok: 12 prompts, not a zero-width interval


@pytest.mark.parametrize("n", [12, 24, 50, 100, 200])
@pytest.mark.parametrize("p", [0.02, 0.5, 0.98])
def test_iid_coverage_is_at_least_nominal_exactly(n: int, p: float) -> None:
    assert iid_coverage(n, p) >= 0.95


@pytest.mark.parametrize("kind", ["clustered", "judged"])
@pytest.mark.parametrize(("prompts", "p"), [(12, 0.02), (12, 0.5), (50, 0.98), (200, 0.5)])
def test_clustered_and_per_image_shares_cover_near_nominal(kind: str, prompts: int, p: float) -> None:
    # 300 seeded data sets a cell (the benchmark runs 2,000): a true coverage of 0.95 measures above
    # 0.95 - 2.5 binomial standard errors (0.918) but in 1 of ~160 draws.
    reps = 300
    floor = 0.95 - 2.5 * math.sqrt(0.95 * 0.05 / reps)
    assert simulated_coverage(kind, prompts, p, reps=reps, seed=prompts) >= floor


def test_summary_ok_and_refusal_rates_carry_intervals_inside_0_1() -> None:
    from bench.report.summary import summarize

    rows = []
    for prompt in range(12):
        for seed in range(2):
            status = "refused" if (prompt, seed) == (3, 0) else "ok"
            rows.append({"target": "t", "provider": "p", "model": "m", "steps": 4, "guidance": 7.0,
                         "size": "64x64", "prompt_id": f"p{prompt}", "seed": seed, "status": status,
                         "request_key": f"{prompt}-{seed}", "latency_s": 1.0, "cost_usd": 0.001,
                         "attempts": 1, "clip_score": np.nan, "category": "c", "synthetic": True})  # fmt: skip
    s = summarize(pd.DataFrame(rows)).iloc[0]
    assert s["ok_rate"] == pytest.approx(23 / 24) and s["refusal_rate"] == pytest.approx(1 / 24)
    for col in ("ok_rate", "refusal_rate"):
        assert 0.0 <= s[f"{col}_ci_low"] < s[col] < s[f"{col}_ci_high"] <= 1.0


def test_judge_adherence_group_interval_stays_inside_0_1() -> None:
    from bench.metrics.config import MetricsConfig
    from bench.metrics.quality import group_means

    ok = pd.DataFrame({"target": "t", "prompt_id": [f"p{i // 2}" for i in range(24)],
                       "judge_adherence": [1.0] * 23 + [0.75], "judge_fingerprint": "judge:x"})  # fmt: skip
    row = group_means([{"target": "t"}], ok, ["target"], MetricsConfig())[0]
    want = stats.share_ci(ok["judge_adherence"].to_numpy(float), clusters=ok["prompt_id"].to_numpy())
    assert (row["judge_adherence_ci_low"], row["judge_adherence_ci_high"]) == (want.low, want.high)
    assert (
        0.0
        < row["judge_adherence_ci_low"]
        < row["judge_adherence_mean"]
        < row["judge_adherence_ci_high"]
        <= 1.0
    )

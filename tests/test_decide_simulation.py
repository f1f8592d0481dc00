"""The decision rule's error rates in seeded synthetic studies (tests/_decide_sim.py).

The full table (more sizes, 200 studies a row) is tests/benchmarks/bench_decide.py; docs/decision.md
carries it. Here a smaller version runs in seconds: both claims, normal and skewed noise.
"""

from __future__ import annotations

import pytest
from _decide_sim import FidStudy, Study, fid_recommended_rate, recommended_rate


@pytest.mark.parametrize("noise", ["normal", "skewed"])
def test_a_cheaper_group_a_full_margin_worse_is_recommended_at_most_5_percent(noise: str) -> None:
    # On the margin itself (the hardest case of "beyond the margin"), 6 groups, 12 prompts.
    rate = recommended_rate(Study(6, 12, 1.0, noise), reps=150, seed=12, n_boot=400)
    assert rate <= 0.05, rate


@pytest.mark.parametrize("noise", ["normal", "skewed"])
def test_a_cheaper_group_within_half_the_margin_is_recommended_at_least_80_percent(noise: str) -> None:
    # 200 prompts, per-image noise 1.5 margins (docs/decision.md: power at 2 margins, and at fewer prompts).
    rate = recommended_rate(Study(6, 200, 0.5, noise, sigma=1.5), reps=30, seed=200, n_boot=400)
    assert rate >= 0.8, rate


def test_a_cheaper_group_far_below_is_never_recommended_and_the_rule_is_seeded() -> None:
    assert recommended_rate(Study(5, 50, 3.0, "skewed"), reps=20, seed=1, n_boot=300) == 0.0
    a = recommended_rate(Study(5, 30, 0.8, "normal"), reps=10, seed=3, n_boot=300)
    assert a == recommended_rate(Study(5, 30, 0.8, "normal"), reps=10, seed=3, n_boot=300)


def test_ten_groups_at_50_prompts_keep_the_level_on_skewed_noise() -> None:
    # One of the sizes the issue asks for beside 6 groups (docs/decision.md has both noises, 200 studies).
    rate = recommended_rate(Study(10, 50, 1.0, "skewed"), reps=60, seed=1050, n_boot=300)
    assert rate <= 0.05, rate


@pytest.mark.parametrize("noise", ["normal", "skewed"])
def test_fid_a_cheaper_group_a_full_margin_worse_is_recommended_at_most_5_percent(noise: str) -> None:
    # The group-level rule: FID against fixed reference statistics, bootstrap replicates over images
    # (drawn by prompt, one draw for every group), percentile p-values re-centred on the estimate, Holm.
    rate = fid_recommended_rate(FidStudy(6, 12, 1.0, noise), reps=80, seed=12, n_boot=300)
    assert rate <= 0.05, rate


def test_fid_a_cheaper_group_within_half_the_margin_is_often_found_with_many_images() -> None:
    # Power, not level: the benchmark measured 0.76 [0.66, 0.84] at 200 prompts (400 images a group,
    # 100 studies); the 80% needs more images than that at this noise (docs/decision.md).
    rate = fid_recommended_rate(FidStudy(6, 200, 0.5, "normal"), reps=20, seed=200, n_boot=300)
    assert rate >= 0.6, rate

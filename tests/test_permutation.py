"""bench.permutation agrees with scipy.stats.permutation_test on the same inputs (exact enumeration)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test

from bench.permutation import (
    flip_patterns,
    mean_shift_bounds,
    paired_mean_shift,
    paired_quantile_ratio,
    ratio_swap_pvalue,
)

ALPHA = 0.025


def _scipy_shift_pvalue(diff: np.ndarray, delta: float, alternative: str) -> float:
    """Paired sign-flip test of mean(diff) = delta, by scipy (swaps within pairs, exact for small n)."""
    x, y = np.zeros_like(diff), diff - delta
    res = permutation_test(
        (x, y),
        lambda a, b, axis: np.mean(b - a, axis=axis),
        permutation_type="samples",
        alternative=alternative,
        n_resamples=np.inf,
        vectorized=True,
    )
    return float(res.pvalue)


def test_mean_shift_interval_is_the_inversion_of_scipys_sign_flip_test() -> None:
    rng = np.random.default_rng(0)
    diff = rng.lognormal(0.0, 1.0, size=10) - 2.0
    flips = flip_patterns(10, 0, rng)
    assert len(flips) == 2**10
    low, high = mean_shift_bounds(diff[None, :], np.ones((1, 10)), flips, ALPHA)
    # Just above the upper bound scipy rejects "mean >= delta" at ALPHA; just below it does not.
    eps = 1e-9
    assert _scipy_shift_pvalue(diff, float(high[0]) + eps, "less") <= ALPHA
    assert _scipy_shift_pvalue(diff, float(high[0]) - eps, "less") > ALPHA
    assert _scipy_shift_pvalue(diff, float(low[0]) - eps, "greater") <= ALPHA
    assert _scipy_shift_pvalue(diff, float(low[0]) + eps, "greater") > ALPHA
    assert low[0] < diff.mean() < high[0]


def test_cluster_sums_weight_images_equally_and_identical_runs_give_zero() -> None:
    x = np.random.default_rng(1).normal(size=24)
    same = paired_mean_shift(x, x.copy(), clusters=np.arange(24) // 2)
    assert (same.delta.estimate, same.delta.low, same.delta.high) == (0.0, 0.0, 0.0)
    assert same.delta.method == "sign-flip" and same.delta.n_clusters == 12
    shifted = paired_mean_shift(x, x - 1.0 + 0.1 * np.sin(np.arange(24)), clusters=np.arange(24) // 2)
    assert shifted.delta.high < -0.5 < 0 and shifted.delta.low < shifted.delta.estimate
    one = paired_mean_shift([1.0, 2.0], [0.0, 1.0], clusters=["a", "a"])
    assert np.isnan(one.delta.low) and one.delta.estimate == pytest.approx(-1.0)


def test_swap_test_pvalue_matches_scipy_for_a_ratio_of_p90s() -> None:
    rng = np.random.default_rng(2)
    b = rng.lognormal(0.0, 0.4, size=9)
    c = 1.5 * rng.lognormal(0.0, 0.4, size=9)
    theta = float(np.log(1.2))

    def stat(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.log(np.percentile(y, 90, axis=axis)) - np.log(np.percentile(x, 90, axis=axis))

    ref = permutation_test(
        (b, c * np.exp(-theta)), stat, permutation_type="samples", alternative="greater", n_resamples=np.inf,
        vectorized=True,
    )  # fmt: skip
    ours = ratio_swap_pvalue(b[None, :], c[None, :], theta, 90.0, flip_patterns(9, 0, rng))
    assert ours[0] == pytest.approx(ref.pvalue, abs=1e-12)


def test_quantile_ratio_interval_brackets_the_estimate_and_decides_at_the_boundary() -> None:
    rng = np.random.default_rng(3)
    b = rng.lognormal(0.0, 0.3, size=48)
    slow, p_slow = paired_quantile_ratio(
        b, 2.0 * b * rng.lognormal(0.0, 0.05, size=48), q=90.0, boundary=np.log(1.2)
    )
    assert p_slow <= ALPHA and slow.delta.low > np.log(1.2)
    assert slow.delta.low <= slow.delta.estimate <= slow.delta.high
    same, p_same = paired_quantile_ratio(b, b.copy(), q=90.0, boundary=np.log(1.2))
    assert p_same > ALPHA and same.delta.low < 0.0 < same.delta.high

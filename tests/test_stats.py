"""bench.stats: bootstrap intervals (plain, clustered, percentile, paired)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.stats import bootstrap_ci, paired_bootstrap_delta, percentile_ci


def test_normal_mean_ci_covers_true_mean_near_nominal_rate() -> None:
    rng = np.random.default_rng(123)
    trials, covered = 300, 0
    for t in range(trials):
        sample = rng.normal(5.0, 2.0, size=60)
        ci = bootstrap_ci(sample, n_boot=1000, seed=t)
        covered += ci.low <= 5.0 <= ci.high
    rate = covered / trials
    # Percentile bootstrap under-covers slightly at n=60; 300 trials give a ~±2.5% standard error.
    assert 0.88 <= rate <= 0.99, rate


def test_deterministic_for_a_seed_and_sensitive_to_it() -> None:
    x = np.random.default_rng(0).exponential(size=50)
    a, b, c = bootstrap_ci(x, seed=7), bootstrap_ci(x, seed=7), bootstrap_ci(x, seed=8)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert a.estimate == pytest.approx(x.mean())


def test_nans_are_dropped_and_tiny_samples_give_nan_interval() -> None:
    ci = bootstrap_ci([1.0, np.nan, 3.0, 5.0])
    assert ci.n == 3 and ci.estimate == pytest.approx(3.0)
    one = bootstrap_ci([2.0, np.nan])
    assert one.estimate == 2.0 and np.isnan(one.low) and np.isnan(one.high)
    assert np.isnan(bootstrap_ci([]).estimate)


def test_cluster_bootstrap_is_wider_than_iid_when_images_of_a_prompt_agree() -> None:
    rng = np.random.default_rng(1)
    prompt_effect = rng.normal(0, 3, size=20)
    clusters = np.repeat(np.arange(20), 8)  # 8 images per prompt, strongly correlated
    values = prompt_effect[clusters] + rng.normal(0, 0.3, size=clusters.size)
    iid = bootstrap_ci(values, seed=0)
    clustered = bootstrap_ci(values, seed=0, clusters=clusters)
    assert clustered.n_clusters == 20 and clustered.n == 160
    assert clustered.estimate == pytest.approx(iid.estimate)
    assert clustered.width > 2 * iid.width


def test_unequal_clusters_mean_and_generic_stat() -> None:
    values = np.array([1.0, 1.2, 5.0, 5.5, 6.0, 9.0])
    clusters = ["a", "a", "b", "b", "b", "c"]
    ci = bootstrap_ci(values, clusters=clusters, n_boot=500)
    assert ci.n_clusters == 3 and ci.low <= ci.estimate <= ci.high
    assert values.min() <= ci.low and ci.high <= values.max()
    med = bootstrap_ci(values, stat=np.median, clusters=clusters, n_boot=200)
    assert med.estimate == pytest.approx(np.median(values)) and med.low <= med.high


def test_percentile_ci_for_latencies() -> None:
    lat = np.random.default_rng(2).lognormal(0.0, 0.5, size=400)
    out = percentile_ci(lat, (50, 90, 99), n_boot=500)
    assert set(out) == {50.0, 90.0, 99.0}
    for q, ci in out.items():
        assert ci.estimate == pytest.approx(np.percentile(lat, q))
        assert ci.low <= ci.estimate <= ci.high
    assert out[50].high < out[99].low  # the median is clearly below the p99


def test_paired_delta_of_identical_arrays_is_exactly_zero() -> None:
    x = np.random.default_rng(3).normal(size=40)
    d = paired_bootstrap_delta(x, x.copy())
    assert d.delta.estimate == 0.0 and d.delta.low == 0.0 and d.delta.high == 0.0
    assert d.p_positive == 0.0


def test_paired_delta_detects_a_shift_that_unpaired_noise_would_hide() -> None:
    rng = np.random.default_rng(4)
    prompt_difficulty = rng.normal(0, 5, size=50)
    base = prompt_difficulty + rng.normal(0, 0.1, size=50)
    cand = prompt_difficulty + 0.5 + rng.normal(0, 0.1, size=50)
    d = paired_bootstrap_delta(base, cand)
    assert d.delta.estimate == pytest.approx(0.5, abs=0.05)
    assert d.delta.low > 0.4 and d.delta.high < 0.6 and d.p_positive == 1.0
    clustered = paired_bootstrap_delta(base, cand, clusters=np.arange(50) // 2)
    assert clustered.delta.n_clusters == 25 and clustered.delta.low > 0


def test_paired_delta_rejects_misaligned_inputs() -> None:
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap_delta([1.0, 2.0], [1.0])

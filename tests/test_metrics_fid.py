"""Fréchet distance and KID formulas: closed form, torchmetrics, and the fast exact forms."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

import bench  # noqa: F401  (torchvision import fix before torchmetrics)
from bench.metrics.fid import (
    fid_from_stats,
    frechet_distance,
    gaussian_stats,
    kernel_inception_distance,
    kid_subset_size,
    torchmetrics_frechet_distance,
)


def _random_psd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_closed_form_for_diagonal_gaussians() -> None:
    rng = np.random.default_rng(0)
    d = 16
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = rng.uniform(0.2, 3.0, size=d), rng.uniform(0.2, 3.0, size=d)
    expected = float(((mu1 - mu2) ** 2).sum() + (s1 + s2 - 2 * np.sqrt(s1 * s2)).sum())
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)
    assert frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0.0, abs=1e-9)


def test_closed_form_for_isotropic_gaussians_and_sampling_converges() -> None:
    # N(0, I) vs N(m, 4I) in d dims: |m|^2 + d (1 + 4 - 2*2) = |m|^2 + d.
    rng = np.random.default_rng(1)
    d = 8
    m = np.full(d, 0.5)
    expected = float(m @ m + d)
    assert frechet_distance(np.zeros(d), np.eye(d), m, 4 * np.eye(d)) == pytest.approx(expected, rel=1e-12)
    x = rng.normal(size=(20000, d))
    y = m + 2.0 * rng.normal(size=(20000, d))
    assert fid_from_stats(gaussian_stats(x), gaussian_stats(y)) == pytest.approx(expected, rel=0.03)


def test_matches_torchmetrics_compute_fid_on_general_covariances() -> None:
    rng = np.random.default_rng(2)
    d = 48
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_psd(rng, d), _random_psd(rng, d)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = torchmetrics_frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize(("n1", "n2"), [(10, 30), (30, 200), (200, 300)])
def test_low_rank_factor_paths_equal_the_full_matrix_path(n1: int, n2: int) -> None:
    rng = np.random.default_rng(n1)
    d = 64
    a = gaussian_stats(rng.normal(size=(n1, d)))
    b = gaussian_stats(1.5 * rng.normal(size=(n2, d)) + 0.3)
    # The full path takes square roots of rank-deficient matrices: round-off at ~1e-8 relative.
    full = fid_from_stats(replace(a, factor=None), replace(b, factor=None))
    assert fid_from_stats(a, b) == pytest.approx(full, rel=1e-6)
    assert fid_from_stats(a, replace(b, factor=None)) == pytest.approx(full, rel=1e-6)
    assert fid_from_stats(a, b) == pytest.approx(
        torchmetrics_frechet_distance(a.mu, a.sigma, b.mu, b.sigma), rel=1e-7
    )


def test_kid_matches_torchmetrics_when_subsets_are_the_whole_sets() -> None:
    import torch
    from torchmetrics.image.kid import poly_mmd

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(40, 32)), rng.normal(size=(40, 32)) + 0.4
    ours = kernel_inception_distance(real, fake, subset_size=1000, subsets=5)
    assert ours.subset_size == 40  # capped at the sample count instead of raising
    ref = float(poly_mmd(torch.as_tensor(real), torch.as_tensor(fake)))
    assert ours.mean == pytest.approx(ref, rel=1e-9) and ours.std == pytest.approx(0.0, abs=1e-12)
    assert not ours.std_informative  # whole-set subsets: the std is round-off, and says so
    again = kernel_inception_distance(real, fake, subset_size=20, subsets=10, seed=0)
    assert again == kernel_inception_distance(real, fake, subset_size=20, subsets=10, seed=0)
    assert again.std > 0


def test_kid_subsets_are_smaller_than_the_sets_as_in_the_kid_paper() -> None:
    assert kid_subset_size(1000, 5000, 4000) == 1000
    assert kid_subset_size(1000, 5000, 24) == 12  # half the smaller set, never the whole set
    assert kid_subset_size(1000, 24, 1000) == 12
    assert kid_subset_size(50, 5, 5) == 2
    assert kid_subset_size(1000, 3, 10) == 3  # too few to subsample: the caller reports no std
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(24, 16)), rng.normal(size=(24, 16)) + 0.3
    kid = kernel_inception_distance(real, fake, subset_size=kid_subset_size(1000, 24, 24), subsets=50)
    assert kid.subset_size == 12 and kid.std_informative
    assert kid.std > 1e-6  # a real spread, not round-off


def test_gaussian_stats_rejects_a_single_sample() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 4)))

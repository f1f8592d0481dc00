"""FID/KID bootstrap replicates (bench.metrics.fid_replicates) against the formulas computed the long way."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import bench  # noqa: F401  (torchvision import fix before torchmetrics)
from bench.metrics.fid import gaussian_stats
from bench.metrics.fid_replicates import (
    fid_replicates,
    image_weights,
    kid_replicates,
    poly_kernel,
    prompt_draws,
)


def _sqrtm_fid(x: np.ndarray, mu_r: np.ndarray, sigma_r: np.ndarray) -> float:
    """FID of the image set x (rows; duplicates allowed) by the textbook formula with scipy.linalg.sqrtm."""
    mu = x.mean(axis=0)
    sigma = np.cov(x, rowvar=False)
    covmean = scipy.linalg.sqrtm(sigma @ sigma_r)
    return float(
        ((mu - mu_r) ** 2).sum() + np.trace(sigma) + np.trace(sigma_r) - 2.0 * np.trace(covmean).real
    )


def _random_reference(rng: np.random.Generator, d: int, n_ref: int) -> np.ndarray:
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n_ref, d)) @ mix + 0.5


@pytest.mark.parametrize(("n", "d", "n_ref"), [(12, 40, 300), (30, 64, 20), (50, 8, 200)])
def test_fid_replicates_equal_resampling_the_images_with_scipy_sqrtm(n: int, d: int, n_ref: int) -> None:
    # n <= d: the n x n form (reference with a full covariance, or with its low-rank factor);
    # n > d: the d x d form. Each must equal the FID of the resampled set, computed the long way.
    rng = np.random.default_rng(n + d)
    ref = gaussian_stats(_random_reference(rng, d, n_ref))
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, size=d) + 0.3
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=4).astype(float)
    counts[0] = 1.0  # the full sample
    got = fid_replicates(x, ref, counts)
    for b, c in enumerate(counts):
        resampled = np.repeat(x, c.astype(int), axis=0)
        want = _sqrtm_fid(resampled, ref.mu, ref.sigma)
        assert got[b] == pytest.approx(want, rel=1e-6, abs=1e-6), (b, got[b], want)


def test_fid_replicate_of_the_full_sample_is_the_reported_fid() -> None:
    from bench.metrics.fid import fid_from_stats

    rng = np.random.default_rng(7)
    ref = gaussian_stats(_random_reference(rng, 32, 100))
    x = rng.normal(size=(20, 32))
    assert fid_replicates(x, ref, np.ones((1, 20)))[0] == pytest.approx(
        fid_from_stats(gaussian_stats(x), ref), rel=1e-9
    )


def test_kid_replicates_agree_with_torchmetrics_and_leave_out_an_image_paired_with_its_copy() -> None:
    import torch
    from torchmetrics.image.kid import poly_mmd

    rng = np.random.default_rng(4)
    x, r = rng.normal(size=(30, 16)) + 0.2, rng.normal(size=(30, 16))
    full = kid_replicates(x, r, np.ones((1, 30)))[0]
    assert full == pytest.approx(float(poly_mmd(torch.as_tensor(r), torch.as_tensor(x))), rel=1e-9)
    # A resample with duplicates: the unbiased within-group term over pairs of distinct images only.
    c = rng.multinomial(30, np.full(30, 1 / 30)).astype(float)
    idx = np.repeat(np.arange(30), c.astype(int))
    k = poly_kernel(x, x)
    pairs = [(i, j) for a, i in enumerate(idx) for b, j in enumerate(idx) if a != b and i != j]
    xx = np.mean([k[i, j] for i, j in pairs])
    k_rr = poly_kernel(r, r)
    rr = (k_rr.sum() - np.trace(k_rr)) / (30 * 29)
    xr = poly_kernel(x[idx], r).mean()
    assert kid_replicates(x, r, c[None, :])[0] == pytest.approx(xx + rr - 2 * xr, rel=1e-9)


def test_one_draw_of_prompts_serves_every_group_and_is_seeded() -> None:
    order, counts = prompt_draws(["b", "a", "c", "a"], n_boot=500, seed=3)
    assert order == ["a", "b", "c"] and counts.shape == (500, 3) and (counts.sum(axis=1) == 3).all()
    again = prompt_draws(["c", "b", "a"], n_boot=500, seed=3)[1]
    assert (counts == again).all()  # the same prompts give the same draw in every run of a sweep
    w = image_weights(["a", "a", "c"], order, counts)
    assert (
        (w[:, 0] == counts[:, 0]).all()
        and (w[:, 1] == counts[:, 0]).all()
        and (w[:, 2] == counts[:, 2]).all()
    )

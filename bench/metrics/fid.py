"""Fréchet distance and KID on Inception features.

We extract features ourselves (cached per image). KID calls torchmetrics' own
poly_mmd. The Fréchet distance is the quantity torchmetrics' _compute_fid and
torch-fidelity compute, but torchmetrics takes eigvals of the non-symmetric
2048x2048 product sigma1 @ sigma2 (about 30 s per group on 2 CPU cores); we use
the symmetric, exactly equivalent forms below (tests check the agreement with
torchmetrics, torch-fidelity and the closed form):

  tr sqrt(S1 S2) = tr sqrt(S1^1/2 S2 S1^1/2)             (similar matrices)
                 = sum of singular values of A1 A2^T      when S_i = A_i^T A_i
  with A_i = (X_i - mu_i) / sqrt(n_i - 1), an n_i x d matrix: for n < d this
  works on n x n matrices, so small groups cost milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

# Below this, FID is strongly biased upwards (and the 2048x2048 covariance is rank-deficient).
FID_MIN_RELIABLE_N = 2048


@dataclass(frozen=True)
class GaussianStats:
    mu: Array
    sigma: Array
    n: int
    factor: Array | None = None  # A with sigma = A^T A, kept when n <= d (cheap exact trace term)


def gaussian_stats(features: npt.NDArray[np.floating[Any]]) -> GaussianStats:
    """Mean and unbiased covariance (n - 1), as torchmetrics, torch-fidelity and pytorch-fid compute them."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors, got shape {feats.shape}")
    n, d = feats.shape
    mu = feats.mean(axis=0)
    centered = (feats - mu) / np.sqrt(n - 1)
    sigma = centered.T @ centered
    return GaussianStats(mu=mu, sigma=sigma, n=int(n), factor=centered if n <= d else None)


def _sqrt_psd_eigvals_sum(m: Array) -> float:
    """sum(sqrt(eig(m))) for a symmetric PSD m; tiny negative eigenvalues are round-off, clipped to 0."""
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def trace_sqrt_product(a: GaussianStats, b: GaussianStats) -> float:
    """tr sqrt(sigma_a sigma_b), the cross term of the Fréchet distance."""
    if a.factor is not None and b.factor is not None:
        return float(np.linalg.svd(a.factor @ b.factor.T, compute_uv=False).sum())
    if a.factor is not None or b.factor is not None:
        fa, other = (a.factor, b.sigma) if a.factor is not None else (b.factor, a.sigma)
        assert fa is not None
        return _sqrt_psd_eigvals_sum(fa @ other @ fa.T)
    w, v = np.linalg.eigh((a.sigma + a.sigma.T) / 2)
    half = (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T
    return _sqrt_psd_eigvals_sum(half @ b.sigma @ half)


def fid_from_stats(a: GaussianStats, b: GaussianStats) -> float:
    """||mu_a - mu_b||^2 + tr(sigma_a) + tr(sigma_b) - 2 tr sqrt(sigma_a sigma_b)."""
    if a.mu.shape != b.mu.shape:
        raise ValueError(f"feature dimensions differ: {a.mu.shape} vs {b.mu.shape}")
    diff = a.mu - b.mu
    return float(diff @ diff + np.trace(a.sigma) + np.trace(b.sigma) - 2.0 * trace_sqrt_product(a, b))


def frechet_distance(mu1: Array, sigma1: Array, mu2: Array, sigma2: Array) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2) from full statistics."""
    a = GaussianStats(np.asarray(mu1, np.float64), np.asarray(sigma1, np.float64), 0)
    b = GaussianStats(np.asarray(mu2, np.float64), np.asarray(sigma2, np.float64), 0)
    return fid_from_stats(a, b)


def torchmetrics_frechet_distance(mu1: Array, sigma1: Array, mu2: Array, sigma2: Array) -> float:
    """torchmetrics' own _compute_fid in float64 (slow at d=2048): the reference our formula is tested against."""
    import torch  # here, not at the top: reports import this module's constants without torch
    from torchmetrics.image.fid import _compute_fid

    t = [torch.as_tensor(np.asarray(x, dtype=np.float64)) for x in (mu1, sigma1, mu2, sigma2)]
    return float(_compute_fid(t[0], t[1], t[2], t[3]))


@dataclass(frozen=True)
class KidResult:
    mean: float
    std: float
    subset_size: int
    subsets: int
    # False when every subset is the whole (smaller) set: the subsets then differ only in order,
    # the std is round-off (~1e-16) and says nothing about uncertainty.
    std_informative: bool = True


def kid_subset_size(requested: int, n_real: int, n_fake: int) -> int:
    """Subset size for KID: the requested size when both sets are larger, else half the smaller set.

    As in the KID paper (Binkowski et al. 2018: subsets of 1000 drawn from larger sets), subsets
    must be smaller than the sets for the spread over subsets to mean anything; a subset equal to
    the whole set gives the same estimate every time.
    """
    n = min(n_real, n_fake)
    if requested < n:
        return max(2, requested)
    return max(2, n // 2) if n >= 4 else n


def kernel_inception_distance(
    real: npt.NDArray[np.floating[Any]],
    fake: npt.NDArray[np.floating[Any]],
    *,
    subset_size: int = 1000,
    subsets: int = 100,
    seed: int = 0,
) -> KidResult:
    """KID mean and std over random subsets, as torchmetrics' KernelInceptionDistance.compute().

    The subset size is capped at the smaller sample count (torchmetrics raises
    instead), and subsets are drawn from a seeded generator so that re-scoring
    gives the same number.
    """
    import torch
    from torchmetrics.image.kid import poly_mmd

    r = torch.as_tensor(np.asarray(real, dtype=np.float64))
    f = torch.as_tensor(np.asarray(fake, dtype=np.float64))
    size = min(subset_size, r.shape[0], f.shape[0])
    if size < 2:
        return KidResult(float("nan"), float("nan"), size, 0)
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        fr = r[torch.randperm(r.shape[0], generator=gen)[:size]]
        ff = f[torch.randperm(f.shape[0], generator=gen)[:size]]
        scores.append(poly_mmd(fr, ff))
    stacked = torch.stack(scores)
    informative = size < min(r.shape[0], f.shape[0])
    return KidResult(float(stacked.mean()), float(stacked.std(unbiased=False)), size, subsets, informative)

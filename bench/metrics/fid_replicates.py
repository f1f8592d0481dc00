"""Bootstrap replicates of FID and KID over a group's images, for the decision (bench.decide).

FID and KID are group-level: there is no per-prompt score to pair. The decision compares groups
on bootstrap replicates instead. One replicate draws the run's prompts with replacement (seeded,
over the sorted prompt ids, so every group of the run, and every run of a sweep with the same
prompts, gets the same draw) and gives each image the number of times its prompt was drawn as its
weight: images of one prompt (its seeds) stay together, since they are alike, and groups pair
through the shared draw. The reference set's statistics (mean, covariance, KID's kernel terms) are
held fixed: the interval is over the group's images, not over the reference.

Each replicate must be cheap. With weights c (sum w) on the group's centred features Xc (n x d):

  mean shift   m* - mu_r = (x_bar - mu_r) + Xc^T c / w
  trace        tr S* = (c . diag(P) - c^T P c / w) / (w - 1),          P = Xc Xc^T
  cross term   tr sqrt(S* S_r) = sum sqrt eig(D B Q B^T D) / (w - 1),  Q = Xc S_r Xc^T

with D = diag(sqrt c) and B = I - 1 c^T / w the weighted centring; P and Q are n x n and computed
once, so a replicate costs one eigendecomposition of the drawn images (n x n, not 2048 x 2048).
When n > d the d x d form is cheaper: S* is formed and tr sqrt(S_r^1/2 S* S_r^1/2) taken.
tests/test_fid_replicates.py checks both against resampling the images and scipy.linalg.sqrtm.

KID is the unbiased MMD^2 with torchmetrics' cubic polynomial kernel k(x, y) = (x.y / d + 1)^3.
Per replicate: the within-group term over pairs of *different* images (pairs of one image with its
own copy are left out, so duplicates do not bias it), the cross term weighted by c, and the
reference's own term fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import ThreadpoolController

from bench.metrics.fid import GaussianStats

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# Above this many images *and* dimensions (the smaller of the two sets the eigenproblem's size),
# a replicate costs an eigendecomposition too large to repeat ~1,000 times on a CPU: no FID
# replicates are computed and the decision says so (KID's replicates have no such limit).
MAX_EIG_DIM = 768


_controller: ThreadpoolController | None = None


def _one_thread() -> Any:
    """Limit BLAS to one thread (the controller looks the libraries up once: that look-up costs ~25 ms)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def prompt_draws(prompt_ids: Sequence[str], n_boot: int, seed: int) -> tuple[list[str], I64]:
    """(sorted distinct prompt ids, counts n_boot x prompts): how often each prompt is drawn per replicate."""
    order = sorted({str(p) for p in prompt_ids})
    rng = np.random.default_rng(seed)
    k = len(order)
    draws = rng.integers(0, k, size=(n_boot, k)) + (np.arange(n_boot) * k)[:, None]
    counts = np.bincount(draws.ravel(), minlength=n_boot * k).reshape(n_boot, k)
    return order, counts.astype(np.int64)


def image_weights(image_prompts: Sequence[str], order: Sequence[str], counts: I64) -> F64:
    """Per replicate, each image's weight: how often its prompt was drawn (n_boot x images)."""
    at = {p: i for i, p in enumerate(order)}
    idx = np.array([at[str(p)] for p in image_prompts], dtype=np.intp)
    return np.asarray(counts[:, idx], dtype=np.float64)


def _centred(features: npt.ArrayLike) -> tuple[F64, F64]:
    x = np.asarray(features, dtype=np.float64)
    mean = x.mean(axis=0)
    return x - mean, mean


def fid_replicates(features: npt.ArrayLike, ref: GaussianStats, weights: npt.ArrayLike) -> F64:
    """FID per replicate: row b of `weights` (n_boot x n) weighs image i by weights[b, i]."""
    xc, mean = _centred(features)
    w_all = np.asarray(weights, dtype=np.float64)
    n, d = xc.shape
    if min(n, d) > MAX_EIG_DIM:
        raise ValueError(f"{n} images of {d}-d features: above {MAX_EIG_DIM}, a replicate is too costly")
    dmu = mean - ref.mu
    w = w_all.sum(axis=1)
    ok = w >= 2  # fewer than two images drawn: no covariance, NaN
    ws = np.where(ok, w, 2.0)
    # c^T P c with P = Xc Xc^T: through P when n <= d, through |Xc^T c|^2 when n > d (the cheaper way)
    cpc = ((w_all @ (xc @ xc.T)) * w_all).sum(axis=1) if n <= d else ((w_all @ xc) ** 2).sum(axis=1)
    mean_term = dmu @ dmu + 2.0 * (w_all @ (xc @ dmu)) / ws + cpc / ws**2
    trace = (w_all @ (xc * xc).sum(axis=1) - cpc / ws) / (ws - 1.0)
    with _one_thread():  # small eigenproblems: threads cost more than they give (measured 5-15x)
        cross = _cross_gram(xc, ref, w_all, ws) if n <= d else _cross_cov(xc, ref, w_all, ws)
    out = mean_term + trace + float(np.trace(ref.sigma)) - 2.0 * cross
    return np.asarray(np.where(ok, out, np.nan), dtype=np.float64)


def _cross_gram(xc: F64, ref: GaussianStats, w_all: F64, ws: F64) -> F64:
    """tr sqrt(S* S_r) per replicate on the drawn images' n x n matrix (the n <= d case)."""
    q = _xc_sigma_xct(xc, ref)
    out = np.zeros(w_all.shape[0])
    for b, c in enumerate(w_all):
        w = float(ws[b])
        keep = c > 0
        cc = c[keep]
        qc = q[keep] @ c / w  # (Q c / w) on the drawn rows: Xc S_r delta
        centred = q[np.ix_(keep, keep)] - qc[:, None] - qc[None, :] + float(cc @ qc) / w
        s = np.sqrt(cc)
        m = centred * s[:, None] * s[None, :] / (w - 1.0)
        out[b] = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2.0), 0.0, None)).sum()
    return out


def _cross_cov(xc: F64, ref: GaussianStats, w_all: F64, ws: F64, chunk: int = 256) -> F64:
    """tr sqrt(S_r^1/2 S* S_r^1/2) per replicate on d x d matrices (the n > d case), in batches."""
    half = _psd_sqrt(ref.sigma)
    out = np.zeros(w_all.shape[0])
    for start in range(0, w_all.shape[0], chunk):
        c = w_all[start : start + chunk]
        w = ws[start : start + chunk]
        delta = (c @ xc) / w[:, None]
        cov = (xc.T[None, :, :] * c[:, None, :]) @ xc - w[:, None, None] * (
            delta[:, :, None] * delta[:, None, :]
        )
        m = half @ (cov / (w - 1.0)[:, None, None]) @ half
        eig = np.linalg.eigvalsh((m + np.swapaxes(m, 1, 2)) / 2.0)
        out[start : start + chunk] = np.sqrt(np.clip(eig, 0.0, None)).sum(axis=1)
    return out


def _xc_sigma_xct(xc: F64, ref: GaussianStats) -> F64:
    """Xc S_r Xc^T, through the reference's low-rank factor when it has one (n_ref <= d)."""
    if ref.factor is not None:
        f = xc @ ref.factor.T
        return np.asarray(f @ f.T, dtype=np.float64)
    return np.asarray(xc @ ref.sigma @ xc.T, dtype=np.float64)


def _psd_sqrt(m: F64) -> F64:
    w, v = np.linalg.eigh((m + m.T) / 2.0)
    return np.asarray((v * np.sqrt(np.clip(w, 0.0, None))) @ v.T, dtype=np.float64)


def poly_kernel(a: F64, b: F64) -> F64:
    """torchmetrics' KID kernel: (a.b / d + 1)^3."""
    return np.asarray((a @ b.T / a.shape[1] + 1.0) ** 3, dtype=np.float64)


def kid_replicates(features: npt.ArrayLike, reference: npt.ArrayLike, weights: npt.ArrayLike) -> F64:
    """Unbiased MMD^2 (KID) per replicate against the fixed reference features."""
    x = np.asarray(features, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    w_all = np.asarray(weights, dtype=np.float64)
    m = r.shape[0]
    k_rr = poly_kernel(r, r)
    rr_term = float((k_rr.sum() - np.trace(k_rr)) / (m * (m - 1)))
    k_xx = poly_kernel(x, x)
    k_xr = poly_kernel(x, r).mean(axis=1)
    w = w_all.sum(axis=1)
    sq = (w_all**2).sum(axis=1)
    ckc = ((w_all @ k_xx) * w_all).sum(axis=1)
    self_pairs = (w_all**2) @ np.diag(k_xx)
    with np.errstate(divide="ignore", invalid="ignore"):
        xx_term = (ckc - self_pairs) / (w**2 - sq)
        xr_term = (w_all @ k_xr) / w
    out = xx_term + rr_term - 2.0 * xr_term
    return np.asarray(np.where(w**2 - sq > 0, out, np.nan), dtype=np.float64)

"""Paired permutation tests for the gate's boundary checks, and the intervals that invert them.

Why not the bootstrap here: at the gate's boundary the studentized bootstrap of a mean paired
delta failed 3.3% of the time on lognormal scores over 12 prompts (nominal 2.5%), and BCa on the
ratio of p90 latencies 5.3-7.0% over 12 request pairs. The tests below are exact whenever the two sides of a pair are exchangeable
once the allowed change is applied (the candidate is the baseline shifted by the allowed drop,
or scaled by the allowed latency rise), whatever the distribution of the scores: normal,
lognormal, anything. docs/gate-checks.md has the simulated false-alarm and power tables
(`python -m bench.gate.simulate`), and tests/test_gate_simulation.py holds them to nominal.

- Mean shift (CLIP and every per-image quality score): a sign-flip test over whole prompts.
  Flipping the signs of a set F of prompts' differences makes the statistic fall below the
  observed one exactly when the tested shift lies below the mean of F's differences, so the
  interval is read off order statistics of subset means: no root finding.
- Ratio of quantiles (latency p50/p90): a within-pair swap test of log q(candidate / r) -
  log q(baseline), inverted by bisection over r.

Sign patterns are enumerated exactly for up to EXACT_UNITS units, else drawn (seeded) with
the identity added, so p = (1 + #as extreme) / (N + 1) stays a valid p-value at any N.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.stats import Interval, PairedDelta

F64 = npt.NDArray[np.float64]
B8 = npt.NDArray[np.bool_]
EXACT_UNITS = 12  # 2^12 = 4,096 sign patterns: enumerate them all
_BISECT_STEPS = 32
_MAX_CELLS = 4_000_000  # patterns x units evaluated at once in the swap test


def min_resamples(alpha: float) -> int:
    """Enough random patterns that a p-value of about alpha is resolved (20 in the tail)."""
    return int(np.ceil(20.0 / max(alpha, 1e-9)))


def flip_patterns(k: int, n_perm: int, rng: np.random.Generator, exact: bool = True) -> B8:
    """(N, k) booleans, True = flip unit j; all 2^k patterns when k <= EXACT_UNITS (and `exact`),
    else the identity plus n_perm random ones."""
    if exact and k <= EXACT_UNITS:
        return np.array(list(itertools.product((False, True), repeat=k)), dtype=bool).reshape(-1, k)
    drawn = rng.random((n_perm, k)) < 0.5
    return np.vstack([np.zeros((1, k), dtype=bool), drawn])


def mean_shift_bounds(sums: F64, sizes: F64, flips: B8, alpha: float) -> tuple[F64, F64]:
    """One-sided bounds (each at level alpha) of the mean paired difference, per row.

    sums, sizes: (reps, k) per-unit sums of candidate - baseline and image counts.
    flips: (N, k) sign patterns including the identity. For a tested shift d the flipped
    statistic sum_j s_j (S_j - d m_j) is <= the observed one exactly when d <= mean of the
    flipped units (S_F / m_F); the identity (nothing flipped) counts as +inf / -inf.
    The test "mean < d" rejects when #{subset means >= d} <= floor(alpha N), so the upper
    bound is the (floor(alpha N) + 1)-th largest subset mean; the lower bound mirrors it.
    """
    f = flips.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        sub = (sums @ f.T) / (sizes @ f.T)  # (reps, N)
    empty: B8 = np.asarray(~flips.any(axis=1), dtype=bool)
    n = flips.shape[0]
    r = int(np.floor(alpha * n + 1e-9))
    if r < 1:
        inf = np.full(sums.shape[0], np.inf)
        return -inf, inf
    hi_side = np.where(empty[None, :], np.inf, sub)
    lo_side = np.where(empty[None, :], -np.inf, sub)
    # r-th order statistic from the top (0-based index r) and from the bottom.
    high = -np.partition(-hi_side, r, axis=1)[:, r]
    low = np.partition(lo_side, r, axis=1)[:, r]
    return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)


def _units(diff: F64, clusters: Sequence[Any] | npt.NDArray[Any] | None) -> tuple[F64, F64]:
    if clusters is None:
        return diff, np.ones_like(diff)
    _, codes = np.unique(np.asarray(clusters).astype(str), return_inverse=True)
    k = int(codes.max()) + 1
    sums = np.bincount(codes, weights=diff, minlength=k).astype(np.float64)
    return sums, np.bincount(codes, minlength=k).astype(np.float64)


def paired_mean_shift(
    baseline: Sequence[float] | F64,
    candidate: Sequence[float] | F64,
    *,
    clusters: Sequence[Any] | npt.NDArray[Any] | None = None,
    confidence: float = 0.95,
    n_perm: int = 2000,
    seed: int = 0,
) -> PairedDelta:
    """Interval of mean(candidate - baseline) inverting the sign-flip test over clusters (prompts).

    Each side holds (1 - confidence) / 2: "upper bound < -0.5" is the exact one-sided test of a
    drop beyond 0.5 at that level when the pairs are exchangeable after the shift. Pairs with a
    NaN side are dropped; fewer than two clusters give a NaN interval.
    """
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"baseline and candidate must be aligned 1-d arrays, got {b.shape} and {c.shape}")
    keep = ~(np.isnan(b) | np.isnan(c))
    b, c = b[keep], c[keep]
    cl = None if clusters is None else np.asarray(clusters, dtype=object)[keep]
    nan = float("nan")
    if len(b) == 0:
        return PairedDelta(Interval(nan, nan, nan, confidence, 0, 0, 0, "none"), nan, nan, nan)
    diff = c - b
    sums, sizes = _units(diff, cl)
    k = len(sums)
    est = float(diff.mean())
    if k < 2:
        return PairedDelta(Interval(est, nan, nan, confidence, len(b), k, 0, "none"), float(b.mean()),
                           float(c.mean()), nan)  # fmt: skip
    alpha = (1.0 - confidence) / 2.0
    flips = flip_patterns(k, max(n_perm, min_resamples(alpha)), np.random.default_rng(seed))
    low, high = mean_shift_bounds(sums[None, :], sizes[None, :], flips, alpha)
    interval = Interval(est, float(low[0]), float(high[0]), confidence, len(b), k, len(flips), "sign-flip")
    return PairedDelta(interval, float(b.mean()), float(c.mean()), nan)


# --- ratio of quantiles: within-pair swaps ---------------------------------------------------


def _log_q(x: F64, q: float) -> F64:
    return np.asarray(np.log(np.maximum(np.percentile(x, q, axis=-1), 1e-12)), dtype=np.float64)


def ratio_swap_pvalue(b: F64, c: F64, log_ratio: float, q: float, swaps: B8) -> F64:
    """p-value of "q(candidate) / q(baseline) > exp(log_ratio)", per row of b, c (reps, n).

    Under the null the candidate is the baseline scaled by exp(log_ratio): dividing it out makes
    the two sides of a pair exchangeable, so swapping within pairs gives the null distribution.
    swaps: (N, n) patterns including the identity.
    """
    cs = c * np.exp(-log_ratio)
    obs = _log_q(cs, q) - _log_q(b, q)
    n_pat = swaps.shape[0]
    count = np.zeros(b.shape[0])
    chunk = max(1, _MAX_CELLS // max(b.shape[0] * b.shape[1], 1))
    for start in range(0, n_pat, chunk):
        s = swaps[start : start + chunk][None, :, :]
        cc = np.where(s, b[:, None, :], cs[:, None, :])
        bb = np.where(s, cs[:, None, :], b[:, None, :])
        t = _log_q(cc, q) - _log_q(bb, q)  # (reps, chunk)
        count += (t >= obs[:, None] - 1e-12).sum(axis=1)
    return np.asarray(count / n_pat, dtype=np.float64)


def paired_quantile_ratio(
    baseline: Sequence[float] | F64,
    candidate: Sequence[float] | F64,
    *,
    q: float,
    boundary: float,
    confidence: float = 0.95,
    n_perm: int = 2000,
    seed: int = 0,
) -> tuple[PairedDelta, float]:
    """(interval of log q(candidate) - log q(baseline), p-value of a log ratio above `boundary`).

    The decision is the exact swap test at the boundary; the interval inverts the same test by
    bisection (each side at (1 - confidence) / 2), ±inf where the data cannot bound a side.
    """
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    keep = ~(np.isnan(b) | np.isnan(c))
    b, c = b[keep][None, :], c[keep][None, :]
    n = b.shape[1]
    nan = float("nan")
    if n < 2:
        return PairedDelta(Interval(nan, nan, nan, confidence, n, n, 0, "none"), nan, nan, nan), nan
    alpha = (1.0 - confidence) / 2.0
    swaps = flip_patterns(n, max(n_perm, min_resamples(alpha)), np.random.default_rng(seed))
    lb, lc = float(_log_q(b, q)[0]), float(_log_q(c, q)[0])
    p_boundary = float(ratio_swap_pvalue(b, c, boundary, q, swaps)[0])
    logs = np.log(np.maximum(c, 1e-12)) - np.log(np.maximum(b, 1e-12))
    lo_end, hi_end = float(logs.min()) - 1.0, float(logs.max()) + 1.0

    def p_rise(theta: float) -> float:  # small when the candidate is clearly above exp(theta)
        return float(ratio_swap_pvalue(b, c, theta, q, swaps)[0])

    def p_fall(theta: float) -> float:  # the mirror test: candidate clearly below exp(theta)
        return float(ratio_swap_pvalue(c, b, -theta, q, swaps)[0])

    def crossing(p: Any, rejects_low: bool) -> float:
        lo, hi = lo_end, hi_end
        if rejects_low and p(lo) > alpha:
            return -np.inf
        if not rejects_low and p(hi) > alpha:
            return np.inf
        for _ in range(_BISECT_STEPS):
            mid = 0.5 * (lo + hi)
            if (p(mid) <= alpha) == rejects_low:
                lo = mid
            else:
                hi = mid
        return lo if rejects_low else hi

    low, high = crossing(p_rise, True), crossing(p_fall, False)
    interval = Interval(lc - lb, low, high, confidence, n, n, len(swaps), "swap")
    return PairedDelta(interval, lb, lc, nan), p_boundary

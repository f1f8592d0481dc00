"""Confidence intervals shared by the metrics stage, the reports and the CI gate.

The plain percentile bootstrap under-covers at the sample sizes this tool produces
(a CLIP mean over 12 prompts covers ~0.89 instead of 0.95; a latency p90 at n=24
~0.88, missing almost always on the low side). So:

- means (CLIP, cost, ok rate, and their paired deltas): the studentized bootstrap
  (bootstrap-t). Each replicate is standardised by its own standard error, so the
  interval inherits the t-like width small samples need and follows skewness.
- quantiles of one sample (latency p50/p90/p99): the distribution-free
  order-statistic interval from the binomial distribution, which holds its level
  exactly (conservatively) at any n; a bound the data cannot give is ±inf.
- any other statistic (e.g. a paired ratio of quantiles): BCa (bias-corrected and
  accelerated) bootstrap, acceleration from a leave-one-unit-out jackknife.
- shares (ok rate, refusal rate, any 0/1 column, and per-image shares such as the judge's
  adherence): Clopper–Pearson (`share_ci`), which lies in [0, 1] by construction. The
  studentized bootstrap gives a share near 0 or 1 nonsense such as 0.979 [-inf, 1.01]: most
  replicates of such data have no spread at all.

`clusters` resamples whole groups (e.g. prompt_id): images of one prompt are not
independent, so resampling images would give intervals that are too narrow. The
tests check coverage by simulation (tests/test_stats.py). Deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import beta, binom, norm

Stat = Callable[..., Any]  # called as stat(array, axis=1) on a (replicates, n) array
F64 = npt.NDArray[np.float64]
_MAX_CELLS = 4_000_000  # replicates x units drawn per chunk: bounds memory for long series
_MAX_JACKKNIFE_UNITS = 400  # above this, the jackknife deletes groups of units (acceleration ~ 1/sqrt(n))


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float
    n: int  # values used (NaNs dropped)
    n_clusters: int  # resampling units (== n without clusters)
    n_boot: int
    method: str = "studentized"  # studentized | bca | order-statistic | clopper-pearson | none

    @property
    def width(self) -> float:
        return self.high - self.low

    def __str__(self) -> str:
        pct = round(self.confidence * 100)
        return f"{self.estimate:.4g} [{self.low:.4g}, {self.high:.4g}] ({pct}% CI, n={self.n})"


@dataclass(frozen=True)
class PairedDelta:
    """candidate - baseline on the same (prompt, seed) pairs."""

    delta: Interval
    baseline: float
    candidate: float
    p_positive: float  # share of bootstrap replicates with delta > 0

    def __str__(self) -> str:
        return f"delta {self.delta} (baseline {self.baseline:.4g}, candidate {self.candidate:.4g})"


def _nan_interval(estimate: float, confidence: float, n: int, n_clusters: int, n_boot: int) -> Interval:
    return Interval(estimate, float("nan"), float("nan"), confidence, n, n_clusters, n_boot, "none")


def _check(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _encode(
    clusters: Sequence[Any] | npt.NDArray[Any] | None, keep: npt.NDArray[np.bool_], n: int
) -> npt.NDArray[np.intp]:
    """Cluster codes 0..k-1 per kept value; without clusters every value is its own unit."""
    if clusters is None:
        return np.arange(n, dtype=np.intp)
    arr = np.asarray(clusters, dtype=object)[keep]
    _, codes = np.unique(arr.astype(str), return_inverse=True)
    return np.asarray(codes, dtype=np.intp)


def _is_mean(stat: Stat) -> bool:
    return stat is np.mean or stat is np.nanmean


def _unit_counts(rng: np.random.Generator, n_boot: int, k: int) -> list[npt.NDArray[np.float64]]:
    """Multiplicity of each of k units in each replicate (rows sum to k), in memory-bounded chunks."""
    chunk = max(1, _MAX_CELLS // max(k, 1))
    probs = np.full(k, 1.0 / k)
    return [
        rng.multinomial(k, probs, size=min(chunk, n_boot - start)).astype(np.float64)
        for start in range(0, n_boot, chunk)
    ]


# --- studentized bootstrap for (cluster) means -------------------------------------------------


@dataclass(frozen=True)
class _Units:
    """Per-unit sums and sizes: the mean is the ratio sum(s)/sum(m) (weights images equally)."""

    s: F64
    m: F64

    @classmethod
    def of(cls, values: F64, codes: npt.NDArray[np.intp]) -> _Units:
        k = int(codes.max()) + 1
        sums = np.asarray(np.bincount(codes, weights=values, minlength=k), dtype=np.float64)
        return cls(sums, np.bincount(codes, minlength=k).astype(np.float64))

    @property
    def k(self) -> int:
        return len(self.s)


def _ratio_and_se(w: F64, u: _Units) -> tuple[F64, F64]:
    """Mean and its linearised (cluster-robust) standard error for each row of unit weights w.

    For equal unit sizes this is the sample std of unit means / sqrt(k), i.e. the
    usual standard error of a mean of k independent units.
    """
    k = u.k
    tot_m = w @ u.m
    theta = (w @ u.s) / tot_m
    ss = w @ (u.s * u.s) - 2.0 * theta * (w @ (u.s * u.m)) + theta * theta * (w @ (u.m * u.m))
    mbar = tot_m / k
    var = np.maximum(ss, 0.0) / (k * (k - 1)) / (mbar * mbar)
    return theta, np.sqrt(var)


def _studentized(
    u: _Units, confidence: float, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, float, F64]:
    """(estimate, low, high, replicate estimates) of the bootstrap-t interval for sum(s)/sum(m)."""
    one = np.ones((1, u.k))
    theta = float(_ratio_and_se(one, u)[0][0])
    # Work on values centred at the estimate: the variance's expanded sums then cancel at the scale of
    # the spread, not of the level (constant data give an exact 0 instead of round-off noise).
    u = _Units(u.s - theta * u.m, u.m)
    se = float(_ratio_and_se(one, u)[1][0])
    thetas, ts = [], []
    scale = max(abs(theta), 1.0) * 1e-12
    for w in _unit_counts(rng, n_boot, u.k):
        dev, s = _ratio_and_se(w, u)
        thetas.append(dev + theta)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(s > scale, dev / np.where(s > scale, s, 1.0), np.sign(dev) * np.inf)
        # A replicate without spread that lands on the estimate carries no evidence either way.
        t = np.where((s <= scale) & (np.abs(dev) <= scale), 0.0, t)
        ts.append(t)
    boot = np.concatenate(thetas)
    if se <= scale:
        return theta, theta, theta, boot  # every unit agrees exactly: nothing to resample
    tstar = np.concatenate(ts)
    alpha = (1.0 - confidence) / 2.0
    # No interpolation: replicates with no spread give t = ±inf (the data cannot bound that side).
    q_lo, q_hi = np.quantile(tstar, [alpha, 1.0 - alpha], method="inverted_cdf")
    with np.errstate(invalid="ignore"):
        low, high = theta - q_hi * se, theta - q_lo * se
    return theta, float(low), float(high), boot


# --- BCa for any other statistic ---------------------------------------------------------------


def _jackknife_groups(k: int, rng: np.random.Generator) -> list[npt.NDArray[np.intp]]:
    if k <= _MAX_JACKKNIFE_UNITS:
        return [np.array([i]) for i in range(k)]
    return list(np.array_split(rng.permutation(k), _MAX_JACKKNIFE_UNITS))


def _bca_bounds(estimate: float, boots: F64, jack: F64, confidence: float) -> tuple[float, float]:
    boots = boots[np.isfinite(boots)]
    if boots.size == 0:
        return float("nan"), float("nan")
    b = boots.size
    # Bias correction from the share of replicates below the estimate (ties count half).
    share = (np.sum(boots < estimate) + 0.5 * np.sum(boots == estimate)) / b
    share = float(np.clip(share, 1.0 / (b + 1), b / (b + 1)))
    z0 = float(norm.ppf(share))
    jack = jack[np.isfinite(jack)]
    d = jack.mean() - jack if jack.size else np.zeros(1)
    denom = 6.0 * float(np.sum(d * d)) ** 1.5
    accel = float(np.sum(d**3)) / denom if denom > 0 else 0.0
    alpha = (1.0 - confidence) / 2.0
    levels = []
    for z in (norm.ppf(alpha), norm.ppf(1.0 - alpha)):
        zz = z0 + z
        levels.append(float(norm.cdf(z0 + zz / (1.0 - accel * zz))))
    low, high = np.quantile(boots, levels)
    return float(low), float(high)


def _bca(
    estimate: float,
    evaluate: Callable[[npt.NDArray[np.intp]], F64],
    codes: npt.NDArray[np.intp],
    confidence: float,
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[float, float, F64]:
    """BCa interval; evaluate(rows of value indices) -> stat per row (rows may be any equal length)."""
    k = int(codes.max()) + 1
    members = [np.flatnonzero(codes == c) for c in range(k)]
    equal = len({len(m) for m in members}) == 1
    boots: list[F64] = []
    chunk = max(1, _MAX_CELLS // max(len(codes), 1))
    for start in range(0, n_boot, chunk):
        picks = rng.integers(0, k, size=(min(chunk, n_boot - start), k))
        if equal:
            boots.append(evaluate(np.stack(members)[picks].reshape(len(picks), -1)))
        else:
            boots.extend(evaluate(np.concatenate([members[c] for c in row])[None, :]) for row in picks)
    boot = np.concatenate(boots)
    groups = _jackknife_groups(k, rng)
    rest = [np.flatnonzero(~np.isin(codes, group)) for group in groups]
    if len({len(r) for r in rest}) == 1:  # one call on a (deletions x kept) index matrix
        jack = evaluate(np.stack(rest))
    else:
        jack = np.array([evaluate(r[None, :])[0] for r in rest], dtype=np.float64)
    low, high = _bca_bounds(estimate, boot, jack, confidence)
    return low, high, boot


# --- public API --------------------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float] | npt.NDArray[np.floating[Any]],
    *,
    stat: Stat = np.mean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: Sequence[Any] | npt.NDArray[Any] | None = None,
) -> Interval:
    """Bootstrap interval of stat(values); NaN values (unscored images) are dropped.

    Means get the studentized bootstrap, other statistics BCa. With `clusters`
    (e.g. prompt ids), whole clusters are resampled. Fewer than two resampling
    units give a NaN interval: one prompt says nothing about spread.
    """
    _check(confidence, n_boot)
    arr = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(arr)
    arr = arr[keep]
    if len(arr) == 0:
        return _nan_interval(float("nan"), confidence, 0, 0, n_boot)
    codes = _encode(clusters, keep, len(arr))
    n_units = int(codes.max()) + 1
    estimate = float(stat(arr[None, :], axis=1)[0])
    if n_units < 2:
        return _nan_interval(estimate, confidence, len(arr), n_units, n_boot)
    if _is_mean(stat) and np.isin(arr, (0.0, 1.0)).all():
        return share_ci(arr, confidence=confidence, clusters=codes if clusters is not None else None)
    rng = np.random.default_rng(seed)
    if _is_mean(stat):
        est, low, high, _ = _studentized(_Units.of(arr, codes), confidence, n_boot, rng)
        return Interval(est, low, high, confidence, len(arr), n_units, n_boot, "studentized")

    def evaluate(idx: npt.NDArray[np.intp]) -> F64:
        return np.asarray(stat(arr[idx], axis=1), dtype=np.float64)

    low, high, _ = _bca(estimate, evaluate, codes, confidence, n_boot, rng)
    return Interval(estimate, low, high, confidence, len(arr), n_units, n_boot, "bca")


def share_ci(
    values: Sequence[float] | npt.NDArray[np.floating[Any]],
    *,
    confidence: float = 0.95,
    clusters: Sequence[Any] | npt.NDArray[Any] | None = None,
) -> Interval:
    """Interval of a share: the mean of values in [0, 1] (0/1 outcomes, or per-image shares).

    Independent 0/1 outcomes: the exact Clopper–Pearson interval on k successes out of n (as
    scipy.stats.binomtest(k, n).proportion_ci(method="exact")); it holds its level at any n and p.
    With `clusters` (e.g. prompt ids: outcomes of one prompt go together) or fractional values,
    the same interval on the effective sample size n_eff = p(1 - p) / se^2, se being the
    cluster-robust standard error of the mean (the design effect, Korn & Graubard 1998), kept
    between the number of clusters (every cluster one outcome) and the number of values. When
    every value is 0 or every value is 1 there is no spread to measure: n_eff is the number of
    clusters. Both ends lie in [0, 1]. NaN values are dropped.
    """
    _check(confidence, 1)
    arr = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(arr)
    arr = arr[keep]
    n = len(arr)
    if n == 0:
        return _nan_interval(float("nan"), confidence, 0, 0, 0)
    if (arr < 0).any() or (arr > 1).any():
        raise ValueError("share_ci needs values in [0, 1]")
    codes = _encode(clusters, keep, n)
    u = _Units.of(arr, codes)
    p = float(arr.mean())
    n_eff = float(n)
    if clusters is not None or not np.isin(arr, (0.0, 1.0)).all():
        n_eff = float(u.k)
        if u.k >= 2 and 0.0 < p < 1.0:
            se = float(_ratio_and_se(np.ones((1, u.k)), _Units(u.s - p * u.m, u.m))[1][0])
            if se > 0:
                n_eff = float(np.clip(p * (1.0 - p) / (se * se), u.k, n))
    low, high = _clopper_pearson(p * n_eff, n_eff, confidence)
    return Interval(p, low, high, confidence, n, u.k, 0, "clopper-pearson")


def _clopper_pearson(x: float, n: float, confidence: float) -> tuple[float, float]:
    """Beta-quantile form of the exact binomial interval; x need not be a whole number."""
    alpha = (1.0 - confidence) / 2.0
    low = 0.0 if x <= 0 else float(beta.ppf(alpha, x, n - x + 1.0))
    high = 1.0 if x >= n else float(beta.ppf(1.0 - alpha, x + 1.0, n - x))
    return low, high


def quantile_order_ci(n: int, q: float, confidence: float) -> tuple[int | None, int | None]:
    """1-based order-statistic ranks (l, u) with P(X_(l) <= xi_q <= X_(u)) >= confidence.

    #{X_i <= xi_q} ~ Binomial(n, q), so the coverage is F(u-1) - F(l-1); each tail gets at
    most (1-confidence)/2. None means the sample is too small to bound that side.
    """
    alpha = (1.0 - confidence) / 2.0
    ranks = np.arange(0, n + 2)
    cdf = binom.cdf(ranks - 1, n, q)  # cdf[r] = F(r - 1) = P(B <= r - 1)
    lows = ranks[(ranks >= 1) & (ranks <= n) & (cdf <= alpha)]
    highs = ranks[(ranks >= 1) & (ranks <= n) & (cdf >= 1.0 - alpha)]
    low = int(lows.max()) if lows.size else None
    # The upper rank u needs F(u-1) >= 1 - alpha, i.e. cdf at index u.
    high = int(highs.min()) if highs.size else None
    return low, high


def percentile_ci(
    values: Sequence[float] | npt.NDArray[np.floating[Any]],
    qs: Sequence[float] = (50.0, 90.0, 99.0),
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[float, Interval]:
    """Order-statistic (binomial) intervals for percentiles, e.g. latency p50/p90/p99.

    Distribution-free and exact-or-conservative at any n, unlike the bootstrap, which
    misses tail percentiles of small samples mostly on the low side. A side the sample
    cannot bound is ±inf: the p99 of 50 latencies has no upper bound at 95%.
    `n_boot` and `seed` are accepted for a uniform call signature and not used.
    """
    _check(confidence, n_boot)
    arr = np.sort(np.asarray(values, dtype=np.float64))
    arr = arr[~np.isnan(arr)]
    q = np.asarray(qs, dtype=np.float64)
    n = len(arr)
    if n == 0:
        return {float(p): _nan_interval(float("nan"), confidence, 0, 0, 0) for p in q}
    estimates = np.percentile(arr, q)
    out: dict[float, Interval] = {}
    for p, est in zip(q, estimates, strict=True):
        if n < 2:
            out[float(p)] = _nan_interval(float(est), confidence, n, n, 0)
            continue
        lo_rank, hi_rank = quantile_order_ci(n, float(p) / 100.0, confidence)
        low = float(arr[lo_rank - 1]) if lo_rank is not None else -np.inf
        high = float(arr[hi_rank - 1]) if hi_rank is not None else np.inf
        out[float(p)] = Interval(float(est), low, high, confidence, n, n, 0, "order-statistic")
    return out


def paired_bootstrap_delta(
    baseline: Sequence[float] | npt.NDArray[np.floating[Any]],
    candidate: Sequence[float] | npt.NDArray[np.floating[Any]],
    *,
    stat: Stat = np.mean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: Sequence[Any] | npt.NDArray[Any] | None = None,
) -> PairedDelta:
    """Interval of stat(candidate) - stat(baseline) resampling pairs (or clusters of pairs) jointly.

    The arrays must be aligned: element i of both comes from the same prompt and
    seed. Pairs where either side is NaN are dropped together. A mean delta gets the
    studentized bootstrap on the per-pair differences; other statistics get BCa.
    """
    _check(confidence, n_boot)
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"baseline and candidate must be aligned 1-d arrays, got {b.shape} and {c.shape}")
    keep = ~(np.isnan(b) | np.isnan(c))
    b, c = b[keep], c[keep]
    if len(b) == 0:
        return PairedDelta(
            _nan_interval(float("nan"), confidence, 0, 0, n_boot), float("nan"), float("nan"), float("nan")
        )
    codes = _encode(clusters, keep, len(b))
    sb = float(stat(b[None, :], axis=1)[0])
    sc = float(stat(c[None, :], axis=1)[0])
    n_units = int(codes.max()) + 1
    if n_units < 2:
        return PairedDelta(_nan_interval(sc - sb, confidence, len(b), n_units, n_boot), sb, sc, float("nan"))
    rng = np.random.default_rng(seed)
    if _is_mean(stat):
        # The mean of differences is the difference of means, weighted by the same unit draws.
        est, low, high, boot = _studentized(_Units.of(c - b, codes), confidence, n_boot, rng)
        delta = Interval(est, low, high, confidence, len(b), n_units, n_boot, "studentized")
        return PairedDelta(delta, sb, sc, float(np.mean(boot > 0)))

    def evaluate(idx: npt.NDArray[np.intp]) -> F64:
        return np.asarray(stat(c[idx], axis=1), np.float64) - np.asarray(stat(b[idx], axis=1), np.float64)

    low, high, boot = _bca(sc - sb, evaluate, codes, confidence, n_boot, rng)
    delta = Interval(sc - sb, low, high, confidence, len(b), n_units, n_boot, "bca")
    return PairedDelta(delta, sb, sc, float(np.mean(boot > 0)))

"""One-sided paired non-inferiority tests with a BCa bootstrap, and Holm's step-down correction.

For contender g against group h on the prompts both answered, d_i = q_g,i - q_h,i (per-prompt
means over seeds, higher is better). H0: mean(d) <= -margin (g is worse than h by at least the
margin); rejecting it shows g non-inferior to h. The p-value is the BCa bootstrap's: the level at
which the one-sided BCa lower bound of mean(d) equals -margin, so "p <= alpha" is exactly "the
BCa lower bound at 1-alpha is above -margin". BCa corrects the percentile bootstrap for bias and
skewness (acceleration from the jackknife), which is what keeps the level near nominal on skewed
per-prompt scores (tests/test_decide_simulation.py measures it). The bootstrap is drawn with
numpy and the interval agrees with scipy.stats.bootstrap(method="BCa") (tests/test_decide.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri
from scipy.stats import norm

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class PairTest:
    """g against h: the mean paired difference, its two one-sided BCa bounds, the p-value of H0."""

    n: int  # prompts both answered
    diff: float  # mean(q_g - q_h)
    low: float  # one-sided lower bound at `confidence` (BCa)
    high: float  # one-sided upper bound at `confidence` (BCa)
    p: float  # p-value of H0: diff <= -margin (NaN when untestable)
    sd: float  # standard deviation of the per-prompt differences


def bca_p_and_bounds(
    estimate: F64, boot: F64, jack: F64, threshold: float, confidence: float
) -> tuple[F64, F64, F64]:
    """(p of H0: theta <= threshold, lower bound, upper bound) per column, BCa on replicates `boot`
    (replicates x columns) with jackknife values `jack` (units x columns).

    With z0 the bias correction and a the acceleration, the BCa lower bound at level alpha is the
    Phi(z0 + (z0 + z_alpha) / (1 - a (z0 + z_alpha))) quantile of the replicates. Setting that
    quantile to the threshold and solving for alpha gives the p-value in closed form.
    """
    b = boot.shape[0]
    share_below = (np.sum(boot < estimate, axis=0) + 0.5 * np.sum(boot == estimate, axis=0)) / b
    z0 = ndtri(np.clip(share_below, 1.0 / (b + 1), b / (b + 1)))
    d = jack.mean(axis=0) - jack
    denom = 6.0 * np.sum(d * d, axis=0) ** 1.5
    with np.errstate(divide="ignore", invalid="ignore"):
        accel = np.where(denom > 0, np.sum(d**3, axis=0) / np.where(denom > 0, denom, 1.0), 0.0)

    def level(z: float) -> F64:
        zz = z0 + z
        return np.asarray(ndtr(z0 + zz / (1.0 - accel * zz)), dtype=np.float64)

    z_a = float(ndtri(1.0 - confidence))
    ordered = np.sort(boot, axis=0)
    low, high = _quantiles(ordered, level(z_a)), _quantiles(ordered, level(-z_a))
    # Share of replicates at or below the threshold; 0 or b are beyond what B replicates resolve.
    q = (np.sum(boot < threshold, axis=0) + 0.5 * np.sum(boot == threshold, axis=0)) / b
    q = np.clip(q, 0.5 / b, 1.0 - 0.5 / b)
    w = ndtri(q) - z0
    u = w / (1.0 + accel * w)
    return np.asarray(ndtr(u - z0), dtype=np.float64), low, high


def _quantiles(ordered: F64, levels: F64) -> F64:
    """Per column j, the levels[j] quantile of the sorted column (numpy's default linear rule)."""
    b = ordered.shape[0]
    pos = np.clip(levels, 0.0, 1.0) * (b - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, b - 1)
    cols = np.arange(ordered.shape[1])
    frac = pos - lo
    return np.asarray(ordered[lo, cols] * (1.0 - frac) + ordered[hi, cols] * frac, dtype=np.float64)


def _weights(rng: np.random.Generator, n_boot: int, n: int) -> F64:
    """Resampling weights (replicates x units, rows summing to 1): unit i drawn c times weighs c/n."""
    idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64) / n


def _test_columns(d: F64, margin: float, w: F64, confidence: float) -> list[PairTest]:
    """PairTests for the columns of d (units x pairs), all resampled with the weights w."""
    n = d.shape[0]
    est = d.mean(axis=0)
    sd = d.std(axis=0, ddof=1)
    boot = w @ d
    jack = (d.sum(axis=0)[None, :] - d) / (n - 1)
    p, low, high = bca_p_and_bounds(est, boot, jack, -margin, confidence)
    out = []
    for j in range(d.shape[1]):
        if sd[j] == 0.0:
            # Every prompt differs by the same amount: the data leave no doubt either way.
            e = float(est[j])
            out.append(PairTest(n, e, e, e, 0.0 if e > -margin else 1.0, 0.0))
        else:
            out.append(PairTest(n, float(est[j]), float(low[j]), float(high[j]), float(p[j]), float(sd[j])))
    return out


def pair_tests(
    table: F64, margin: float, *, n_boot: int, confidence: float, seed: int, min_n: int
) -> dict[tuple[int, int], PairTest]:
    """Every ordered pair (g, h) of the columns of `table` (prompts x groups, NaN = not answered).

    Pairs answering the same prompts share one bootstrap draw (the usual case: one matrix
    product for all pairs); pairs with another prompt set get a draw on their shared prompts.
    """
    rng = np.random.default_rng(seed)
    k = table.shape[1]
    answered = ~np.isnan(table)
    by_rows: dict[bytes, list[tuple[int, int]]] = {}
    out: dict[tuple[int, int], PairTest] = {}
    for g in range(k):
        for h in range(k):
            if g == h:
                continue
            shared = answered[:, g] & answered[:, h]
            n = int(shared.sum())
            if n < max(min_n, 2):
                d = table[shared, g] - table[shared, h]
                est = float(d.mean()) if n else float("nan")
                out[(g, h)] = PairTest(n, est, float("nan"), float("nan"), float("nan"), float("nan"))
            else:
                by_rows.setdefault(np.packbits(shared).tobytes() + bytes([n % 256]), []).append((g, h))
    for pairs in by_rows.values():
        g0, h0 = pairs[0]
        shared = answered[:, g0] & answered[:, h0]
        q = table[shared]
        d = np.stack([q[:, g] - q[:, h] for g, h in pairs], axis=1)
        tests = _test_columns(d, margin, _weights(rng, n_boot, int(shared.sum())), confidence)
        out.update(zip(pairs, tests, strict=True))
    return out


def holm(pvalues: F64) -> F64:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count as a test)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    if not m:
        return out
    order = idx[np.argsort(p[idx], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p[i])))
        out[i] = running
    return out


def prompts_to_decide(diff: float, sd: float, n: int, margin: float, alpha: float, power: float = 0.8) -> int:
    """About how many more prompts would settle "within the margin or not" at the observed effect:
    n* = ((z_alpha + z_power) * sd / |diff + margin|)^2 - n (a normal approximation, stated as such)."""
    gap = abs(diff + margin)
    if not np.isfinite(sd) or sd <= 0 or gap == 0:
        return -1  # no finite number of prompts separates an effect sitting exactly on the margin
    z = float(norm.ppf(1.0 - alpha) + norm.ppf(power))
    return max(1, int(np.ceil((z * sd / gap) ** 2)) - n)

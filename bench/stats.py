"""Bootstrap intervals shared by the metrics stage, the reports and the CI gate.

Percentile bootstrap, vectorised over replicates, deterministic for a seed.
`clusters` resamples whole groups (e.g. prompt_id): images of one prompt are
not independent, so resampling images would give intervals that are too narrow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

Stat = Callable[..., Any]  # called as stat(array, axis=1) on a (replicates, n) array
_MAX_CELLS = 4_000_000  # replicates x samples drawn per chunk: bounds memory for long latency series


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float
    confidence: float
    n: int  # values used (NaNs dropped)
    n_clusters: int  # resampling units (== n without clusters)
    n_boot: int

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
    return Interval(estimate, float("nan"), float("nan"), confidence, n, n_clusters, n_boot)


def _bounds(boots: npt.NDArray[np.float64], confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha], axis=0)
    return float(low), float(high)


def _check(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")


def _replicate_indices(
    rng: np.random.Generator, n_boot: int, n: int, codes: npt.NDArray[np.intp] | None
) -> list[npt.NDArray[np.intp]]:
    """Index matrices (replicates x n) in memory-bounded chunks; clusters resample whole groups."""
    chunk = max(1, _MAX_CELLS // max(n, 1))
    out = []
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        if codes is None:
            out.append(rng.integers(0, n, size=(rows, n)))
        else:
            out.append(_cluster_indices(rng, rows, codes))
    return out


def _cluster_indices(
    rng: np.random.Generator, rows: int, codes: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """Resample clusters with replacement; replicates keep n columns only when clusters are equal-sized."""
    k = int(codes.max()) + 1
    members = [np.flatnonzero(codes == c) for c in range(k)]
    picks = rng.integers(0, k, size=(rows, k))
    sizes = {len(m) for m in members}
    if len(sizes) == 1:
        table = np.stack(members)  # (k, size)
        return table[picks].reshape(rows, -1)
    # Unequal cluster sizes: ragged replicates; pad by repeating a replicate's own values is wrong,
    # so the caller handles this case with per-replicate sums (see bootstrap_ci's mean path).
    raise _RaggedClusters


class _RaggedClusters(Exception):
    pass


def _encode(
    clusters: Sequence[Any] | npt.NDArray[Any] | None, keep: npt.NDArray[np.bool_]
) -> npt.NDArray[np.intp] | None:
    if clusters is None:
        return None
    arr = np.asarray(clusters, dtype=object)[keep]
    _, codes = np.unique(arr.astype(str), return_inverse=True)
    return np.asarray(codes, dtype=np.intp)


def _boot_stat(
    values: npt.NDArray[np.float64],
    codes: npt.NDArray[np.intp] | None,
    stat: Stat,
    n_boot: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    try:
        parts = [
            np.asarray(stat(values[idx], axis=1), dtype=np.float64)
            for idx in _replicate_indices(rng, n_boot, len(values), codes)
        ]
        return np.concatenate(parts)
    except _RaggedClusters:
        pass
    assert codes is not None
    k = int(codes.max()) + 1
    if stat is np.mean or stat is np.nanmean:
        # Weighted by cluster multiplicity: mean = sum(count_c * sum_c) / sum(count_c * size_c).
        sums = np.bincount(codes, weights=values, minlength=k)
        sizes = np.bincount(codes, minlength=k).astype(np.float64)
        counts = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(np.float64)
        return np.asarray((counts @ sums) / (counts @ sizes), dtype=np.float64)
    members = [values[codes == c] for c in range(k)]
    picks = rng.integers(0, k, size=(n_boot, k))
    return np.array(
        [float(stat(np.concatenate([members[c] for c in row])[None, :], axis=1)[0]) for row in picks]
    )


def bootstrap_ci(
    values: Sequence[float] | npt.NDArray[np.floating[Any]],
    *,
    stat: Stat = np.mean,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    clusters: Sequence[Any] | npt.NDArray[Any] | None = None,
) -> Interval:
    """Percentile-bootstrap interval of stat(values); NaN values (unscored images) are dropped.

    With `clusters` (e.g. prompt ids), whole clusters are resampled. Fewer than two
    resampling units give a NaN interval: one prompt says nothing about spread.
    """
    _check(confidence, n_boot)
    arr = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(arr)
    arr = arr[keep]
    codes = _encode(clusters, keep)
    n_units = len(arr) if codes is None else (int(codes.max()) + 1 if len(codes) else 0)
    if len(arr) == 0:
        return _nan_interval(float("nan"), confidence, 0, 0, n_boot)
    estimate = float(stat(arr[None, :], axis=1)[0])
    if n_units < 2:
        return _nan_interval(estimate, confidence, len(arr), n_units, n_boot)
    boots = _boot_stat(arr, codes, stat, n_boot, np.random.default_rng(seed))
    low, high = _bounds(boots, confidence)
    return Interval(estimate, low, high, confidence, len(arr), n_units, n_boot)


def percentile_ci(
    values: Sequence[float] | npt.NDArray[np.floating[Any]],
    qs: Sequence[float] = (50.0, 90.0, 99.0),
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[float, Interval]:
    """Bootstrap intervals for percentiles (e.g. latency p50/p90/p99), all from the same replicates.

    Tail percentiles of small samples are unreliable: the p99 of 50 latencies is
    essentially the maximum, and its interval says so by being wide and one-sided.
    """
    _check(confidence, n_boot)
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    q = np.asarray(qs, dtype=np.float64)
    if len(arr) == 0:
        return {float(p): _nan_interval(float("nan"), confidence, 0, 0, n_boot) for p in q}
    estimates = np.percentile(arr, q)
    if len(arr) < 2:
        return {
            float(p): _nan_interval(float(e), confidence, 1, 1, n_boot)
            for p, e in zip(q, estimates, strict=True)
        }
    rng = np.random.default_rng(seed)
    parts = [np.percentile(arr[idx], q, axis=1).T for idx in _replicate_indices(rng, n_boot, len(arr), None)]
    boots = np.concatenate(parts)  # (n_boot, len(q))
    out: dict[float, Interval] = {}
    for j, p in enumerate(q):
        low, high = _bounds(boots[:, j], confidence)
        out[float(p)] = Interval(float(estimates[j]), low, high, confidence, len(arr), len(arr), n_boot)
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
    seed. Pairs where either side is NaN are dropped together.
    """
    _check(confidence, n_boot)
    b = np.asarray(baseline, dtype=np.float64)
    c = np.asarray(candidate, dtype=np.float64)
    if b.shape != c.shape or b.ndim != 1:
        raise ValueError(f"baseline and candidate must be aligned 1-d arrays, got {b.shape} and {c.shape}")
    keep = ~(np.isnan(b) | np.isnan(c))
    b, c = b[keep], c[keep]
    codes = _encode(clusters, keep)
    if len(b) == 0:
        return PairedDelta(
            _nan_interval(float("nan"), confidence, 0, 0, n_boot), float("nan"), float("nan"), float("nan")
        )
    sb = float(stat(b[None, :], axis=1)[0])
    sc = float(stat(c[None, :], axis=1)[0])
    n_units = len(b) if codes is None else int(codes.max()) + 1
    if n_units < 2:
        return PairedDelta(_nan_interval(sc - sb, confidence, len(b), n_units, n_boot), sb, sc, float("nan"))
    rng = np.random.default_rng(seed)
    if codes is not None and len(set(np.bincount(codes).tolist())) > 1:
        if not (stat is np.mean or stat is np.nanmean):
            raise ValueError("paired bootstrap over unequal clusters supports stat=np.mean only")
        # Mean of a difference is the difference of means, both weighted by the same cluster draws.
        deltas = _boot_stat(c - b, codes, np.mean, n_boot, rng)
    else:
        deltas_parts = []
        for idx in _replicate_indices(rng, n_boot, len(b), codes):
            deltas_parts.append(
                np.asarray(stat(c[idx], axis=1), np.float64) - np.asarray(stat(b[idx], axis=1), np.float64)
            )
        deltas = np.concatenate(deltas_parts)
    low, high = _bounds(deltas, confidence)
    delta = Interval(sc - sb, low, high, confidence, len(b), n_units, n_boot)
    return PairedDelta(delta, sb, sc, float(np.mean(deltas > 0)))

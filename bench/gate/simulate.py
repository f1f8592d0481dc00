"""Seeded simulations of the gate's decision rules: false alarms at the boundary, power at a planted change.

`python -m bench.gate.simulate` prints the tables in docs/gate-checks.md (add `--bootstrap` for
the studentized/BCa bootstrap rows the gate used before, which take minutes);
tests/test_gate_simulation.py runs the same functions with fewer draws and holds the false-alarm
rates to nominal + 1 point. Every function calls the gate's own code (bench.permutation,
bench.arena.ratings) on data drawn from a fixed seed.

Data, one-sided nominal level 2.5% (the gate's 95% two-sided interval on one target):
- CLIP: k prompts x 2 images; score = 25 + prompt effect + noise, noise normal or lognormal
  (sigma 1, standardised: skewness 6) drawn independently for baseline and candidate; the
  candidate is shifted down by 0.5 (boundary) or 1.5 (planted drop). "skewed-diff": the
  candidate's change per prompt is itself lognormal (the pairs are then not exchangeable).
- latency: n request pairs, latency = request effect x noise (lognormal sigma 0.3 / normal
  cv 0.1), the candidate scaled by 1.2 (boundary of max_rise_p90 = 0.20) or 2.0 (planted).
- arena: votes between a candidate group and the same group of the baseline (20% ties),
  true Elo difference 0 (false alarm), -100 or -261 (power).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import numpy.typing as npt

from bench.permutation import flip_patterns, mean_shift_bounds, ratio_swap_pvalue

F64 = npt.NDArray[np.float64]
ALPHA = 0.025  # one-sided: the gate's 95% interval, one target (no Bonferroni split)
CLIP_MAX_DROP = 0.5
LATENCY_MAX_RISE = 0.20
IMAGES_PER_PROMPT = 2


def _noise(rng: np.random.Generator, kind: str, shape: tuple[int, ...], scale: float) -> F64:
    if kind == "normal":
        return np.asarray(scale * rng.normal(size=shape), dtype=np.float64)
    sigma = 1.0
    mean, sd = np.exp(sigma**2 / 2), np.sqrt((np.exp(sigma**2) - 1) * np.exp(sigma**2))
    return np.asarray(scale * (np.exp(sigma * rng.normal(size=shape)) - mean) / sd, dtype=np.float64)


def clip_scores(rng: np.random.Generator, kind: str, reps: int, k: int, drop: float) -> tuple[F64, F64]:
    """(baseline, candidate) per-image scores, shape (reps, k, IMAGES_PER_PROMPT)."""
    shape = (reps, k, IMAGES_PER_PROMPT)
    prompt = rng.gamma(2.0, 1.5, size=(reps, k, 1))  # skewed prompt difficulty, shared by both runs
    base = 25.0 + prompt + _noise(rng, "normal" if kind == "normal" else "lognormal", shape, 2.0)
    if kind == "skewed-diff":  # not exchangeable: the change itself is skewed across prompts
        change = _noise(rng, "lognormal", (reps, k, 1), 1.0)
        return base, base - drop + change + rng.normal(0.0, 0.5, size=shape)
    cand = 25.0 + prompt - drop + _noise(rng, kind, shape, 2.0)
    return base, cand


def clip_fail_rate(kind: str, k: int, drop: float, reps: int, seed: int, n_perm: int = 2000) -> float:
    """Share of draws where the gate's CLIP check fails (upper bound < -0.5)."""
    rng = np.random.default_rng(seed)
    base, cand = clip_scores(rng, kind, reps, k, drop)
    sums = (cand - base).sum(axis=2)
    sizes = np.full_like(sums, float(IMAGES_PER_PROMPT))
    flips = flip_patterns(k, n_perm, rng)
    _, high = mean_shift_bounds(sums, sizes, flips, ALPHA)
    return float(np.mean(high < -CLIP_MAX_DROP))


def latencies(rng: np.random.Generator, kind: str, reps: int, n: int, ratio: float) -> tuple[F64, F64]:
    effect = rng.lognormal(0.0, 0.3, size=(reps, n))  # some requests are slower in both runs
    if kind == "normal":
        b = effect * (1.0 + 0.1 * rng.normal(size=(reps, n)))
        c = ratio * effect * (1.0 + 0.1 * rng.normal(size=(reps, n)))
    else:
        b = effect * rng.lognormal(0.0, 0.3, size=(reps, n))
        c = ratio * effect * rng.lognormal(0.0, 0.3, size=(reps, n))
    return np.maximum(b, 1e-3), np.maximum(c, 1e-3)


def latency_fail_rate(kind: str, n: int, ratio: float, reps: int, seed: int, n_perm: int = 500) -> float:
    """Share of draws where the gate's p90 check fails (swap test at 1.20 rejects)."""
    rng = np.random.default_rng(seed)
    b, c = latencies(rng, kind, reps, n, ratio)
    swaps = flip_patterns(n, n_perm, rng, exact=False)
    p = ratio_swap_pvalue(b, c, float(np.log1p(LATENCY_MAX_RISE)), 90.0, swaps)
    return float(np.mean(p <= ALPHA))


def elo_fail_rate(elo_diff: float, n_votes: int, reps: int, seed: int, n_boot: int = 300) -> float:
    """Share of draws where the arena check fails: upper bound of Elo(cand) - Elo(base) < 0."""
    from bench.arena.ratings import rate
    from bench.arena.votes import Side, Vote

    rng = np.random.default_rng(seed)
    cand = Side("candidate: g", "c", "t", {}, "")
    base = Side("baseline: g", "b", "t", {}, "baseline: /b")
    p_win = 1.0 / (1.0 + 10.0 ** (-elo_diff / 400.0))
    fails = 0
    for r in range(reps):
        tie = rng.random(n_votes) < 0.2
        win = rng.random(n_votes) < p_win
        left_is_cand = rng.random(n_votes) < 0.5
        votes = []
        for i in range(n_votes):
            choice = "tie" if tie[i] else ("left" if win[i] == left_is_cand[i] else "right")
            left, right = (cand, base) if left_is_cand[i] else (base, cand)
            votes.append(Vote(str(i), "", "sim", "p", "", left, right, choice))
        ratings = rate(votes, n_boot=n_boot, confidence=1.0 - 2 * ALPHA, seed=r)
        _, _, high = ratings.difference(cand.arm, base.arm)
        fails += bool(high < 0.0)
    return fails / reps


def _bootstrap_rows(reps: int) -> list[str]:
    """The gate's previous rules (studentized bootstrap for CLIP, BCa for the p90 ratio), for comparison."""
    from bench.stats import paired_bootstrap_delta

    def log_p90(a: F64, axis: int) -> F64:
        return np.asarray(np.log(np.percentile(a, 90.0, axis=axis)), dtype=np.float64)

    rows = []
    for kind in ("normal", "lognormal", "skewed-diff"):
        for k in (12, 48):
            rng = np.random.default_rng(k)
            base, cand = clip_scores(rng, kind, reps, k, CLIP_MAX_DROP)
            clusters = np.repeat(np.arange(k), IMAGES_PER_PROMPT)
            fails = [
                paired_bootstrap_delta(
                    b.ravel(), c.ravel(), clusters=clusters, n_boot=1000, seed=i
                ).delta.high
                < -CLIP_MAX_DROP
                for i, (b, c) in enumerate(zip(base, cand, strict=True))
            ]
            rows.append(f"| CLIP, studentized bootstrap | {kind} | {k} | {100 * np.mean(fails):.1f}% |")
    for kind in ("normal", "lognormal"):
        for n in (12, 48):
            rng = np.random.default_rng(n)
            b, c = latencies(rng, kind, reps, n, 1.0 + LATENCY_MAX_RISE)
            fails = [
                paired_bootstrap_delta(x, y, stat=log_p90, n_boot=1000, seed=i).delta.low
                > np.log1p(LATENCY_MAX_RISE)
                for i, (x, y) in enumerate(zip(b, c, strict=True))
            ]
            rows.append(f"| latency p90 ratio, BCa | {kind} | {n} | {100 * np.mean(fails):.1f}% |")
    return rows


def tables(reps: int = 4000, elo_reps: int = 1000, bootstrap: bool = False) -> str:
    out = [
        f"CLIP check (fail if upper bound < -{CLIP_MAX_DROP}), {reps} draws per cell, nominal {100 * ALPHA:g}%:",
        "",
        "| data | prompts | false alarms (true drop 0.5) | power (true drop 1.5) |",
        "|---|---|---|---|",
    ]
    for kind in ("normal", "lognormal", "skewed-diff"):
        for k in (12, 48):
            fa = clip_fail_rate(kind, k, CLIP_MAX_DROP, reps, seed=k)
            pw = clip_fail_rate(kind, k, 1.5, reps, seed=k + 1)
            out.append(f"| {kind} | {k} | {100 * fa:.1f}% | {100 * pw:.1f}% |")
    out += [
        "",
        f"latency p90 check (fail if ratio lower bound > {1 + LATENCY_MAX_RISE:.2f}), {reps} draws per cell:",
        "",
        "| data | request pairs | false alarms (true ratio 1.2) | power (true ratio 2.0) |",
        "|---|---|---|---|",
    ]
    for kind in ("normal", "lognormal"):
        for n in (12, 48):
            fa = latency_fail_rate(kind, n, 1.0 + LATENCY_MAX_RISE, reps, seed=n)
            pw = latency_fail_rate(kind, n, 2.0, reps, seed=n + 1)
            out.append(f"| {kind} | {n} | {100 * fa:.1f}% | {100 * pw:.1f}% |")
    out += [
        "",
        f"arena Elo check (fail if upper bound of the difference < 0), {elo_reps} draws per cell:",
        "",
        "| votes (candidate vs baseline, 20% ties) | false alarms (true 0) | power at -100 | power at -261 |",
        "|---|---|---|---|",
    ]
    for n_votes in (90, 200):
        fa = elo_fail_rate(0.0, n_votes, elo_reps, seed=n_votes)
        p100 = elo_fail_rate(-100.0, n_votes, elo_reps, seed=n_votes + 1)
        p261 = elo_fail_rate(-261.0, n_votes, elo_reps, seed=n_votes + 2)
        out.append(f"| {n_votes} | {100 * fa:.1f}% | {100 * p100:.1f}% | {100 * p261:.1f}% |")
    if bootstrap:
        n = min(reps, 1000)
        out += ["", f"the previous rules at the boundary, {n} draws per cell:", "",
                "| rule | data | n | false alarms |", "|---|---|---|---|", *_bootstrap_rows(n)]  # fmt: skip
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate.simulate", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=4000, help="draws per cell (CLIP and latency)")
    parser.add_argument("--elo-reps", type=int, default=1000, help="draws per cell (arena)")
    parser.add_argument("--bootstrap", action="store_true", help="also the previous bootstrap rules (slow)")
    ns = parser.parse_args(argv)
    start = time.perf_counter()
    print(tables(ns.reps, ns.elo_reps, ns.bootstrap))
    print(f"\n({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

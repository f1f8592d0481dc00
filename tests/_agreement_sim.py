"""Seeded simulation: how many votes `report.quality_metric: auto` needs to pick the signal that agrees.

Each vote shows two images of latent quality q (normal: N(0, 1); skewed: exponential, most images
alike and a few much better). The rater prefers the better one with probability
sigmoid((q_left - q_right) / HUMAN_NOISE) and says "tie" TIE_SHARE of the time. Two automated signals
score each image as q + sigma * noise, sigma calibrated (on 50,000 simulated votes) so that one
agrees with the decisive votes ~80% of the time and the other ~55%. For each number of votes, the
rule bench.arena.agreement.preferred_signal is applied REPS times; the figure is how often it names
the ~80% signal (naming the other, or none, counts as wrong).

Run `PYTHONPATH=$PWD python tests/_agreement_sim.py` to print the table in docs/signal-agreement.md.
"""

from __future__ import annotations

import numpy as np

from bench.arena.agreement import Agreement, InterRater, SignalAgreement, preferred_signal, vote_agreement
from bench.arena.votes import Side, Vote

HUMAN_NOISE = 0.3
TIE_SHARE = 0.15
TARGETS = {"pickscore": 0.80, "clip": 0.55}  # the agreeing signal and the weak one
GRID = (5, 10, 15, 20, 30, 50, 75, 100)
REPS = 400
NAN = float("nan")


def _quality(rng: np.random.Generator, dist: str, size: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(size) if dist == "normal" else rng.exponential(1.0, size)


def _human_left(rng: np.random.Generator, q: np.ndarray) -> np.ndarray:
    p_left = 1.0 / (1.0 + np.exp(-(q[..., 0] - q[..., 1]) / HUMAN_NOISE))
    return np.asarray(rng.random(p_left.shape) < p_left)


def agreement_rate(sigma: float, dist: str, n: int = 50_000, seed: int = 7) -> float:
    """Share of decisive votes whose winner the signal q + sigma * N(0,1) scores higher."""
    rng = np.random.default_rng(seed)
    q = _quality(rng, dist, (n, 2))
    left = _human_left(rng, q)
    s = q + sigma * rng.standard_normal((n, 2))
    return float(np.mean((s[:, 0] > s[:, 1]) == left))


def calibrate(target: float, dist: str) -> float:
    """sigma with agreement_rate(sigma) ≈ target (bisection on a log scale; the rate falls with sigma)."""
    lo, hi = -4.0, 6.0
    for _ in range(25):
        mid = (lo + hi) / 2
        if agreement_rate(float(np.exp(mid)), dist) > target:
            lo = mid
        else:
            hi = mid
    return float(np.exp((lo + hi) / 2))


def _side(sha: str) -> Side:
    return Side("arm-" + sha[:1], sha, "t", {}, "")


def simulated_votes(
    rng: np.random.Generator, n: int, dist: str, sigmas: dict[str, float]
) -> tuple[list[Vote], dict[str, dict[str, float]]]:
    """n decisive votes (plus ties on top, left out by the rule) and each signal's per-image scores."""
    n_ties = int(rng.binomial(n, TIE_SHARE / (1 - TIE_SHARE)))
    total = n + n_ties
    q = _quality(rng, dist, (total, 2))
    left = _human_left(rng, q)
    scores: dict[str, dict[str, float]] = {name: {} for name in sigmas}
    votes = []
    for i in range(total):
        a, b = f"a{i}", f"b{i}"
        choice = "tie" if i >= n else ("left" if left[i] else "right")
        votes.append(Vote(str(i), "t", "r", "p", "", _side(a), _side(b), choice))
        for name, sigma in sigmas.items():
            noisy = q[i] + sigma * rng.standard_normal(2)
            scores[name][a], scores[name][b] = float(noisy[0]), float(noisy[1])
    return votes, scores


def pick_rate(n: int, dist: str, sigmas: dict[str, float], reps: int = REPS, seed: int = 0) -> float:
    """How often preferred_signal names the agreeing signal after n decisive votes."""
    rng = np.random.default_rng(seed)
    right = 0
    for _ in range(reps):
        votes, scores = simulated_votes(rng, n, dist, sigmas)
        rows = []
        for name, per_image in scores.items():
            agree, used, tied, unscored = vote_agreement(votes, per_image)
            acc = float(agree @ used / used.sum())
            rows.append(
                SignalAgreement(name, int(used.sum()), tied, unscored, acc, NAN, NAN, NAN, NAN, NAN, 0)
            )
        best = preferred_signal(Agreement(rows, InterRater(NAN, 0, 0), len(votes), 0.95), min_votes=n)
        right += best is not None and best.signal == "pickscore"
    return right / reps


def table() -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for dist in ("normal", "skewed"):
        sigmas = {name: calibrate(t, dist) for name, t in TARGETS.items()}
        out[dist] = {n: pick_rate(n, dist, sigmas) for n in GRID}
    return out


if __name__ == "__main__":
    for dist in ("normal", "skewed"):
        sigmas = {name: calibrate(t, dist) for name, t in TARGETS.items()}
        rates = {name: agreement_rate(s, dist, seed=11) for name, s in sigmas.items()}
        print(f"{dist}: sigmas {sigmas}, agreement on fresh votes {rates}")
        for n in GRID:
            print(f"  {n:4d} votes: agreeing signal picked {100 * pick_rate(n, dist, sigmas):.1f}%")

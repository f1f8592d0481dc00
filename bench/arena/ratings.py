"""Bradley–Terry ratings from pairwise votes, on the Elo scale, with bootstrap intervals over votes.

P(i beats j) = 1 / (1 + 10^((R_j - R_i) / 400)), fitted by maximum likelihood with
ties (and "both bad") counted as half a win for each side, as LMArena counts them.
Ratings are anchored so that the mean over the rated arms is 1000: only
differences mean anything. Intervals: percentile bootstrap over votes (votes
resampled with replacement, the model refitted per replicate), as LMArena reports
them; tests/test_arena_ratings.py checks on simulated tournaments with known
strengths that the intervals cover the truth and the order is recovered.

A weak ridge (RIDGE, in log-odds units) keeps an unbeaten arm finite; with a
few votes each way it moves ratings by well under a point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binomtest

from bench.arena.votes import Vote

F64 = npt.NDArray[np.float64]
ELO_SCALE = 400.0 / np.log(10.0)  # log-odds -> Elo points
ELO_ANCHOR = 1000.0
RIDGE = 1e-3
_NEWTON_STEPS = 50


@dataclass(frozen=True)
class Match:
    """One vote reduced to what the model needs: arm a vs arm b, a's score (1, 0.5 or 0)."""

    a: str
    b: str
    score_a: float


def matches_of(votes: Sequence[Vote]) -> list[Match]:
    return [Match(v.left.arm, v.right.arm, v.score_left) for v in votes if v.left.arm != v.right.arm]


def fit_bradley_terry(n: F64, w: F64, pairs: npt.NDArray[np.intp], k: int, ridge: float = RIDGE) -> F64:
    """Log-strengths for R replicates at once by Newton's method.

    n, w: (R, m) votes and a-side wins (ties as 0.5) per arm pair; pairs: (m, 2) arm indices.
    Returns (R, k) strengths centred at 0 (the ridge fixes the free constant).
    """
    r = n.shape[0]
    inc = np.zeros((pairs.shape[0], k))
    inc[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    inc[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    beta = np.zeros((r, k))
    eye = np.eye(k)
    for _ in range(_NEWTON_STEPS):
        d = beta @ inc.T  # (R, m)
        p = 1.0 / (1.0 + np.exp(-d))
        grad = (w - n * p) @ inc - ridge * beta  # gradient of the penalised log-likelihood
        h = np.einsum("rm,mi,mj->rij", n * p * (1.0 - p), inc, inc) + ridge * eye
        step = np.linalg.solve(h, grad[..., None])[..., 0]
        # Damped: an unbeaten arm's likelihood keeps rising, and a full step could overshoot.
        step = np.clip(step, -2.0, 2.0)
        beta = beta + step
        if float(np.max(np.abs(step))) < 1e-9:
            break
    centred: F64 = beta - beta.mean(axis=1, keepdims=True)
    return centred


def _components(k: int, pairs: npt.NDArray[np.intp]) -> list[int]:
    """Connected-component label per arm in the graph of compared pairs (union-find)."""
    parent = list(range(k))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        parent[find(int(a))] = find(int(b))
    return [find(i) for i in range(k)]


@dataclass
class ArenaRatings:
    table: pd.DataFrame  # arm, elo, elo_low, elo_high, votes, wins, losses, ties (by elo, best first)
    win_rate: pd.DataFrame  # row arm's share of points against the column arm (ties half); NaN = never met
    n_votes: int
    n_raters: int
    confidence: float
    left_share: float  # share of decisive votes won by the left image (0.5 = no position bias)
    left_p_value: float  # exact two-sided binomial test of left_share = 0.5
    notes: list[str] = field(default_factory=list)
    arm_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # arm -> target and settings
    # Bootstrap replicates over votes (n_boot, arms), columns in the order of `boot_arms`:
    # the joint draws that give the interval of a difference between two arms.
    elo_boot: F64 = field(default_factory=lambda: np.zeros((0, 0)))
    boot_arms: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.n_votes == 0

    def difference(self, a: str, b: str) -> tuple[float, float, float]:
        """Elo(a) - Elo(b) with its percentile-bootstrap interval over votes (same confidence).

        The interval of the difference, not two intervals side by side: for equal widths, "a's 95%
        interval lies wholly below b's" is a test at about 99.4% (1.96 * sqrt(2) standard errors).
        """
        elo = {str(arm): float(x) for arm, x in zip(self.table["arm"], self.table["elo"], strict=True)}
        est = elo.get(a, float("nan")) - elo.get(b, float("nan"))
        if np.isnan(est) or a not in self.boot_arms or b not in self.boot_arms:
            return float("nan"), float("nan"), float("nan")
        d = self.elo_boot[:, self.boot_arms.index(a)] - self.elo_boot[:, self.boot_arms.index(b)]
        alpha = (1.0 - self.confidence) / 2.0
        low, high = np.quantile(d, [alpha, 1.0 - alpha])
        return est, float(low), float(high)


def rate(
    votes: Sequence[Vote],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    arms: Sequence[str] | None = None,
) -> ArenaRatings:
    """Elo-scale Bradley–Terry ratings, percentile-bootstrap intervals over votes, win rates."""
    matches = matches_of(votes)
    names = sorted({m.a for m in matches} | {m.b for m in matches} | set(arms or ()))
    index = {a: i for i, a in enumerate(names)}
    k = len(names)
    decisive = [v for v in votes if v.choice in ("left", "right")]
    left_wins = sum(v.choice == "left" for v in decisive)
    left_share = left_wins / len(decisive) if decisive else float("nan")
    left_p = binomtest(left_wins, len(decisive), 0.5).pvalue if decisive else float("nan")
    raters = len({v.rater for v in votes})
    empty_table = pd.DataFrame(
        {
            "arm": names,
            "elo": np.nan,
            "elo_low": np.nan,
            "elo_high": np.nan,
            "votes": 0,
            "wins": 0.0,
            "losses": 0.0,
            "ties": 0,
        }
    )
    if not matches:
        return ArenaRatings(
            empty_table, pd.DataFrame(index=names, columns=names, dtype=float), 0, raters, confidence,
            left_share, float(left_p), ["no votes yet: run `bench rate PATH`"],
        )  # fmt: skip
    # Orient every match as (lower index, higher index) and aggregate per arm pair.
    a_idx = np.array([index[m.a] for m in matches])
    b_idx = np.array([index[m.b] for m in matches])
    s = np.array([m.score_a for m in matches], dtype=np.float64)
    swap = a_idx > b_idx
    lo, hi = np.where(swap, b_idx, a_idx), np.where(swap, a_idx, b_idx)
    s_lo = np.where(swap, 1.0 - s, s)
    pair_codes, pair_of_vote = np.unique(lo * k + hi, return_inverse=True)
    pairs = np.stack([pair_codes // k, pair_codes % k], axis=1).astype(np.intp)
    m = len(pairs)
    onehot = np.zeros((len(matches), m))
    onehot[np.arange(len(matches)), pair_of_vote] = 1.0
    n_obs, w_obs = onehot.sum(axis=0), onehot.T @ s_lo
    beta = fit_bradley_terry(n_obs[None, :], w_obs[None, :], pairs, k)[0]
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(matches), np.full(len(matches), 1.0 / len(matches)), size=n_boot)
    boot = fit_bradley_terry(counts @ onehot, counts @ (onehot * s_lo[:, None]), pairs, k)
    alpha = (1.0 - confidence) / 2.0
    comp = _components(k, pairs)
    voted = np.bincount(np.r_[a_idx, b_idx], minlength=k)
    main = max(
        set(comp[i] for i in range(k) if voted[i]),
        key=lambda c: sum(voted[i] for i in range(k) if comp[i] == c),
    )
    in_main = np.array([comp[i] == main and voted[i] > 0 for i in range(k)])
    # Re-centre on the arms of the main component: the mean over them is the anchor.
    centre = beta[in_main].mean()
    boot_centre = boot[:, in_main].mean(axis=1, keepdims=True)
    elo = ELO_ANCHOR + ELO_SCALE * (beta - centre)
    elo_boot = ELO_ANCHOR + ELO_SCALE * (boot - boot_centre)
    low, high = np.quantile(elo_boot, [alpha, 1.0 - alpha], axis=0)
    wins = np.zeros(k)
    losses = np.zeros(k)
    ties = np.zeros(k, dtype=int)
    np.add.at(wins, a_idx, s == 1.0)
    np.add.at(wins, b_idx, s == 0.0)
    np.add.at(losses, a_idx, s == 0.0)
    np.add.at(losses, b_idx, s == 1.0)
    np.add.at(ties, a_idx, s == 0.5)
    np.add.at(ties, b_idx, s == 0.5)
    notes: list[str] = []
    # An arm that never lost a point (or never won one) has no finite maximum-likelihood strength: only
    # the ridge holds it, and every bootstrap replicate agrees. That side of its interval is unbounded.
    lost = np.zeros(k)
    np.add.at(lost, a_idx, 1.0 - s)
    np.add.at(lost, b_idx, s)
    won = voted - lost
    unbeaten = in_main & (lost == 0)
    winless = in_main & (won == 0)
    high = np.where(unbeaten, np.inf, high)
    low = np.where(winless, -np.inf, low)
    for mask, what in ((unbeaten, "never lost"), (winless, "never won")):
        if mask.any():
            notes.append(
                f"{', '.join(names[i] for i in np.flatnonzero(mask))} {what} a vote: its Elo is held only by "
                "the fit's weak prior, so that side of its interval is unbounded"
            )
    table = pd.DataFrame(
        {
            "arm": names,
            "elo": np.where(in_main, elo, np.nan),
            "elo_low": np.where(in_main, low, np.nan),
            "elo_high": np.where(in_main, high, np.nan),
            "votes": voted,
            "wins": wins,
            "losses": losses,
            "ties": ties,
        }
    )
    apart = [names[i] for i in range(k) if voted[i] and not in_main[i]]
    if apart:
        notes.append("not compared with the others, so no rating on the same scale: " + ", ".join(apart))
    if voted.max() < 30:
        notes.append(
            f"few votes (at most {int(voted.max())} per arm): intervals are wide, and rank order may change"
        )
    win = np.full((k, k), np.nan)
    pts = np.zeros((k, k))
    met = np.zeros((k, k))
    np.add.at(pts, (a_idx, b_idx), s)
    np.add.at(pts, (b_idx, a_idx), 1.0 - s)
    np.add.at(met, (a_idx, b_idx), 1.0)
    np.add.at(met, (b_idx, a_idx), 1.0)
    np.divide(pts, met, out=win, where=met > 0)
    win_rate = pd.DataFrame(win, index=names, columns=names)
    table = table.sort_values("elo", ascending=False, na_position="last").reset_index(drop=True)
    return ArenaRatings(
        table, win_rate, len(matches), raters, confidence, left_share, float(left_p), notes, _arm_keys(votes),
        np.where(in_main[None, :], elo_boot, np.nan), names,
    )  # fmt: skip


def _arm_keys(votes: Sequence[Vote]) -> dict[str, dict[str, Any]]:
    """arm -> target, settings and whether it is a baseline's arm (rated with --against)."""
    return {
        s.arm: {"target": s.target, **s.settings, "baseline": s.run_path.startswith("baseline: ")}
        for v in votes
        for s in (v.left, v.right)
    }

"""The adaptive study's rule: after each round of prompts, drop contenders that can no longer win.

Always valid under repeated looks. Each question is a one-sided sequential test by betting
(Waudby-Smith & Ramdas, "Estimating means of bounded random variables by betting", JRSS-B 2024,
sections 4-5): for scores in a known range, x_i rescaled into [0, 1], and a threshold m, the wealth

    K_t(m) = prod_{i<=t} (1 + lam_i * s * (x_i - m)),   s = +1 to show mean > m, -1 to show mean < m,

with a bet lam_i chosen from x_1..x_{i-1} only (predictable; aGRAPA, their eq. 26, capped at
`bet_cap` / (1 - m) or / m so that a factor never reaches 0), is a nonnegative supermartingale
under every mean on the null side. By Ville's inequality P(sup_t K_t >= 1/alpha) <= alpha, so
"reject once the wealth has reached 1/alpha, at any look, after any number of looks" keeps the error
at alpha without normal data: only the declared range of the scores is assumed. The set of m the
two tests do not reject is the confidence sequence (CS) shown next to each decision.

The questions, per pair (g, h) of contenders still in the race, on the paired per-prompt
differences d = q_g - q_h over the prompts both answered, in the study's prompt order:

- drop g: mean(d) < -M is shown (g is worse than h by more than the margin M);
- g is non-inferior to h: mean(d) > -M is shown.

A group is also dropped when a constraint is shown unmet (refusal rate, ok rate, p90 latency: the
same betting test on 0/1 outcomes; cost per 1k from its cheapest image so far, since prices are
known in advance). The race is settled when the cheapest group still in it meets the constraints
(point estimates, as bench.decide does) and is shown non-inferior to every other group still in it:
every cheaper group has been dropped. A group dropped for quality was shown worse than a group
still in the race, so the recommended group is also better than it.

Error budget (`alpha` = 1 - report.decide.confidence): with K contenders, each test runs at
alpha / (2 (K - 1)): a group truly worse than the best by more than M is recommended only if its test
against the best falsely rejects (K - 1 such groups at most) or the best was falsely dropped (K - 1
tests at most). tests/test_adaptive_rule.py and tests/benchmarks/bench_adaptive.py measure it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bench.decide.settings import Constraints

F64 = npt.NDArray[np.float64]
METHOD = (
    "always-valid one-sided tests by betting (Waudby-Smith & Ramdas 2024, aGRAPA bets) on paired per-prompt "
    "differences in a declared score range; Ville's inequality; alpha split over 2(K-1) tests"
)
P90 = 0.9


@dataclass(frozen=True)
class SequentialRules:
    margin: float  # M, in the signal's units (bench.decide.settings.DecideSettings.margin)
    alpha: float  # 1 - confidence
    score_low: float  # the range every per-prompt score lies in (the tests' only assumption)
    score_high: float
    constraints: Constraints = field(default_factory=Constraints)
    bet_cap: float = 0.75  # the largest bet, as a share of what keeps a factor above 0 (WSR's c)
    min_prompts: int = 10  # no quality decision on fewer shared prompts


@dataclass(frozen=True)
class GroupEvidence:
    """What one contender has produced so far. `scores[i]`: its score on the study's i-th prompt
    (mean over seeds; NaN when not answered or not yet asked). Outcomes are per request."""

    name: str
    scores: F64
    cost_per_1k_usd: float = math.nan  # point estimate (the price table's or the observed mean)
    cheapest_image_usd: float = math.nan  # the lowest per-image cost seen (prices are known in advance)
    latency_p90_s: float = math.nan
    latencies_s: F64 = field(default_factory=lambda: np.zeros(0))  # of ok requests
    refused: F64 = field(default_factory=lambda: np.zeros(0))  # 1.0 per refused request, 0.0 otherwise
    ok: F64 = field(default_factory=lambda: np.zeros(0))  # 1.0 per ok request, 0.0 otherwise


@dataclass(frozen=True)
class Drop:
    group: str
    round: int
    reason: str  # one line: why, with the numbers at the moment of dropping
    kind: str  # quality | cost | latency | refusal | ok_rate
    against: str = ""  # quality: the group it was shown worse than
    diff: float = math.nan  # quality: mean paired difference to `against`
    low: float = math.nan  # its confidence sequence at that moment
    high: float = math.nan
    n: int = 0  # prompts (or requests) the decision rests on


@dataclass(frozen=True)
class PairState:
    group: str
    against: str
    n: int
    diff: float
    low: float
    high: float
    non_inferior: bool  # mean(d) > -M shown


@dataclass(frozen=True)
class Look:
    round: int
    alive: list[str]
    drops: list[Drop]  # new at this look
    best: str | None  # highest mean score among the groups still in the race
    recommended: str | None  # settled recommendation (None while open)
    settled: bool
    candidate: str | None  # the cheapest group still in the race meeting the constraints
    vs_candidate: list[PairState]  # the candidate against every other group still in the race
    open: list[str]  # what is still open, with the numbers that would settle it
    if_stopped: str | None = None  # the recommendation if the study stops at this look


def _running_stats(x: F64) -> tuple[F64, F64]:
    """(mean, variance) estimates after 0..t-1 observations, per column (WSR's regularised ones:
    mean starts at 1/2, variance at 1/4), aligned so row i holds what is known before x_i."""
    t = x.shape[0]
    idx = np.arange(1, t + 1, dtype=np.float64)[:, None]
    mu = (0.5 + np.cumsum(x, axis=0)) / (idx + 1.0)
    var = (0.25 + np.cumsum((x - mu) ** 2, axis=0)) / (idx + 1.0)
    mu_prev = np.vstack([np.full((1, x.shape[1]), 0.5), mu[:-1]])
    var_prev = np.vstack([np.full((1, x.shape[1]), 0.25), var[:-1]])
    return mu_prev, var_prev


def max_log_wealth(x: F64, m: F64 | float, side: int, cap: float) -> F64:
    """Per column of x (observations in [0, 1], in order), the largest log wealth reached by the
    bet that the mean is above m (side=+1) or below m (side=-1). m: scalar or per column."""
    if x.shape[0] == 0:
        return np.zeros(x.shape[1])
    m_arr = np.broadcast_to(np.asarray(m, dtype=np.float64), (x.shape[1],))
    mu, var = _running_stats(x)
    edge = (1.0 - m_arr) if side < 0 else m_arr  # the largest loss per unit bet: a factor stays > 0
    limit = bet_cap_of(cap, edge)
    # aGRAPA: the growth-optimal bet for the running mean and variance, only in the tested direction.
    lead = side * (mu - m_arr)
    lam = np.clip(lead / (var + (mu - m_arr) ** 2), 0.0, limit)
    log_k = np.cumsum(np.log1p(lam * side * (x - m_arr)), axis=0)
    return np.asarray(np.maximum(log_k.max(axis=0), 0.0), dtype=np.float64)


def bet_cap_of(cap: float, edge: F64) -> F64:
    with np.errstate(divide="ignore"):
        return np.where(edge > 0, cap / np.where(edge > 0, edge, 1.0), 0.0)


def shown(x: F64, m: F64 | float, side: int, alpha: float, cap: float) -> npt.NDArray[np.bool_]:
    """Whether "mean > m" (side=+1) or "mean < m" (side=-1) is shown at level alpha, per column."""
    return np.asarray(max_log_wealth(x, m, side, cap) >= math.log(1.0 / alpha))


def confidence_sequence(x: F64, alpha: float, cap: float, iterations: int = 30) -> tuple[float, float]:
    """The (lower, upper) bounds, in x's [0, 1] units, of the means neither one-sided test rejects
    (each at alpha) over the whole sequence: the CS shown with a decision. Found by bisection:
    "mean > m" is shown for every m below the lower bound and for none above it."""
    if x.size == 0:
        return 0.0, 1.0
    col = x[:, None]
    mean = float(x.mean())

    def bound(side: int) -> float:
        far = 1e-9 if side > 0 else 1.0 - 1e-9  # the range's edge, where the test is sharpest
        if not bool(shown(col, far, side, alpha, cap)[0]):
            return 0.0 if side > 0 else 1.0
        rejected, kept = far, mean
        for _ in range(iterations):
            mid = 0.5 * (rejected + kept)
            if bool(shown(col, mid, side, alpha, cap)[0]):
                rejected = mid
            else:
                kept = mid
        return kept

    return bound(+1), bound(-1)


class PairScale:
    """Maps paired differences of scores in [low, high] into [0, 1] and back."""

    def __init__(self, low: float, high: float) -> None:
        self.width = float(high - low)

    def to_unit(self, d: F64 | float) -> F64:
        return np.asarray((np.asarray(d) + self.width) / (2.0 * self.width), dtype=np.float64)

    def from_unit(self, u: float) -> float:
        return float(u * 2.0 * self.width - self.width)


def shared_mask(scores_g: F64, scores_h: F64) -> npt.NDArray[np.bool_]:
    """The prompts (of the shorter sequence's length) both groups answered."""
    n = min(scores_g.size, scores_h.size)
    return np.asarray(~(np.isnan(scores_g[:n]) | np.isnan(scores_h[:n])))


def paired(scores_g: F64, scores_h: F64) -> F64:
    """q_g - q_h on the prompts both answered, in the study's prompt order."""
    both = shared_mask(scores_g, scores_h)
    n = both.size
    return np.asarray(scores_g[:n][both] - scores_h[:n][both], dtype=np.float64)


def _fails_point(g: GroupEvidence, c: Constraints) -> str:
    """Why g fails a constraint on point estimates ("" when it meets them), as bench.decide judges."""
    checks = [
        (c.max_cost_per_1k, g.cost_per_1k_usd, True, "cost per 1k"),
        (c.max_p90_latency, _p90(g), True, "p90 latency"),
        (c.max_refusal_rate, float(g.refused.mean()) if g.refused.size else math.nan, True, "refusal rate"),
        (c.min_ok_rate, float(g.ok.mean()) if g.ok.size else math.nan, False, "ok rate"),
    ]
    for limit, value, is_max, name in checks:
        if limit is None:
            continue
        if math.isnan(value) or ((value > limit) if is_max else (value < limit)):
            return f"{name} {value:.4g}"
    return ""


def _p90(g: GroupEvidence) -> float:
    if not math.isnan(g.latency_p90_s) or not g.latencies_s.size:
        return g.latency_p90_s
    return float(np.quantile(g.latencies_s, P90))


def constraint_drop(g: GroupEvidence, rules: SequentialRules, alpha: float, round_index: int) -> Drop | None:
    """A Drop when g is shown to miss a constraint even at the edge of its interval."""
    c, cap = rules.constraints, rules.bet_cap
    if c.max_cost_per_1k is not None and 1000.0 * g.cheapest_image_usd > c.max_cost_per_1k:
        cost = 1000.0 * g.cheapest_image_usd
        return Drop(g.name, round_index, f"even its cheapest image costs ${cost:.4g}/1k > ${c.max_cost_per_1k:g}/1k",
                    "cost", diff=cost)  # fmt: skip
    tests: list[tuple[float | None, F64, int, str, str]] = [
        (c.max_refusal_rate, g.refused, +1, "refusal", "refusal rate"),
        (None if c.min_ok_rate is None else c.min_ok_rate, g.ok, -1, "ok_rate", "ok rate"),
    ]
    if c.max_p90_latency is not None and g.latencies_s.size:
        # p90 <= L exactly when P(latency <= L) >= 0.9: a mean of 0/1 outcomes, tested the same way.
        within = (g.latencies_s <= c.max_p90_latency).astype(np.float64)
        tests.append((P90, within, -1, "latency", "share of requests within the p90 latency limit"))
    for limit, outcomes, side, kind, name in tests:
        if limit is None or outcomes.size < rules.min_prompts:
            continue
        x = outcomes[:, None]
        if bool(shown(x, limit, side, alpha, cap)[0]):
            low, high = confidence_sequence(outcomes, alpha, cap)
            rel = ">" if side > 0 else "<"
            return Drop(g.name, round_index, f"{name} {outcomes.mean():.3g} (interval {low:.3g}-{high:.3g}) "
                        f"{rel} {limit:g} on {outcomes.size} requests", kind, diff=float(outcomes.mean()),
                        low=low, high=high, n=int(outcomes.size))  # fmt: skip
    return None


def steps_to_show(d: F64, threshold: float, alpha: float, cap: float) -> int:
    """About how many more prompts would settle "mean(d) vs threshold" (d, threshold in [0, 1] units),
    if the observed mean and variance are the truth: log(1/alpha) over the bet's expected log growth
    per prompt (a planning figure, not a guarantee); -1 when the mean sits on the threshold."""
    if d.size < 2:
        return -1
    mean, var = float(d.mean()), float(d.var(ddof=1))
    gap = abs(mean - threshold)
    if gap == 0:
        return -1
    edge = (1.0 - threshold) if mean < threshold else threshold
    lam = min(gap / max(var, 1e-12), rules_cap(cap, edge))
    growth = lam * gap - 0.5 * lam * lam * (var + gap * gap)
    if growth <= 0:
        return -1
    return max(1, math.ceil(math.log(1.0 / alpha) / growth) - d.size)


def rules_cap(cap: float, edge: float) -> float:
    return cap / edge if edge > 0 else 0.0


def look(
    groups: Sequence[GroupEvidence],
    dropped: Mapping[str, Drop],
    rules: SequentialRules,
    round_index: int,
    *,
    intervals: bool = True,
) -> Look:
    """One look after a round: new drops, the race's state, and whether it is settled.

    `groups`: every contender of the study (dropped ones included, their evidence frozen);
    `dropped`: the drops of earlier looks (they stand: a rejection by Ville's inequality is final)."""
    k = len(groups)
    alpha = rules.alpha / max(1, 2 * (k - 1))
    scale = PairScale(rules.score_low, rules.score_high)
    m_unit = float(scale.to_unit(-rules.margin))
    by_name = {g.name: g for g in groups}
    alive = [g.name for g in groups if g.name not in dropped]
    new: list[Drop] = []
    for name in alive:
        drop = constraint_drop(by_name[name], rules, alpha, round_index)
        if drop is not None:
            new.append(drop)
    alive = [a for a in alive if a not in {d.group for d in new}]
    # Quality: g is dropped when shown worse by more than M than a group still in the race that
    # meets the constraints on point estimates (a group that cannot be chosen cannot knock one out).
    reference = [h for h in alive if not _fails_point(by_name[h], rules.constraints)]
    worse = _shown_pairs(by_name, [(g, h) for g in alive for h in reference if h != g], scale, m_unit, -1,
                         alpha, rules)  # fmt: skip
    quality_drops: dict[str, Drop] = {}
    for g, h in worse:
        if g in quality_drops:
            continue
        d = paired(by_name[g].scores, by_name[h].scores)
        lo, hi = (confidence_sequence(scale.to_unit(d), alpha, rules.bet_cap) if intervals
                  else (math.nan, math.nan))  # fmt: skip
        quality_drops[g] = Drop(
            g, round_index,
            f"worse than {h} by {-d.mean():.4g} on {d.size} prompts (interval of the difference "
            f"{scale.from_unit(lo):.4g} to {scale.from_unit(hi):.4g}, beyond -{rules.margin:g})",
            "quality", against=h, diff=float(d.mean()), low=scale.from_unit(lo),
            high=scale.from_unit(hi), n=int(d.size),
        )  # fmt: skip
    new.extend(quality_drops.values())
    alive = [a for a in alive if a not in quality_drops]
    means = {a: float(np.nanmean(by_name[a].scores)) if np.isfinite(by_name[a].scores).any() else -math.inf
             for a in alive}  # fmt: skip
    best = max(alive, key=lambda a: (means[a], -alive.index(a))) if alive else None
    by_cost = sorted(alive, key=lambda a: _cost_key(by_name[a]))
    feasible = [a for a in by_cost if not _fails_point(by_name[a], rules.constraints)]
    candidate = feasible[0] if feasible else None
    states: list[PairState] = []
    open_lines: list[str] = []
    settled = False
    if candidate is not None:
        settled = by_cost[0] == candidate
        others = [h for h in alive if h != candidate]
        shown_ni = set(
            _shown_pairs(by_name, [(candidate, h) for h in others], scale, m_unit, +1, alpha, rules)
        )
        for h in others:
            d = paired(by_name[candidate].scores, by_name[h].scores)
            ok = (candidate, h) in shown_ni
            lo, hi = (confidence_sequence(scale.to_unit(d), alpha, rules.bet_cap) if intervals and d.size
                      else (math.nan, math.nan))  # fmt: skip
            diff = float(d.mean()) if d.size else math.nan
            states.append(
                PairState(candidate, h, int(d.size), diff, scale.from_unit(lo), scale.from_unit(hi), ok)
            )
            if not ok:
                settled = False
                more = steps_to_show(scale.to_unit(d), m_unit, alpha, rules.bet_cap)
                tail = (
                    f"about {more} more prompts would settle it"
                    if more > 0
                    else "more prompts would settle it"
                )
                open_lines.append(f"{candidate} vs {h}: difference {diff:.4g} on {d.size} prompts, interval "
                                  f"{scale.from_unit(lo):.4g} to {scale.from_unit(hi):.4g} straddles "
                                  f"-{rules.margin:g}; {tail}")  # fmt: skip
        if by_cost[0] != candidate:
            first = by_name[by_cost[0]]
            open_lines.insert(0, f"{first.name} is cheaper but misses a constraint on its point estimate "
                              f"({_fails_point(first, rules.constraints)}) without being shown to miss it")  # fmt: skip
    # If the study stops here (max_prompts, budget): as bench.decide does, the cheapest group shown
    # non-inferior to every other group in the race, cheaper open ones reported as open.
    all_pairs = [(g, h) for g in feasible for h in alive if h != g]
    ni = set(_shown_pairs(by_name, all_pairs, scale, m_unit, +1, alpha, rules)) if not settled else set()
    shown_all = [g for g in feasible if all((g, h) in ni for h in alive if h != g)]
    fallback = candidate if settled else (shown_all[0] if shown_all else None)
    return Look(round_index, alive, new, best, candidate if settled else None, settled, candidate, states,
                open_lines, fallback)  # fmt: skip


def _shown_pairs(
    by_name: Mapping[str, GroupEvidence],
    pairs: list[tuple[str, str]],
    scale: PairScale,
    m_unit: float,
    side: int,
    alpha: float,
    rules: SequentialRules,
) -> list[tuple[str, str]]:
    """The pairs (g, h), in order, for which mean(q_g - q_h) vs -M is shown on the `side`.
    Pairs answering the same prompts are tested in one array (the usual case)."""
    by_mask: dict[bytes, list[tuple[str, str]]] = {}
    for g, h in pairs:
        both = shared_mask(by_name[g].scores, by_name[h].scores)
        if int(both.sum()) >= rules.min_prompts:
            by_mask.setdefault(both.tobytes() + str(both.size).encode(), []).append((g, h))
    hits: set[tuple[str, str]] = set()
    for members in by_mask.values():
        x = scale.to_unit(
            np.stack([paired(by_name[g].scores, by_name[h].scores) for g, h in members], axis=1)
        )
        hits.update(
            p for p, ok in zip(members, shown(x, m_unit, side, alpha, rules.bet_cap), strict=True) if ok
        )
    return [p for p in pairs if p in hits]


def _cost_key(g: GroupEvidence) -> tuple[float, float, str]:
    cost = g.cost_per_1k_usd if not math.isnan(g.cost_per_1k_usd) else math.inf
    lat = g.latency_p90_s if not math.isnan(g.latency_p90_s) else math.inf
    return (cost, lat, g.name)

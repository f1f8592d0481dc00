"""The arena's stop rule: settle the recommendation on head-to-head votes, valid at every look.

The question is bench.decide's, asked on Elo: the recommendation is the cheapest contender not worse
than any other contender by more than the margin M (25 Elo by default). Between two groups g and h,
Bradley–Terry says g's expected score against h (a win 1, a tie or "both bad" 1/2, a loss 0) is

    p_gh = 1 / (1 + 10^(-(Elo_g - Elo_h) / 400)),

so "g is worse than h by more than M Elo" is exactly p_gh < m = 1 / (1 + 10^(M / 400)) (0.4641 at
M = 25), and "g is not worse by more than M" is p_gh > m. Both are questions about the mean of votes
in [0, 1], which bench.decide.sequential's one-sided tests by betting answer with an error bounded
by Ville's inequality at any number of looks (Waudby-Smith & Ramdas 2024; aGRAPA bets). Each pair's
wealth is kept up to date vote by vote (BetTracker, the same bets as sequential.max_log_wealth, one
step at a time), so the rule can look after every vote for the price of a few multiplications.

Only direct votes between g and h count for the pair (g, h): no model assumption carries evidence
between pairs, and the pair scheduler (bench.arena.pairs, mode "settle") sends votes exactly to the
pairs the rule needs. The votes of a pair are tested in the order they were cast; a scheduler that
picks which pair to show next from past votes does not break the guarantee, since each new vote on
(g, h) has mean p_gh whatever made the scheduler choose that pair.

The race, as in bench.decide.sequential: a contender is dropped when it is shown worse beyond M than
a contender still in the race; the race is settled when the cheapest contender still in it is shown
not worse beyond M than every other one still in it. Each test runs at alpha / (2 (K - 1)) for K
contenders: a group truly worse than the best by more than M is recommended only if its test against
the best falsely rejects, or the best was falsely dropped (K - 1 tests at most).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.decide.sequential import confidence_sequence

METHOD = (
    "always-valid one-sided tests by betting (Waudby-Smith & Ramdas 2024, aGRAPA bets) on head-to-head "
    "votes (win 1, tie or both bad 1/2, loss 0) against the expected score of a group M Elo below; "
    "Ville's inequality; alpha split over 2(K-1) tests"
)
BET_CAP = 0.75  # as bench.decide.sequential.SequentialRules.bet_cap
MIN_EACH = 5  # votes every open pair gets before the scheduler ranks pairs by their scores so far


def score_of_elo(diff: float) -> float:
    """The expected score of a group `diff` Elo above its opponent (Bradley–Terry on the Elo scale)."""
    return float(1.0 / (1.0 + 10.0 ** (-diff / 400.0)))


def elo_of_score(p: float) -> float:
    """The Elo difference at which a group's expected score is p (±inf at 0 and 1)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    return 400.0 * math.log10(p / (1.0 - p))


class BetTracker:
    """One side of one test, kept vote by vote: the largest log wealth reached so far by the bet that
    the mean of x is above m (side=+1) or below m (side=-1). Equal to sequential.max_log_wealth on the
    same sequence (tests/test_arena_settle.py checks it)."""

    def __init__(self, m: float, side: int, cap: float = BET_CAP) -> None:
        self.m, self.side = m, side
        edge = (1.0 - m) if side < 0 else m  # the largest loss per unit bet: a factor stays > 0
        self.limit = cap / edge if edge > 0 else 0.0
        self.n = 0
        self._sum = 0.0
        self._sq = 0.0
        self._mu, self._var = 0.5, 0.25  # WSR's regularised running estimates, before any vote
        self.log_wealth = 0.0
        self.max_log_wealth = 0.0

    def update(self, x: float) -> None:
        gap = self._mu - self.m
        lam = min(max(self.side * gap / (self._var + gap * gap), 0.0), self.limit)  # aGRAPA, predictable
        self.log_wealth += math.log1p(lam * self.side * (x - self.m))
        self.max_log_wealth = max(self.max_log_wealth, self.log_wealth)
        self.n += 1
        self._sum += x
        self._mu = (0.5 + self._sum) / (self.n + 1)
        self._sq += (x - self._mu) ** 2
        self._var = (0.25 + self._sq) / (self.n + 1)


@dataclass
class Duel:
    """g against h: g's scores in vote order, and the two tests of them against m."""

    g: str
    h: str
    m: float
    scores: list[float] = field(default_factory=list)
    total: float = 0.0  # sum of scores
    worse: BetTracker = field(init=False)  # mean < m: g worse than h beyond the margin
    not_worse: BetTracker = field(init=False)  # mean > m: g not worse than h beyond the margin

    def __post_init__(self) -> None:
        self.worse = BetTracker(self.m, -1)
        self.not_worse = BetTracker(self.m, +1)

    def add(self, score: float) -> None:
        self.scores.append(score)
        self.total += score
        self.worse.update(score)
        self.not_worse.update(score)

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def running_mean(self) -> float:
        """g's score so far, pulled towards 1/2 by one pseudo-vote (the bets' own estimate)."""
        return (0.5 + self.total) / (self.n + 1)


@dataclass(frozen=True)
class DuelState:
    """A pair as the rule sees it at a look: g's score against h in Elo, with its confidence sequence."""

    g: str
    h: str
    n: int
    elo_diff: float  # Elo(g) - Elo(h) from g's mean score (NaN without votes)
    low: float  # the confidence sequence of that difference, in Elo
    high: float
    not_worse: bool  # shown: g is not worse than h beyond the margin
    worse: bool  # shown: g is worse than h beyond the margin


@dataclass(frozen=True)
class ArenaLook:
    votes: int
    alive: list[str]
    dropped: dict[str, str]  # group -> the group it was shown worse than (beyond the margin)
    candidate: str | None  # the cheapest contender still in the race
    settled: bool
    open_pairs: list[tuple[str, str]]  # (candidate, h) still to be shown, the scheduler's work list
    recommended: str | None = None  # when settled


class ArenaRace:
    """The race of the arena's contenders (cheapest first), fed vote by vote; `look()` after any vote."""

    def __init__(self, contenders: Sequence[str], margin_elo: float, alpha: float) -> None:
        if len(contenders) < 2:
            raise ValueError("a race needs two contenders")
        self.order = list(contenders)  # cheapest first (the caller's cost order, bench.decide's)
        self.margin = margin_elo
        self.alpha_total = alpha
        self.alpha = alpha / (2 * (len(self.order) - 1))
        self.threshold = math.log(1.0 / self.alpha)
        self.m = score_of_elo(-margin_elo)
        self.duels = {(g, h): Duel(g, h, self.m) for g in self.order for h in self.order if g != h}
        self.dropped: dict[str, str] = {}  # drops are final (a Ville rejection stands)
        self.votes = 0

    def add(self, a: str, b: str, score_a: float) -> bool:
        """One vote between two contenders (a's score). False when either is not a contender."""
        if (a, b) not in self.duels:
            return False
        self.duels[(a, b)].add(score_a)
        self.duels[(b, a)].add(1.0 - score_a)
        self.votes += 1
        return True

    def _shown(self, tracker: BetTracker) -> bool:
        return tracker.max_log_wealth >= self.threshold

    def look(self) -> ArenaLook:
        alive = [g for g in self.order if g not in self.dropped]
        new = {}
        for g in alive:
            against = next((h for h in alive if h != g and self._shown(self.duels[(g, h)].worse)), None)
            if against is not None:
                new[g] = against
        self.dropped.update(new)
        alive = [g for g in alive if g not in new]
        candidate = alive[0] if alive else None
        open_pairs = [
            (candidate, h)
            for h in alive
            if candidate is not None
            and h != candidate
            and not self._shown(self.duels[(candidate, h)].not_worse)
        ]
        settled = candidate is not None and not open_pairs
        return ArenaLook(self.votes, alive, dict(self.dropped), candidate, settled, open_pairs,
                         candidate if settled else None)  # fmt: skip

    def priority(self, look: ArenaLook) -> list[tuple[str, str]]:
        """The open pairs in the order the scheduler should fill them: each to MIN_EACH votes first,
        then the one where the candidate scores lowest so far. If the candidate is worse than someone
        beyond the margin, that pair drops it soonest; if it is not, every open pair must be shown
        anyway, and the order does not change the total."""
        pairs = list(look.open_pairs)
        return sorted(pairs, key=lambda p: (self.duels[p].n >= MIN_EACH, self.duels[p].running_mean, p[1]))

    def state(self, g: str, h: str, intervals: bool = True) -> DuelState:
        d = self.duels[(g, h)]
        x = np.asarray(d.scores, dtype=np.float64)
        mean = float(x.mean()) if x.size else math.nan
        lo, hi = confidence_sequence(x, self.alpha, BET_CAP) if intervals and x.size else (math.nan, math.nan)
        return DuelState(g, h, d.n, elo_of_score(mean) if x.size else math.nan,
                         elo_of_score(lo) if x.size else math.nan, elo_of_score(hi) if x.size else math.nan,
                         self._shown(d.not_worse), self._shown(d.worse))  # fmt: skip

    def strongest_other(self, look: ArenaLook) -> str | None:
        """The contender still in the race the candidate scores lowest against, by direct votes."""
        c = look.candidate
        others = [h for h in look.alive if h != c and self.duels[(c, h)].n] if c is not None else []
        if c is None or not others:
            return None
        return min(others, key=lambda o: self.duels[(c, o)].total / self.duels[(c, o)].n)

    def message(self, look: ArenaLook) -> str:
        """One line for the rater and the terminal: settled, and why; or what is still open."""
        m = f"{self.margin:g} Elo"
        if not look.settled or look.recommended is None:
            return f"not settled yet: {len(look.open_pairs)} comparison(s) open at margin {m}"
        rec = look.recommended
        other = self.strongest_other(look)
        cheaper = self.order[: self.order.index(rec)]
        leads = other is None or self.duels[(rec, other)].total / self.duels[(rec, other)].n >= 0.5
        if cheaper and leads:
            return f"settled: {rec} is recommended; every cheaper group is worse beyond {m}; you can stop"
        if other is None:  # cannot happen with two contenders left: settling needs votes against them
            return f"settled: {rec} is recommended; you can stop"
        s = self.state(rec, other)
        return (f"settled: {rec} is as good as {other} within {m} (difference {s.elo_diff:+.0f} Elo, "
                f"always-valid interval {s.low:+.0f} to {s.high:+.0f}, {s.n} votes); you can stop")  # fmt: skip

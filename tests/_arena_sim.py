"""Simulated arena studies with known Bradley–Terry strengths: votes until the recommendation is
settled, with the settle scheduler (bench.arena.settle's order, bench.decide.duels.ArenaRace.priority)
or today's uncertainty scheduler (bench.arena.pairs.information_weights), both stopped by the same
always-valid rule (bench.decide.duels.ArenaRace), looked at after every vote.

Models are named m0..m{K-1}, cheapest first. True strengths are Elo gaps below the best:
- clear_winner: one model at 0, the others 150-300 below, the winner at a random cost;
- cheap_within: the cheapest 10 below the best (the dearest), the rest 60-150 below;
- all_within: every model within 10 of the best;
- cheap_on_margin: the cheapest exactly 25 (the margin) below the best, the rest 60-150 below: it
  must not be recommended more often than alpha.
Votes: "decisive" (a win or a loss, P(win) from Bradley–Terry) or "ties" (30% ties or both bad where
the expected score allows, the decisive rest set so the expected score stays Bradley–Terry's): the
binary and the three-valued shape of real votes. The simulation is at the level of groups: prompts
and images are folded into each vote's randomness, as they are for a rater shown random images.
Used by tests/test_arena_settle.py (small, fast) and tests/benchmarks/bench_arena_settle.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from bench.arena.pairs import information_weights
from bench.decide.duels import ArenaRace, score_of_elo

MARGIN = 25.0
ALPHA = 0.05
SHAPES = ("clear_winner", "cheap_within", "all_within", "cheap_on_margin")
VOTE_KINDS = ("decisive", "ties")
TIE_SHARE = 0.3
REFIT_EVERY = 10  # the uncertainty scheduler refits Bradley–Terry every 10 votes (several raters at once)


@dataclass(frozen=True)
class Truth:
    shape: str
    votes: str  # decisive | ties
    gaps: np.ndarray  # Elo below the best, per model (cheapest first)

    @property
    def eligible(self) -> np.ndarray:
        """Models whose true gap to the best is within the margin (the others must not be recommended)."""
        return np.asarray(self.gaps < MARGIN - 1e-9)

    @property
    def answer(self) -> int:
        """The true recommendation: the cheapest eligible model."""
        return int(np.flatnonzero(self.eligible)[0])


def make_truth(shape: str, votes: str, models: int, rng: np.random.Generator) -> Truth:
    gaps = rng.uniform(60.0, 150.0, models)
    if shape == "clear_winner":
        gaps = rng.uniform(150.0, 300.0, models)
        gaps[rng.integers(models)] = 0.0
    elif shape == "cheap_within":
        gaps[-1], gaps[0] = 0.0, 10.0
    elif shape == "all_within":
        gaps = rng.uniform(0.0, 10.0, models)
        gaps[rng.integers(models)] = 0.0
    elif shape == "cheap_on_margin":
        gaps[-1], gaps[0] = 0.0, MARGIN
    else:
        raise ValueError(shape)
    return Truth(shape, votes, gaps)


def vote(truth: Truth, i: int, j: int, rng: np.random.Generator) -> float:
    """Model i's score against model j in one vote: 1, 1/2 (tie or both bad) or 0."""
    p = score_of_elo(float(truth.gaps[j] - truth.gaps[i]))
    tie = min(TIE_SHARE, 2.0 * p, 2.0 * (1.0 - p)) if truth.votes == "ties" else 0.0
    u = float(rng.random())
    if u < tie:
        return 0.5
    return 1.0 if float(rng.random()) < (p - tie / 2.0) / (1.0 - tie) else 0.0


@dataclass(frozen=True)
class Outcome:
    votes: int
    settled: bool
    recommended: int | None  # model index, None when not settled within the cap

    def bad(self, truth: Truth) -> bool:
        return self.recommended is not None and not bool(truth.eligible[self.recommended])


def run_arena(truth: Truth, scheduler: str, rng: np.random.Generator, max_votes: int) -> Outcome:
    k = len(truth.gaps)
    names = [f"m{i}" for i in range(k)]
    index = {n: i for i, n in enumerate(names)}
    race = ArenaRace(names, MARGIN, ALPHA)
    pairs = list(itertools.combinations(range(k), 2))
    idx = np.array(pairs, dtype=np.intp)
    n = np.zeros(len(pairs))
    w = np.zeros(len(pairs))
    where = {p: x for x, p in enumerate(pairs)}
    probs = np.full(len(pairs), 1.0 / len(pairs))
    look = race.look()
    for t in range(max_votes):
        if look.settled:
            break
        if scheduler == "settle":
            g, h = race.priority(look)[0]
            i, j = index[g], index[h]
        elif scheduler == "uncertainty":
            if t % REFIT_EVERY == 0:
                weights = information_weights(n, w, idx, k)
                probs = weights / weights.sum()
            i, j = pairs[int(rng.choice(len(pairs), p=probs))]
        else:
            raise ValueError(scheduler)
        s = vote(truth, i, j, rng)
        key = where[(min(i, j), max(i, j))]
        n[key] += 1.0
        w[key] += s if i < j else 1.0 - s
        race.add(names[i], names[j], s)
        look = race.look()
    rec = index[look.recommended] if look.recommended is not None else None
    return Outcome(race.votes, look.settled, rec)

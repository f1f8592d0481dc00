"""`bench rate` on a study: pick the pairs that settle the recommendation, and say when it is settled.

The contenders are the groups of the folder's verdict.json that meet the constraints (bench.decide's
`excluded` is empty) and have images here, cheapest first (bench.decide's order: cost per 1k, then
p90 latency). bench.decide.duels keeps the race on Elo: after every vote it drops the contenders
shown worse beyond the margin and checks whether the cheapest one left is shown not worse than every
other. Until then, the pairs offered are the cheapest contender still in the race against the others
still open (bench.decide.duels.ArenaRace.priority); once settled, the offers go back to today's
uncertainty-weighted pairs (votes still sharpen the report's ratings) and the page and the terminal
say "settled: ...; you can stop".

Before it is settled the page shows only how many comparisons are open, never which groups: the
rater would otherwise learn which two models the next pair comes from.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.arena.votes import Vote
from bench.decide.duels import ArenaLook, ArenaRace
from bench.decide.settings import DEFAULT_MARGINS
from bench.decide.verdict import VERDICT_FILE, GroupVerdict, Verdict
from bench.errors import BenchError


class CannotSettle(BenchError):
    """`bench rate --pairs settle` on a folder whose verdict gives fewer than two contenders to rate."""


def _cost_key(g: GroupVerdict) -> tuple[float, float, str]:
    cost = g.cost_per_1k_usd if not math.isnan(g.cost_per_1k_usd) else math.inf
    lat = g.latency_p90_s if not math.isnan(g.latency_p90_s) else math.inf
    return (cost, lat, g.group)


def contenders_of(verdict: Verdict, arms: Sequence[str]) -> list[str]:
    """The verdict's groups that meet the constraints and have images in the arena, cheapest first."""
    present = set(arms)
    ok = [g for g in verdict.groups if not g.excluded and g.group in present]
    return [g.group for g in sorted(ok, key=_cost_key)]


def read_study_verdict(folder: Path) -> Verdict | None:
    from bench.decide.io import read_verdict

    if not (Path(folder) / VERDICT_FILE).is_file():
        return None
    try:
        return read_verdict(folder)
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class Settler:
    race: ArenaRace
    announced: bool = False  # the settled message has been printed in the terminal
    last: ArenaLook | None = None

    @classmethod
    def build(
        cls, verdict: Verdict, arms: Sequence[str], votes: Sequence[Vote], margin_elo: float | None = None
    ) -> Settler:
        contenders = contenders_of(verdict, arms)
        if len(contenders) < 2:
            raise CannotSettle(
                f"--pairs settle: {VERDICT_FILE} names {len(contenders)} group(s) that meet the constraints "
                f"and have images here; settling needs two (use --pairs uncertainty)"
            )
        if margin_elo is None:
            margin_elo = verdict.margin if verdict.signal == "arena_elo" else DEFAULT_MARGINS["arena_elo"]
        confidence = verdict.confidence if 0.5 <= verdict.confidence < 1.0 else 0.95
        out = cls(ArenaRace(contenders, float(margin_elo), 1.0 - confidence))
        for v in votes:
            out.race.add(v.left.arm, v.right.arm, v.score_left)
        out.last = out.race.look()
        return out

    def add(self, vote: Vote) -> str | None:
        """Count a vote and look again; the settled message the first time the race is settled."""
        self.race.add(vote.left.arm, vote.right.arm, vote.score_left)
        return self.newly_settled()

    def newly_settled(self) -> str | None:
        self.last = self.race.look()
        if self.last.settled and not self.announced:
            self.announced = True
            return self.race.message(self.last)
        return None

    @property
    def look(self) -> ArenaLook:
        if self.last is None:
            self.last = self.race.look()
        return self.last

    def weights(self) -> dict[tuple[str, str], float] | None:
        """Arm pair (sorted) -> weight for the next offer: the open pairs, the first by far the
        heaviest (the others take over only when the rater has seen every image pair of it);
        None once settled."""
        look = self.look
        if look.settled:
            return None
        ranked = self.race.priority(look)
        return {(min(p), max(p)): 1000.0**-i for i, p in enumerate(ranked)}

    def status(self) -> dict[str, Any]:
        """For the page: no group names until settled (they would tell the rater what the pair is)."""
        look = self.look
        out: dict[str, Any] = {
            "mode": "settle",
            "settled": look.settled,
            "open": len(look.open_pairs),
            "margin_elo": self.race.margin,
            "votes": self.race.votes,
        }
        if look.settled:
            out["message"] = self.race.message(look)
        return out

    def describe(self) -> str:
        return (
            f"pairs: settle the recommendation ({len(self.race.order)} contenders of {VERDICT_FILE}, "
            f"margin {self.race.margin:g} Elo, always-valid tests at {100 * self.race.alpha_total:g}%; "
            "--pairs uncertainty for the plain scheduler)"
        )

"""The gate's human-preference check: Elo of each candidate group against the same group in the baseline.

Votes come from `bench rate CANDIDATE --against BASELINE` (the candidate folder's votes.jsonl).
An arm is (run, group): a side of a vote counts for the baseline's group only when it was cast
on an image of the baseline folder being compared (the vote names that folder), and for the
candidate's group only when its image is one of the candidate's. Votes the baseline folder holds
from rating it alone are not read: they are not part of this comparison, and under the same arm
names they would be counted for the candidate's images.

The rule is on the interval of the difference Elo(candidate) - Elo(baseline) (percentile
bootstrap over votes, both ratings refitted on each draw): fail when its upper bound is below
-arena.max_drop. Requiring two 95% intervals not to overlap is, for equal widths, a test at about
99.4%: it missed most real drops.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.arena.pairs import BASELINE_PREFIX, arm_images
from bench.arena.ratings import rate
from bench.arena.report import vote_files
from bench.arena.votes import Side, Vote, read_all_votes
from bench.report.runs import RunSet

CANDIDATE_PREFIX = "candidate: "


def _images(records: pd.DataFrame) -> set[tuple[str, str]]:
    """(group label, image sha256) of every ok image of a run or sweep folder."""
    return {
        (arm, img.sha256)
        for arms in arm_images(records).values()
        for arm, images in arms.items()
        for img in images
    }


def _inside(path: str, root: Path) -> bool:
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


class _ArmMap:
    """Maps a vote's side to its (run, group) arm, or None when the side is not an image of either run."""

    def __init__(self, base: RunSet, cand: RunSet) -> None:
        self.base_root = base.root.resolve()
        self.base = _images(base.records)
        self.cand = _images(cand.records)
        self.foreign = 0  # sides cast against another baseline folder

    def arm(self, side: Side) -> str | None:
        if side.run_path.startswith(BASELINE_PREFIX):
            if not _inside(side.run_path[len(BASELINE_PREFIX) :], self.base_root):
                self.foreign += 1
                return None
            group = side.arm[len(BASELINE_PREFIX) :] if side.arm.startswith(BASELINE_PREFIX) else side.arm
            return BASELINE_PREFIX + group if (group, side.image_sha256) in self.base else None
        if (side.arm, side.image_sha256) in self.cand:
            return CANDIDATE_PREFIX + side.arm
        return None


def comparison_votes(base: RunSet, cand: RunSet, notes: list[str]) -> list[Vote]:
    """The candidate folder's votes with each side renamed to its (run, group) arm; others dropped."""
    arms = _ArmMap(base, cand)
    kept: list[Vote] = []
    raw = read_all_votes(vote_files(cand))
    for vote in raw:
        left, right = arms.arm(vote.left), arms.arm(vote.right)
        if left is None or right is None:
            continue
        kept.append(replace(vote, left=replace(vote.left, arm=left), right=replace(vote.right, arm=right)))
    if len(kept) < len(raw):
        notes.append(
            f"arena: {len(raw) - len(kept)} of the candidate folder's {len(raw)} votes were cast on images of "
            "neither run compared (another baseline, or images no longer in the records): not counted"
        )
    own = read_all_votes(vote_files(base))
    if own:
        notes.append(
            f"arena: the baseline folder's own {len(own)} votes are not used (they were not cast in this "
            "comparison); the Elo check reads `bench rate CANDIDATE --against BASELINE` votes only"
        )
    return kept


def arena_checks(
    base: RunSet, cand: RunSet, max_drop: float, n_boot: int, conf: float, seed: int, notes: list[str],
    check_cls: Any,
) -> list[Any]:  # fmt: skip
    """One `arena_elo` check per candidate group rated beside the same group of the baseline."""
    votes = comparison_votes(base, cand, notes)
    if not votes:
        if read_all_votes(vote_files(cand)) or read_all_votes(vote_files(base)):
            notes.append(
                "arena votes found, but none rate the candidate's groups beside the baseline's: "
                "run `bench rate CANDIDATE --against BASELINE` for the Elo check"
            )
        return []
    ratings = rate(votes, n_boot=n_boot, confidence=conf, seed=seed)
    rows = {str(r["arm"]): r for r in ratings.table.to_dict("records")}
    rule = f"fail if the upper bound of Elo(cand) - Elo(base) < {-max_drop:g}"
    checks = []
    for arm in sorted(rows):
        if not arm.startswith(CANDIDATE_PREFIX):
            continue
        group = arm[len(CANDIDATE_PREFIX) :]
        c, b = rows[arm], rows.get(BASELINE_PREFIX + group)
        if b is None:
            continue
        n = int(c["votes"]) + int(b["votes"])
        direct = sum({v.left.arm, v.right.arm} == {arm, BASELINE_PREFIX + group} for v in votes)
        est, low, high = ratings.difference(arm, BASELINE_PREFIX + group)
        if np.isnan(est):
            checks.append(check_cls(group, "arena_elo", np.nan, np.nan, np.nan, np.nan, np.nan, False, n,
                                    "skipped", rule, "not compared with each other (directly or through other arms)"))  # fmt: skip
            continue
        fail = bool(high < -max_drop)
        detail = (
            f"candidate {c['elo']:.0f}, baseline {b['elo']:.0f}; {direct} head-to-head votes, {n} in all "
            f"({100 * conf:.4g}% interval of the difference)"
        )
        checks.append(check_cls(group, "arena_elo", float(b["elo"]), float(c["elo"]), est, low, high, False, n,
                                "FAIL" if fail else "pass", rule, detail))  # fmt: skip
    if not checks:
        notes.append(
            "arena votes found, but none rate the candidate's groups beside the baseline's: "
            "run `bench rate CANDIDATE --against BASELINE` for the Elo check"
        )
    return checks

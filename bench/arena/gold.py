"""Gold pairs: a few comparisons with an obvious answer, to flag careless raters.

With `bench rate PATH --gold-every N`, every Nth pair a rater gets (the N/2-th, then every N) puts a
real image against a blank grey one. The real image must win: "left"/"right" for the other side,
"tie" and "both bad" count as failures too. Gold answers go to PATH/gold.jsonl (one fsynced line
each), never to votes.jsonl, so they never touch the ratings. The page does not tell gold pairs apart.

A rater is flagged when they failed at least FLAG_MIN_FAILED gold pairs and at least half of theirs
(tests/test_arena_gold.py simulates careful and careless raters; figures in docs/signal-agreement.md).
`report.arena_exclude_flagged=true` (or `bench report PATH report.arena_exclude_flagged=true`) leaves
a flagged rater's votes out of the Elo ratings and the agreement table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage

from bench.arena.pairs import Image, Offer, Scheduler
from bench.arena.votes import Vote

GOLD_FILE = "gold.jsonl"
BLANK_FILE = "arena-gold-blank.png"
GOLD_ARM = "gold: blank"
FLAG_MIN_FAILED = 2


@dataclass(frozen=True)
class GoldResult:
    rater: str
    passed: int
    failed: int

    @property
    def flagged(self) -> bool:
        return self.failed >= FLAG_MIN_FAILED and self.failed >= self.passed


def blank_image(folder: Path) -> Image:
    """The blank side of every gold pair: a uniform grey PNG in the folder rated (made once)."""
    path = folder / BLANK_FILE
    if not path.is_file():
        PILImage.new("RGB", (512, 512), (128, 128, 128)).save(path, format="PNG")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    return Image(sha, BLANK_FILE, GOLD_ARM, "gold", {}, "", None)


def is_gold(offer: Offer) -> bool:
    return GOLD_ARM in (offer.left.arm, offer.right.arm)


def gold_due(answers: int, every: int) -> bool:
    """Whether the rater's next pair (after `answers` answers, votes and gold) is a gold pair."""
    return every > 0 and answers % every == every // 2


def gold_offer(scheduler: Scheduler, rater: str, blank: Image) -> Offer | None:
    """A real image of a random prompt against the blank one, random side; registered as the rater's pending pair."""
    real = [(pid, img) for pid, arms in scheduler.images.items() for imgs in arms.values() for img in imgs]
    if not real:
        return None
    pid, img = real[int(scheduler.rng.integers(len(real)))]
    left, right = (img, blank) if scheduler.rng.random() < 0.5 else (blank, img)
    offer = Offer(secrets.token_urlsafe(12), pid, scheduler.prompts.get(pid, ""), left, right)
    scheduler.offers[offer.token] = offer
    scheduler.pending[rater] = offer.token
    return offer


def passed(offer: Offer, choice: str) -> bool:
    return choice == ("right" if offer.left.arm == GOLD_ARM else "left")


def append_gold(folder: Path, rater: str, offer: Offer, choice: str) -> None:
    """One fsynced line per gold answer in FOLDER/gold.jsonl."""
    line = {
        "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "rater": rater,
        "prompt_id": offer.prompt_id,
        "real_image_sha256": offer.right.sha256 if offer.left.arm == GOLD_ARM else offer.left.sha256,
        "choice": choice,
        "passed": passed(offer, choice),
    }
    fd = os.open(folder / GOLD_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(line, sort_keys=True) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_gold(paths: Iterable[Path]) -> list[dict[str, object]]:
    out = []
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                raw = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if isinstance(raw, dict) and "rater" in raw and "passed" in raw:
                out.append(raw)
    return out


def gold_results(answers: Sequence[dict[str, object]]) -> list[GoldResult]:
    by: dict[str, list[bool]] = {}
    for a in answers:
        by.setdefault(str(a["rater"]), []).append(bool(a["passed"]))
    return [GoldResult(r, sum(v), len(v) - sum(v)) for r, v in sorted(by.items())]


def without_flagged(votes: Sequence[Vote], results: Sequence[GoldResult]) -> list[Vote]:
    flagged = {r.rater for r in results if r.flagged}
    return [v for v in votes if v.rater not in flagged]

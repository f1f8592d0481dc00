"""votes.jsonl: one line per human vote, appended and fsynced before the vote is acknowledged.

Like the run journal, the file is the source of truth: a server killed at any moment
loses no acknowledged vote, and a half-written last line (a crash mid-write) is
skipped on reading. Each vote names both images by sha256 and both contestants
("arms": a target and its settings) as they were hidden from the rater.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

VOTES_FILE = "votes.jsonl"
CHOICES = ("left", "right", "tie", "both_bad")


@dataclass(frozen=True)
class Side:
    arm: str  # the contestant: target and settings, e.g. "local:shapes-fast steps=4 cfg=2"
    image_sha256: str
    target: str
    settings: dict[str, Any]  # the summary's group keys (steps, guidance, size); None = not sent
    run_path: str  # the run folder, relative to the folder rated ("" for a single run)
    seed: float | None = None


@dataclass(frozen=True)
class Vote:
    id: str
    ts: str  # UTC, ISO 8601
    rater: str
    prompt_id: str
    prompt: str
    left: Side
    right: Side
    choice: str  # left | right | tie | both_bad (counted as a tie, the way LMArena counts it)

    @property
    def pair(self) -> frozenset[str]:
        """The two images: a rater never sees the same pair twice, in either order."""
        return frozenset((self.left.image_sha256, self.right.image_sha256))

    @property
    def score_left(self) -> float:
        """1 when the left image won, 0 when it lost, 0.5 for a tie or 'both bad'."""
        return {"left": 1.0, "right": 0.0}.get(self.choice, 0.5)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Vote:
        if raw.get("choice") not in CHOICES:
            raise ValueError(f"unknown choice {raw.get('choice')!r}")
        return cls(
            id=str(raw["id"]),
            ts=str(raw["ts"]),
            rater=str(raw["rater"]),
            prompt_id=str(raw["prompt_id"]),
            prompt=str(raw.get("prompt", "")),
            left=Side(**raw["left"]),
            right=Side(**raw["right"]),
            choice=str(raw["choice"]),
        )


def read_votes(path: Path) -> list[Vote]:
    """Votes of one votes.jsonl; a torn or malformed line (a crash mid-append) is skipped."""
    if not path.is_file():
        return []
    out: list[Vote] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            vote = Vote.from_dict(json.loads(line))
        except (ValueError, KeyError, TypeError):
            continue
        if vote.id not in seen:
            seen.add(vote.id)
            out.append(vote)
    return out


def vote_key(vote: Vote) -> tuple[str, frozenset[str]]:
    """What makes two votes one: the same rater on the same two images (in either order)."""
    return (vote.rater, vote.pair)


def dedupe_votes(votes: Iterable[Vote]) -> list[Vote]:
    """One vote per id and per rater and image pair: the earliest is kept (the scheduler never offers a
    rater the same pair twice, so a later one is a copy from an import or a merged sweep). In time order."""
    out: dict[tuple[str, frozenset[str]], Vote] = {}
    ids: set[str] = set()
    for vote in sorted(votes, key=lambda v: v.ts):  # stable: equal times keep the files' order
        if vote.id not in ids and vote_key(vote) not in out:
            ids.add(vote.id)
            out[vote_key(vote)] = vote
    return list(out.values())


def read_all_votes(paths: Iterable[Path]) -> list[Vote]:
    """Votes of several files (a sweep's root and its runs), each vote once (dedupe_votes)."""
    return dedupe_votes(vote for path in paths for vote in read_votes(path))


class VoteLog:
    """Appends votes to votes.jsonl with an fsync per vote (votes arrive at human speed)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.votes = read_votes(path)

    def append(self, vote: Vote) -> None:
        data = (vote.to_json() + "\n").encode("utf-8")
        with self._lock:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                # A torn last line from a crash would glue onto this vote: start on a fresh line.
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    data = b"\n" + data
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:  # the new file's directory entry must survive a crash too
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            self.votes.append(vote)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

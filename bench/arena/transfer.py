"""`bench rate PATH --export FILE` and `bench rate PATH --import FILE`: votes that travel between machines.

The file is JSON lines, one vote each, in the votes.jsonl format plus a `format` tag: run
(`left.run_path` / `right.run_path`), group (`left.arm` / `right.arm`), image hashes
(`left.image_sha256` / `right.image_sha256`), rater and time (`ts`). Images are named by sha256, so
votes rated on one machine land on the same images of a copy of the folder on another.

Merging never double counts: a vote is the same vote when it has the same id, or the same rater on
the same pair of images (bench.arena.votes.vote_key); the copy already stored is kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from bench.arena.report import vote_files
from bench.arena.votes import VOTES_FILE, Vote, VoteLog, dedupe_votes, read_all_votes, vote_key
from bench.errors import BenchError
from bench.report.runs import RunSet

FORMAT = "t2i-bench-vote/1"


class BadVoteFile(BenchError):
    """An import file that is not votes (a line that does not parse, or an unknown format tag)."""


@dataclass(frozen=True)
class ImportResult:
    added: int
    already_present: int  # same id, or same rater on the same images
    foreign: int  # votes on images this folder does not have: not imported


def export_votes(path: Path, dest: Path) -> int:
    """Write every vote of the run or sweep at `path` to `dest` (JSON lines); returns how many."""
    runs = RunSet.load(path)
    votes = sorted(dedupe_votes(read_all_votes(vote_files(runs))), key=lambda v: (v.ts, v.id))
    lines = []
    for v in votes:
        raw = json.loads(v.to_json())
        raw["format"] = FORMAT
        lines.append(json.dumps(raw, sort_keys=True, ensure_ascii=False))
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(tmp, dest)  # a crash mid-export never leaves half a file under the name asked for
    return len(votes)


def parse_vote_file(src: Path) -> list[Vote]:
    """Every vote of an export file; BadVoteFile naming the first line that is not one."""
    if not src.is_file():
        raise BadVoteFile(
            f"--import {src}: no such file; give a file written by `bench rate PATH --export FILE`"
        )
    out = []
    for number, line in enumerate(src.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if raw.get("format", FORMAT) != FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {FORMAT!r}")
            raw.pop("format", None)
            out.append(Vote.from_dict(raw))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadVoteFile(
                f"--import {src}: line {number} is not a vote ({exc}); export again with "
                "`bench rate PATH --export FILE`"
            ) from None
    return out


def import_votes(path: Path, src: Path) -> ImportResult:
    """Append the votes of `src` that are new to PATH/votes.jsonl, each fsynced like a live vote."""
    runs = RunSet.load(path)
    incoming = parse_vote_file(src)
    known = {vote_key(v) for v in read_all_votes(vote_files(runs))}
    known_ids = {v.id for v in read_all_votes(vote_files(runs))}
    images = (
        set(runs.records["image_sha256"].dropna().astype(str)) if "image_sha256" in runs.records else set()
    )
    log = VoteLog(runs.root / VOTES_FILE)
    added = present = foreign = 0
    for v in incoming:
        if v.id in known_ids or vote_key(v) in known:
            present += 1
        elif v.left.image_sha256 not in images or v.right.image_sha256 not in images:
            foreign += 1
        else:
            log.append(v)
            known.add(vote_key(v))
            known_ids.add(v.id)
            added += 1
    return ImportResult(added, present, foreign)

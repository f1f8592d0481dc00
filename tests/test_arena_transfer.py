"""Votes travel: `bench rate PATH --export FILE` / `--import FILE`, and a sweep's votes merge once.

The first export (exit 0) and the first refused import (exit 2) run `bench` in a process of its
own; the other calls run the same code in this process (bench_in_process)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from _report_runs import bench, bench_in_process

from bench.arena.report import arena_ratings
from bench.arena.transfer import FORMAT
from bench.arena.votes import VOTES_FILE, Side, Vote, VoteLog, read_votes
from bench.report.runs import RunSet

SHAS = [f"{c}" * 64 for c in "abcd"]


def _run(folder: Path) -> Path:
    """A minimal run folder: four ok images of one prompt, two targets."""
    folder.mkdir(parents=True)
    pd.DataFrame(
        {
            "status": "ok",
            "image_sha256": SHAS,
            "image_path": [f"images/{s[:8]}.png" for s in SHAS],
            "prompt_id": "p1",
            "prompt": "a cat",
            "target": ["t:a", "t:a", "t:b", "t:b"],
            "steps": 4.0,
            "guidance": 2.0,
            "size": "64x64",
            "seed": [0.0, 1.0, 0.0, 1.0],
        }
    ).to_parquet(folder / "records.parquet", index=False)
    return folder


def _vote(i: int, rater: str, left: str, right: str, choice: str = "left", run_path: str = "") -> Vote:
    def side(sha: str) -> Side:
        target = "t:a" if sha in SHAS[:2] else "t:b"
        return Side(f"{target} steps=4 cfg=2 64x64", sha, target, {"steps": 4.0}, run_path)

    return Vote(
        f"id{i}", f"2026-01-01T00:00:{i:02d}.000+00:00", rater, "p1", "a cat", side(left), side(right), choice
    )


def test_export_then_import_on_another_machine_moves_every_vote_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = _run(tmp_path / "here")
    log = VoteLog(here / VOTES_FILE)
    sent = [
        _vote(0, "ana", SHAS[0], SHAS[2]),
        _vote(1, "ben", SHAS[0], SHAS[2], "tie"),
        _vote(2, "ana", SHAS[1], SHAS[3]),
    ]
    for v in sent:
        log.append(v)
    export = tmp_path / "votes-export.jsonl"
    proc = bench("rate", str(here), "--export", str(export))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert len(lines) == 3 and all(line["format"] == FORMAT for line in lines)
    first = lines[0]  # run, group, image hashes, rater, time
    assert first["left"]["run_path"] == "" and first["left"]["arm"].startswith("t:a")
    assert (
        first["left"]["image_sha256"] == SHAS[0]
        and first["rater"] == "ana"
        and first["ts"].endswith("+00:00")
    )

    there = shutil.copytree(here, tmp_path / "there", ignore=shutil.ignore_patterns(VOTES_FILE))
    proc = bench_in_process(capsys, "rate", str(there), "--import", str(export))
    assert proc.returncode == 0, proc.stderr
    assert "imported 3 votes" in proc.stdout
    assert read_votes(there / VOTES_FILE) == sent
    # Importing again, or importing a vote re-made under a new id (same rater, same images), adds nothing.
    again = bench_in_process(capsys, "rate", str(there), "--import", str(export))
    assert again.returncode == 0 and "imported 0 votes" in again.stdout and "3 already there" in again.stdout
    copy = tmp_path / "copy.jsonl"
    twin = json.loads(export.read_text().splitlines()[0]) | {"id": "other-id"}
    twin["left"], twin["right"] = twin["right"], twin["left"]  # the same pair shown the other way round
    copy.write_text(json.dumps(twin) + "\n")
    assert "imported 0 votes" in bench_in_process(capsys, "rate", str(there), "--import", str(copy)).stdout
    assert len(read_votes(there / VOTES_FILE)) == 3


def test_import_refuses_bad_files_and_foreign_votes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    here = _run(tmp_path / "here")
    bad = tmp_path / "bad.jsonl"
    good = _vote(0, "ana", SHAS[0], SHAS[2]).to_json()
    bad.write_text(good + "\n{not json\n")
    proc = bench("rate", str(here), "--import", str(bad))
    assert proc.returncode == 2 and "line 2 is not a vote" in proc.stderr
    assert not (here / VOTES_FILE).exists()  # nothing half-imported
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text(good.replace(SHAS[0], "f" * 64) + "\n")
    proc = bench_in_process(capsys, "rate", str(here), "--import", str(foreign))
    assert proc.returncode == 2 and "none of its votes are on images of" in proc.stderr
    missing = bench_in_process(capsys, "rate", str(here), "--import", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_a_sweeps_votes_merge_without_double_counting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = tmp_path / "sweep"
    _run(sweep / "0")
    _run(sweep / "1")
    # The same vote (ana, same images) stored twice, once in a run and once at the sweep's root under
    # another id (e.g. rated on the run, then imported at the root); ben's vote on the pair is his own.
    VoteLog(sweep / "0" / VOTES_FILE).append(_vote(0, "ana", SHAS[0], SHAS[2], run_path="0"))
    root = VoteLog(sweep / VOTES_FILE)
    root.append(_vote(1, "ana", SHAS[2], SHAS[0], "right", run_path="0"))
    root.append(_vote(2, "ben", SHAS[0], SHAS[2], run_path="0"))
    ratings = arena_ratings(RunSet.load(sweep), n_boot=20)
    assert ratings is not None and ratings.n_votes == 2 and ratings.n_raters == 2
    export = tmp_path / "sweep.jsonl"
    assert bench_in_process(capsys, "rate", str(sweep), "--export", str(export)).returncode == 0
    assert [json.loads(line)["id"] for line in export.read_text().splitlines()] == ["id0", "id2"]

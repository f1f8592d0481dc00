"""`bench rate`'s server over real HTTP on 127.0.0.1: blind pairs, votes on disk, scheduling, errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _report_runs import bench, bench_in_process, make_run

from bench.arena.app import Arena, NothingToRate, build_app
from bench.arena.pairs import Scheduler
from bench.arena.votes import VOTES_FILE, Side, Vote, read_votes
from bench.emulators.serve import running
from bench.report.runs import RunSet


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 2 targets x 12 prompts x 2 seeds: 4 image pairs per prompt, 48 in all.
    return make_run(tmp_path_factory.mktemp("arena_runs"), "rated")


def _fresh(run: Path, tmp_path: Path) -> Path:
    """A copy of the run's records and images, so each test starts with no votes."""
    import shutil

    dst = tmp_path / "run"
    shutil.copytree(run, dst, ignore=shutil.ignore_patterns(VOTES_FILE))
    return dst


def _client(url: str) -> httpx.Client:
    """A client that says it comes from the arena's own page (the server refuses votes from elsewhere)."""
    return httpx.Client(base_url=url, timeout=10, headers={"origin": url})


def test_blind_pairs_votes_fsynced_and_never_repeated(run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    arena = Arena.open(folder, "ana", seed=3)
    seen: set[frozenset[str]] = set()
    with running(build_app(arena)) as url, _client(url) as c:
        page = c.get("/")
        assert page.status_code == 200 and "both bad" in page.text
        d = c.get("/api/next", params={"rater": "ana"}).json()
        assert d["progress"] == {"yours": 0, "total": 0, "left": 48}
        assert c.get("/api/next", params={"rater": "ana"}).json()["token"] == d["token"]  # reload: same pair
        while not d.get("done"):
            left, right = c.get(d["left"]), c.get(d["right"])
            assert left.status_code == right.status_code == 200 and left.content[:4] == b"\x89PNG"
            r = c.post("/api/vote", json={"token": d["token"], "choice": "left", "rater": "ana"})
            assert r.status_code == 200
            # Blind for the whole session: no answer, before or after a vote, names an arm.
            for answer in (json.dumps(d), r.text, left.headers.get("content-disposition", "")):
                assert (
                    "shapes-fast" not in answer and "shapes-quality" not in answer and "local:" not in answer
                )
            assert r.json()["saved"] == {"choice": "left"}
            on_disk = read_votes(folder / VOTES_FILE)  # written before the answer came back
            assert len(on_disk) == len(seen) + 1
            last = on_disk[-1]
            assert last.pair not in seen and last.left.arm != last.right.arm and last.prompt
            assert last.rater == "ana" and last.ts.endswith("+00:00")
            seen.add(last.pair)
            d = r.json()
        assert len(seen) == 48 and d["progress"]["left"] == 0  # every pair once, then done
        # Another rater still has all 48 to see; the first one's votes are not theirs.
        other = c.get("/api/next", params={"rater": "ben"}).json()
        assert other["progress"] == {"yours": 0, "total": 48, "left": 48}
        # Sides are random: both arms appear on the left.
        assert len({v.left.target for v in read_votes(folder / VOTES_FILE)}) == 2
        # Seeds are random too: each arm's both seeds were shown.
        assert {v.left.seed for v in read_votes(folder / VOTES_FILE)} == {0.0, 1.0}


def test_bad_votes_are_refused(run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    arena = Arena.open(folder, "ana", seed=0)
    with running(build_app(arena)) as url, _client(url) as c:
        d = c.get("/api/next").json()
        assert c.post("/api/vote", json={"token": d["token"], "choice": "maybe"}).status_code == 400
        assert c.post("/api/vote", json={"token": "nope", "choice": "tie"}).status_code == 409
        # Someone else cannot answer ana's pair.
        assert (
            c.post("/api/vote", json={"token": d["token"], "choice": "tie", "rater": "eve"}).status_code
            == 409
        )
        assert c.get("/image/nope/left").status_code == 404
        assert (
            c.post("/api/vote", content=b"{", headers={"content-type": "application/json"}).status_code == 400
        )
    assert not (folder / VOTES_FILE).exists()


def test_torn_last_line_is_skipped_and_the_next_vote_starts_clean(run: Path, tmp_path: Path) -> None:
    folder = _fresh(run, tmp_path)
    arena = Arena.open(folder, "ana", seed=1)
    with running(build_app(arena)) as url, _client(url) as c:
        d = c.get("/api/next").json()
        c.post("/api/vote", json={"token": d["token"], "choice": "tie"})
    with (folder / VOTES_FILE).open("a") as fh:
        fh.write('{"id": "torn", "choice": "le')  # a crash in the middle of an append
    arena = Arena.open(folder, "ana", seed=2)
    assert len(arena.log.votes) == 1
    with running(build_app(arena)) as url, _client(url) as c:
        d = c.get("/api/next").json()
        assert c.post("/api/vote", json={"token": d["token"], "choice": "right"}).status_code == 200
    assert [v.choice for v in read_votes(folder / VOTES_FILE)] == ["tie", "right"]


def test_scheduler_favours_uncertain_pairs(run: Path) -> None:
    records = RunSet.load(run).records
    extra = records[records["target"] == "local:shapes-quality"].copy()
    extra["target"] = "local:shapes-clone"
    extra["image_sha256"] = extra["image_sha256"] + "-clone"
    sched = Scheduler.from_records(pd.concat([records, extra], ignore_index=True), seed=0)
    assert len(sched.arms) == 3 and len(sched.arm_pairs()) == 3
    clone, fast, quality = sched.arms  # sorted labels

    def side(arm: str) -> Side:
        return Side(arm, arm, arm, {}, "")

    # 40 votes: fast always loses to quality (lopsided and well measured); no votes on the other pairs.
    votes = [Vote(str(i), "t", "r", "p", "", side(quality), side(fast), "left") for i in range(40)]
    w = sched.weights(votes)
    assert w[(fast, quality)] < 0.05 * w[(clone, quality)]
    offers = []
    for i in range(300):
        offers.append(sched.next_offer(f"rater{i}", votes))
        # Each rater moves on before the next asks: a pair held by someone is never offered to another
        # (tests/test_arena_raters.py), and 300 raters holding pairs at once would exhaust the close ones.
        sched.offers.clear()
        sched.pending.clear()
    chosen = [frozenset((o.left.arm, o.right.arm)) for o in offers if o is not None]
    share = chosen.count(frozenset((fast, quality))) / len(chosen)
    assert share < 0.1  # uniform scheduling would give a third


def test_bench_rate_refuses_a_folder_without_runs_or_pairs(run: Path, tmp_path: Path) -> None:
    proc = bench("rate", str(tmp_path / "nothing"), "--port", "0")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
    folder = _fresh(run, tmp_path)
    records = pd.read_parquet(folder / "records.parquet")
    records[records["target"] == "local:shapes-fast"].to_parquet(folder / "records.parquet", index=False)
    with pytest.raises(NothingToRate, match="two targets or settings"):
        Arena.open(folder, "ana")
    proc = bench("rate", str(folder), "--port", "0")
    assert proc.returncode == 2 and "nothing to compare" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_sweep_folder_is_rated_across_its_runs(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    sweep = tmp_path / "sweep"
    for job, target in (("job-fast", "local:shapes-fast"), ("job-quality", "local:shapes-quality")):
        shutil.copytree(run, sweep / job, ignore=shutil.ignore_patterns(VOTES_FILE))
        records = pd.read_parquet(sweep / job / "records.parquet")
        records[records["target"] == target].to_parquet(sweep / job / "records.parquet", index=False)
    arena = Arena.open(sweep, "ana", seed=4)
    assert len(arena.scheduler.arms) == 2  # one per run: only a cross-run pair exists
    with running(build_app(arena)) as url, _client(url) as c:
        for _ in range(6):
            d = c.get("/api/next").json()
            assert c.get(d["left"]).status_code == 200 and c.get(d["right"]).status_code == 200
            assert c.post("/api/vote", json={"token": d["token"], "choice": "left"}).status_code == 200
    votes = read_votes(sweep / VOTES_FILE)  # the sweep's own votes.jsonl, at its root
    assert len(votes) == 6 and {v.left.run_path for v in votes} == {"job-fast", "job-quality"}
    assert bench_in_process(capsys, "report", str(sweep), "report.n_boot=200").returncode == 0
    summary = pd.read_parquet(sweep / "summary.parquet")
    assert summary["arena_votes"].tolist() == [6, 6] and summary["arena_elo"].notna().all()

"""A team's arena: one token link per rater, votes attributed to the token, never one pair to two raters at once."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pandas as pd
import pytest
from _browser import chromium, needs_chromium
from _report_runs import BENCH

from bench.arena.app import Arena, build_app
from bench.arena.raters import RATERS_FILE, BadRaters, parse_raters, rater_tokens
from bench.arena.votes import VOTES_FILE, read_votes
from bench.emulators.serve import running


def _run(folder: Path, prompts: int = 3) -> Path:
    """Two targets x `prompts` prompts x 2 seeds: 4 image pairs per prompt (images are never fetched here)."""
    folder.mkdir(parents=True)
    rows = [
        {"status": "ok", "image_sha256": f"{t}{p}{s}".ljust(64, "0"), "image_path": f"images/{t}{p}{s}.png",
         "prompt_id": f"p{p}", "prompt": f"prompt {p}", "target": f"t:{t}", "steps": 4.0, "guidance": 2.0,
         "size": "64x64", "seed": float(s)}
        for t in "ab" for p in range(prompts) for s in range(2)
    ]  # fmt: skip
    pd.DataFrame(rows).to_parquet(folder / "records.parquet", index=False)
    return folder


def test_raters_option_is_checked() -> None:
    assert parse_raters(" alice, bob ") == ["alice", "bob"]
    for bad in ("", "alice,,bob", "alice,alice"):
        with pytest.raises(BadRaters, match="--raters"):
            parse_raters(bad)


def test_tokens_survive_a_restart_and_stay_private(tmp_path: Path) -> None:
    first = rater_tokens(tmp_path, ["alice", "bob"])
    assert sorted(first.values()) == ["alice", "bob"] and len(set(first)) == 2
    again = rater_tokens(tmp_path, ["bob", "carol"])
    assert {n: t for t, n in again.items()}["bob"] == {n: t for t, n in first.items()}["bob"]
    assert (tmp_path / RATERS_FILE).stat().st_mode & 0o077 == 0


def test_votes_belong_to_the_token_and_need_one(tmp_path: Path) -> None:
    folder = _run(tmp_path / "run")
    arena = Arena.open(folder, "owner", seed=1)
    arena.tokens = rater_tokens(folder, ["alice", "bob"])
    token = {n: t for t, n in arena.tokens.items()}
    with running(build_app(arena)) as url, httpx.Client(base_url=url, timeout=10) as c:
        origin = {"origin": url}
        assert c.get("/api/next").status_code == 403  # no token: refused, even with a name
        assert c.get("/api/next", params={"rater": "alice"}).status_code == 403
        assert c.get("/api/next", params={"rt": token["alice"] + "x"}).status_code == 403
        a = c.get("/api/next", params={"rt": token["alice"]}).json()
        b = c.get("/api/next", params={"rt": token["bob"]}).json()
        assert a["rater"] == "alice" and b["rater"] == "bob"
        # A vote without the token is refused; one naming another rater is still the token's.
        refused = c.post(
            "/api/vote", json={"token": a["token"], "choice": "left", "rater": "alice"}, headers=origin
        )
        assert refused.status_code == 403
        ok = c.post(
            "/api/vote",
            json={"token": a["token"], "choice": "left", "rater": "bob", "rater_token": token["alice"]},
            headers=origin,
        )
        assert ok.status_code == 200, ok.text
    votes = read_votes(folder / VOTES_FILE)
    assert [v.rater for v in votes] == ["alice"]


def test_two_raters_never_hold_the_same_pair_at_once(tmp_path: Path) -> None:
    # 1 prompt: 4 image pairs. Each of 4 raters asks at once: each gets a different pair.
    folder = _run(tmp_path / "run", prompts=1)
    arena = Arena.open(folder, "owner", seed=2)
    offers = [arena.scheduler.next_offer(r, arena.log.votes) for r in ("r1", "r2", "r3", "r4")]
    assert all(o is not None for o in offers)
    assert len({o.pair for o in offers if o is not None}) == 4
    assert arena.scheduler.next_offer("r5", arena.log.votes) is None  # all 4 pairs are held right now


@needs_chromium
def test_several_raters_in_chromium_each_through_their_own_link(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from _report_runs import make_run
    from test_browser_arena import _kill

    run = make_run(tmp_path_factory.mktemp("team_arena"), "rated")
    folder = tmp_path_factory.mktemp("team") / "rated"
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns(VOTES_FILE, RATERS_FILE))
    proc = subprocess.Popen(
        [*BENCH, "rate", str(folder), "--port", "0", "--seed", "3", "--raters", "alice,bob"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(3)]
    links = dict(re.findall(r"link for (\w+): (http://127\.0\.0\.1:\d+/\?rt=\S+)", "".join(lines)))
    assert set(links) == {"alice", "bob"} and links["alice"] != links["bob"], lines
    try:
        with chromium() as browser:
            pages = {}
            for name, link in links.items():  # separate contexts: two people, two browsers
                pages[name] = browser.new_context().new_page()
                pages[name].goto(link)
                pages[name].wait_for_function("document.getElementById('left').naturalWidth > 0")
                assert pages[name].input_value("#rater") == name
            keys = {"alice": "ArrowLeft", "bob": "ArrowRight"}
            for i in range(5):  # interleaved, as two people voting at the same time
                for name, page in pages.items():
                    page.wait_for_function("document.getElementById('left').complete")
                    page.keyboard.press(keys[name])
                    page.wait_for_function(f"document.body.dataset.votes === '{i + 1}'")
            # Without a token, the page says so and no vote is possible.
            stranger = browser.new_context().new_page()
            stranger.goto(links["alice"].split("?")[0])
            stranger.wait_for_function(
                "document.getElementById('prompt').textContent.includes('rater token')"
            )
    finally:
        _kill(proc)
    votes = read_votes(folder / VOTES_FILE)
    assert sorted(v.rater for v in votes) == ["alice"] * 5 + ["bob"] * 5
    assert {v.choice for v in votes if v.rater == "alice"} == {"left"}
    assert {v.choice for v in votes if v.rater == "bob"} == {"right"}
    assert json.loads((folder / RATERS_FILE).read_text()).keys() == {"alice", "bob"}


def test_listen_needs_raters_and_a_valid_address(tmp_path: Path) -> None:
    folder = _run(tmp_path / "run")
    for args, expected in (
        (["--listen", "nonsense", "--raters", "a"], "give an IPv4 address"),
        (["--listen", "127.0.0.1"], "needs --raters"),
        (["--listen", "0.0.0.0", "--raters", "a"], "also give --host"),
    ):
        proc = subprocess.run(
            [*BENCH, "rate", str(folder), *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 2 and expected in proc.stderr, (args, proc.stderr)


def test_listen_serves_the_address_given_with_host_checks(tmp_path: Path) -> None:
    import os
    import signal

    folder = _run(tmp_path / "run")
    proc = subprocess.Popen(
        [*BENCH, "rate", str(folder), "--listen", "127.0.0.1", "--port", "0", "--raters", "alice"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        out = proc.stdout.readline() + proc.stdout.readline()
        link = re.search(r"link for alice: (http://127\.0\.0\.1:(\d+))/\?rt=(\S+)", out)
        assert link, out
        base, port, token = link.group(1), link.group(2), link.group(3)
        with httpx.Client(base_url=base, timeout=10) as c:
            assert c.get("/api/next", params={"rt": token}).json()["rater"] == "alice"
            # Another Host (DNS rebinding, or a name nobody allowed) is refused on the served address too.
            assert (
                c.get("/api/next", params={"rt": token}, headers={"host": f"evil.example:{port}"}).status_code
                == 421
            )
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

"""`bench rate` in a real browser (Playwright driving Debian's chromium): 20 keyboard votes survive
a killed server, and the report then shows Elo ratings with intervals; the page never names a model,
and a 768 px image is shown at the same size as a 256 px one.

Skips where chromium or the playwright package is absent; CI installs both (`make browser`, dev extra).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _browser import chromium, needs_chromium
from _report_runs import BENCH, bench, make_run
from PIL import Image

from bench.arena.votes import VOTES_FILE, read_votes

pytest.importorskip("playwright.sync_api")
pytestmark = needs_chromium


def _serve(folder: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `bench rate FOLDER --port 0` as a user would; return the process and its URL."""
    proc = subprocess.Popen(
        [*BENCH, "rate", str(folder), "--port", "0", "--rater", "tester", "--seed", "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None and proc.stderr else "")
    return proc, match.group(0)


def _kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # no clean shutdown: what was acknowledged must be on disk
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def test_twenty_keyboard_votes_survive_a_killed_server_and_reach_the_report(
    browser: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run = make_run(tmp_path_factory.mktemp("browser_arena"), "rated")
    (run / VOTES_FILE).unlink(missing_ok=True)
    proc, url = _serve(run)
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(url)
        page.wait_for_function("document.getElementById('left').naturalWidth > 0")
        assert "pairs left for you: 48" in page.inner_text("#progress")
        keys = ["ArrowLeft", "ArrowRight", "t", "b"]
        for i in range(20):
            page.wait_for_function("document.getElementById('left').complete")
            page.keyboard.press(keys[i % 4])
            page.wait_for_function(f"document.body.dataset.votes === '{i + 1}'")
        assert "your votes: 20" in page.inner_text("#progress")
        assert "vote saved" in page.inner_text("#status")
        # Blind for the whole session: after 20 votes the page has still named no model.
        assert "local:" not in page.content() and "shapes-" not in page.inner_text("body")
    finally:
        _kill(proc)
    votes = read_votes(run / VOTES_FILE)
    assert len(votes) == 20 and {v.rater for v in votes} == {"tester"}
    assert [v.choice for v in votes] == (["left", "right", "tie", "both_bad"] * 5)
    assert len({v.pair for v in votes}) == 20  # never the same pair twice

    proc, url = _serve(run)  # restarted: every vote is still there, and counted
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(url)
        page.wait_for_function("document.body.dataset.votes === '20'")
        assert "all votes: 20" in page.inner_text("#progress")
        assert "pairs left for you: 28" in page.inner_text("#progress")
    finally:
        _kill(proc)
    assert len(read_votes(run / VOTES_FILE)) == 20

    assert bench("report", str(run), "report.n_boot=200").returncode == 0
    summary = pd.read_parquet(run / "summary.parquet")
    assert summary["arena_votes"].tolist() == [20, 20]
    assert summary["arena_elo"].notna().all() and (summary["arena_elo_ci_low"] < summary["arena_elo"]).all()
    assert (summary["arena_elo"] < summary["arena_elo_ci_high"]).all()
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto((run / "report.html").resolve().as_uri())
    rows = page.locator("#arena-table tbody tr")
    assert rows.count() == 2
    text = rows.nth(0).inner_text()
    assert re.search(r"\d{3,4}\s+\[\d{3,4}, \d{3,4}\]\s+20", text), text
    assert "20 blind pairwise votes by 1 rater" in page.inner_text("#arena ~ p")
    # 20 votes are fewer than the decision rests on (30), so auto keeps the per-image signal for the frontier.
    body = page.inner_text("body")
    assert "Quality axis: CLIP" in body and "Quality axis: Arena Elo" not in body
    assert page.locator("#plot-quality_vs_cost svg").count() == 1


def test_both_sides_are_shown_at_the_same_size_whatever_their_pixels(
    browser: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import shutil

    run = make_run(tmp_path_factory.mktemp("browser_arena_sizes"), "rated")
    folder = tmp_path_factory.mktemp("sizes") / "rated"
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns(VOTES_FILE))
    # One model answers at 768 px, the other at 256 px: the size must not tell them apart.
    records = pd.read_parquet(folder / "records.parquet")
    ok = records[records["status"] == "ok"]
    for target, rel in zip(ok["target"], ok["image_path"], strict=True):
        side = 768 if target == "local:shapes-quality" else 256
        with Image.open(folder / rel) as im:
            im.convert("RGB").resize((side, side)).save(folder / rel, format="PNG")
    proc, url = _serve(folder)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        page.goto(url)
        for i in range(4):
            page.wait_for_function(
                "['left', 'right'].every(id => document.getElementById(id).complete "
                "&& document.getElementById(id).naturalWidth > 0)"
            )
            natural = page.evaluate("['left', 'right'].map(id => document.getElementById(id).naturalWidth)")
            assert sorted(natural) == [256, 768]  # every pair here is one 768 px and one 256 px image
            boxes = page.evaluate(
                "['left', 'right'].map(id => { const r = document.getElementById(id).getBoundingClientRect();"
                " return [r.width, r.height]; })"
            )
            assert boxes[0] == boxes[1] and boxes[0][0] > 200, boxes
            page.keyboard.press("t")
            page.wait_for_function(f"document.body.dataset.votes === '{i + 1}'")
        page.screenshot(path=str(tmp_path_factory.mktemp("shots") / "arena_sizes.png"))
    finally:
        _kill(proc)


def test_on_a_study_the_page_says_when_the_recommendation_is_settled(
    browser: object, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A study with a verdict (shapes-nocolor at $2/1k against shapes-quality at $40/1k): a rater who
    prefers colour votes by keyboard until the page says it is settled; the terminal says it too.
    No model is named before that."""
    import shutil

    from _report_runs import make_priced_study

    run = make_priced_study(tmp_path_factory.getbasetemp())
    folder = tmp_path_factory.mktemp("settle") / "study"
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns(VOTES_FILE))
    proc, url = _serve(folder)
    try:
        page = browser.new_page()  # type: ignore[attr-defined]
        page.goto(url)
        page.wait_for_function("document.body.dataset.settled === 'no'")
        assert "settling the recommendation: 1 comparison(s) still open" in page.inner_text("#settle")
        saturation = (
            "['left', 'right'].map(id => { const im = document.getElementById(id); const c = "
            "document.createElement('canvas'); c.width = im.naturalWidth; c.height = im.naturalHeight; "
            "const g = c.getContext('2d'); g.drawImage(im, 0, 0); const d = g.getImageData(0, 0, c.width, "
            "c.height).data; let s = 0; for (let i = 0; i < d.length; i += 4) { s += Math.max(d[i], d[i+1], "
            "d[i+2]) - Math.min(d[i], d[i+1], d[i+2]); } return s; })"
        )
        votes = 0
        while page.evaluate("document.body.dataset.settled") != "yes":
            assert "local:" not in page.inner_text("body")  # blind until settled
            page.wait_for_function(
                "['left', 'right'].every(id => document.getElementById(id).complete "
                "&& document.getElementById(id).naturalWidth > 0)"
            )
            left, right = page.evaluate(saturation)
            page.keyboard.press("ArrowLeft" if left > right else "ArrowRight")  # colour wins
            votes += 1
            page.wait_for_function(f"document.body.dataset.votes === '{votes}'")
            assert votes < 40
        message = page.inner_text("#settle")
        assert message == (
            "settled: local:shapes-quality steps=4 cfg=2 128x128 is recommended; every cheaper group is worse "
            "beyond 25 Elo; you can stop"
        )
        assert page.evaluate("getComputedStyle(document.getElementById('settle')).fontWeight") == "600"
    finally:
        _kill(proc)
    assert proc.stdout is not None
    terminal = proc.stdout.read()
    assert f"bench rate: {message}" in terminal and "pairs: settle the recommendation" in terminal
    assert len(read_votes(folder / VOTES_FILE)) == votes

"""`bench rate` in a real browser (Playwright driving Debian's chromium): 20 keyboard votes survive
a killed server, and the report then shows Elo ratings with intervals.

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
from _report_runs import BENCH, bench, make_run

from bench.arena.votes import VOTES_FILE, read_votes

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="chromium not installed (apt-get install -y chromium; CI installs it via `make browser`)",
)
sync_api = pytest.importorskip("playwright.sync_api")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip


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


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()


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
        assert "left was local:" in page.inner_text("#reveal")  # names shown only after the vote
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
    # The frontier uses the votes as its quality axis (report.quality_metric=auto puts human votes first).
    assert "Quality axis: Arena Elo" in page.inner_text("body")
    assert page.locator("#plot-quality_vs_cost svg").count() == 1

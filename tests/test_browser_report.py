"""report.html and `bench view` in a real browser: Playwright driving Debian's /usr/bin/chromium.

- The demo report, copied alone into another folder, shows every image (embedded thumbnails
  decode), fits 1400 px without a horizontal page scroll (the table scrolls in its own box).
- A 36-group sweep's report: the same, and its plots are inline.
- `bench view` over two runs: filters, side-by-side comparison, lightbox, quality drops.

Screenshots are saved under pytest's tmp dir (printed; never committed) for a person to look at.
Skips where /usr/bin/chromium or playwright is absent; CI installs both (`make browser`, dev extra).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _browser import chromium, needs_chromium
from _report_runs import NOCOLOR_TARGETS, bench, make_run, oracle_score

pytest.importorskip("playwright.sync_api", reason="playwright not installed (dev extra)")
pytestmark = needs_chromium
WIDTH = 1400


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots: {path}")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("browser_runs")


def _page(browser: Any) -> Any:
    page = browser.new_page(viewport={"width": WIDTH, "height": 1000})
    page.set_default_timeout(60_000)
    return page


def _decode_all_images(page: Any) -> tuple[int, int]:
    """(images decoded, images) after forcing lazy thumbnails to load."""
    counts: list[int] = page.evaluate(
        """async () => {
            const imgs = Array.from(document.querySelectorAll('table.grid img'));
            await Promise.all(imgs.map(i => { i.loading = 'eager'; return i.decode().catch(() => null); }));
            return [imgs.filter(i => i.naturalWidth > 0).length, imgs.length];
        }"""
    )
    return counts[0], counts[1]


def _no_page_overflow(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {WIDTH}px"


def _check_report_copy(page: Any, report: Path, elsewhere: Path, expected_rows: int) -> tuple[int, int]:
    """Open report.html copied alone into another folder; everything it shows must come with it."""
    elsewhere.mkdir(parents=True, exist_ok=True)
    alone = shutil.copy(report, elsewhere / "report.html")
    page.goto(Path(alone).resolve().as_uri())
    page.wait_for_load_state("load")
    assert page.evaluate("document.querySelectorAll('table.summary tbody tr').length") == expected_rows
    assert page.evaluate("document.querySelectorAll('figure.plot svg').length") >= 7
    _no_page_overflow(page)
    # The table is as wide as it needs: it scrolls inside its own box, which fits the page.
    box = page.evaluate(
        "(() => { const w = document.querySelector('.tablewrap'); return [w.clientWidth, w.scrollWidth]; })()"
    )
    assert box[0] <= WIDTH
    return _decode_all_images(page)


def test_demo_report_is_one_file(browser: Any, runs: Path, shots: Path, tmp_path: Path) -> None:
    run = make_run(runs, "base")
    assert bench("report", str(run), "report.n_boot=200").returncode == 0
    page = _page(browser)
    ok, total = _check_report_copy(page, run / "report.html", tmp_path / "elsewhere", expected_rows=2)
    assert total == 48 and ok == total  # every thumbnail decoded with no images/ folder beside it
    page.screenshot(path=str(shots / "demo_report.png"), full_page=True)
    page.locator("#plot-quality_vs_cost").screenshot(path=str(shots / "demo_quality_vs_cost.png"))
    page.close()


def test_36_group_sweep_report_reads(browser: Any, runs: Path, shots: Path, tmp_path: Path) -> None:
    name = "sweep36"
    proc = bench(
        "run", "targets=[local:shapes-fast,local:shapes-quality,local:shapes-nocolor]", "sweep=default",
        "sweep.steps=[2,4,8,16]", "sweep.guidance=[1.0,4.0,7.0]", "sweep.seeds=[0]", 'sweep.sizes=["64x64"]',
        "prompts.n=2", "metrics=off", "report.print_summary=false", "report.write=false",
        f"results_dir={runs}", f"run_name={name}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    oracle_score(runs / name)
    assert bench("report", str(runs / name), "report.n_boot=100").returncode == 0
    page = _page(browser)
    ok, total = _check_report_copy(page, runs / name / "report.html", tmp_path / "copy", expected_rows=36)
    assert total == 72 and ok == total
    page.screenshot(path=str(shots / "sweep36_report.png"), full_page=True)
    for plot in ("quality_vs_cost", "quality_vs_latency", "clip_vs_params", "by_category"):
        page.locator(f"#plot-{plot}").screenshot(path=str(shots / f"sweep36_{plot}.png"))
    page.close()


def test_bench_view_filters_compares_zooms_and_ranks_drops(browser: Any, runs: Path, shots: Path) -> None:
    from bench.emulators.serve import running
    from bench.view.app import create_app

    base, nocolor = make_run(runs, "base"), make_run(runs, "nocolor", NOCOLOR_TARGETS)
    with running(create_app([base, nocolor])) as url:
        page = _page(browser)
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready='1']")
        assert int(page.evaluate("document.body.dataset.matching")) == 96  # 2 runs x 48 requests
        page.select_option("#f-run", "0")
        page.select_option("#f-target", "local:shapes-fast")
        assert int(page.evaluate("document.body.dataset.matching")) == 24
        first_prompt = page.evaluate("document.querySelector('.card .p').title")
        page.fill("#f-text", first_prompt[:12])
        narrowed = int(page.evaluate("document.body.dataset.matching"))
        assert 1 <= narrowed < 24
        page.fill("#f-text", "")
        page.wait_for_function("document.querySelectorAll('.card img').length > 0")
        page.screenshot(path=str(shots / "view_browse.png"))
        # Lightbox: the original opens over the page; Escape closes it.
        page.locator(".card img").first.click()
        page.wait_for_function("document.getElementById('lb-img').naturalWidth > 0")
        assert page.evaluate("document.body.dataset.lightbox") == "open"
        page.screenshot(path=str(shots / "view_lightbox.png"))
        page.keyboard.press("Escape")
        assert page.evaluate("document.body.dataset.lightbox") == "closed"
        # Two targets side by side, one row per prompt.
        page.select_option("#f-target", "")
        page.click("#tab-compare")
        page.select_option("#c-a", "local:shapes-fast")
        page.select_option("#c-b", "local:shapes-quality")
        prompts = int(page.evaluate("document.body.dataset.comparePrompts"))
        assert prompts == 12
        row = page.locator("#cmp tr[data-prompt]").first
        assert row.locator("td").nth(1).locator("img").count() == 2  # 2 seeds of target A
        assert row.locator("td").nth(2).locator("img").count() == 2
        page.screenshot(path=str(shots / "view_compare.png"))
        # Two runs: the prompts whose quality fell most (the planted grey images) come first.
        page.click("#tab-drops")
        page.wait_for_selector("body[data-drops]")
        assert int(page.evaluate("document.body.dataset.drops")) == 24
        first = page.locator("#droptable tr").nth(1)
        assert "local:shapes-fast" in first.inner_text() and first.locator("td.neg").count() == 1
        page.wait_for_function(
            "Array.from(document.querySelectorAll('#droptable img')).slice(0, 4).every(i => i.naturalWidth > 0)"
        )
        page.screenshot(path=str(shots / "view_drops.png"))
        page.close()


def test_view_serves_nothing_outside_the_run_folder(runs: Path) -> None:
    import httpx

    from bench.emulators.serve import running
    from bench.view.app import create_app

    base = make_run(runs, "base")
    (runs / "secret.txt").write_text("not yours")
    with running(create_app([base])) as url:
        assert httpx.get(f"{url}/img/0/..%2Fsecret.txt").status_code == 404
        assert httpx.get(f"{url}/img/0/../secret.txt").status_code == 404
        assert httpx.get(f"{url}/img/1/records.parquet").status_code == 404
        assert httpx.get(f"{url}/api/records").status_code == 200

"""report.html in a real browser: Debian's chromium, headless, loading the file from disk.

Checks the DOM after load: the summary table has rows, the plots rendered as SVG,
and at least one grid image decoded (naturalWidth > 0, recorded on <body> by the
page's own load handler). Skips where /usr/bin/chromium is absent; CI installs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from _report_runs import bench, make_run

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium not installed (apt-get install -y chromium; CI installs it via `make browser`)",
)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
        "--allow-file-access-from-files", "--virtual-time-budget=10000",
    ]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


def test_report_renders_in_chromium(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    run = make_run(tmp_path_factory.mktemp("browser_runs"), "base")
    assert bench("report", str(run), "report.n_boot=200").returncode == 0
    url = (run / "report.html").resolve().as_uri()
    proc = _chromium(tmp_path, "--dump-dom", url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body is not None, proc.stdout[:500]
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1)))
    assert int(attrs["table-rows"]) == 2
    assert int(attrs["plots"]) >= 6
    assert int(attrs["images-total"]) == 48
    assert int(attrs["images-loaded"]) >= 1
    assert int(attrs["images-loaded"]) == int(attrs["images-total"])
    shot = tmp_path / "report.png"
    snap = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", url)
    assert snap.returncode == 0 and shot.stat().st_size > 10_000

"""Chromium for the browser tests: Playwright driving Debian's /usr/bin/chromium (Playwright's own
browser download fails offline). Where chromium or the playwright package is absent the tests skip
with the reason; CI installs both (`make browser`, dev extra).

A module launches one browser for all its tests (a module-scoped fixture over `chromium()`), not
one per test. Never for the whole session: while Playwright's sync API is open, its event loop
counts as running in this thread, and other tests' asyncio.run() would refuse to start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]  # fmt: skip
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="chromium not installed (apt-get install -y chromium; CI installs it via `make browser`)",
)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium, closed on exit; skips the test where playwright is not installed."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (dev extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()

"""Progress for long runs: done/total, rate, ETA, cost so far, errors so far.

A live bar on a terminal (rich); periodic log lines otherwise (CI logs, pipes),
so a long run is never silent and never floods a log.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from types import TracebackType

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

log = logging.getLogger("bench.progress")
LOG_EVERY_S = 10.0


def cost_text(total_usd: float, priced: int, unpriced: int) -> str:
    """What the requests cost, never "$0.0000" for requests whose cost is unknown."""
    if unpriced and not priced:
        return f"unknown ({unpriced} unpriced)"
    return f"${total_usd:.4f}" + (f" (+{unpriced} unpriced)" if unpriced else "")


class RunProgress:
    def __init__(self, total: int, mode: str = "auto", label: str = "generating") -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode = mode
        self.total = total
        self.done = 0
        self.errors = 0
        self.refused = 0
        self.cost_usd = 0.0
        self.cost_priced = 0  # ok requests with a known cost
        self.cost_unknown = 0  # ok requests nobody priced (no table entry, not reported)
        self._started = time.monotonic()
        self._last_log = self._started
        self._label = label
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self.mode == "bar":
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[cost]}"),
                TextColumn("{task.fields[errors]}"),
                transient=False,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self._label, total=self.total, **self._fields())  # type: ignore[arg-type]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        elif self.mode == "log":
            log.info(self.line())

    def _fields(self) -> dict[str, str]:
        elapsed = max(time.monotonic() - self._started, 1e-9)
        return {
            "rate": f"{self.done / elapsed:.1f} img/s",
            "cost": cost_text(self.cost_usd, self.cost_priced, self.cost_unknown),
            "errors": f"errors {self.errors} refused {self.refused}",
        }

    def line(self) -> str:
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        remaining = (self.total - self.done) / rate if rate > 0 else math.inf
        eta = f"{remaining:.0f}s" if math.isfinite(remaining) else "?"
        f = self._fields()
        return f"{self._label}: {self.done}/{self.total} {f['rate']} ETA {eta} cost {f['cost']} {f['errors']}"

    def set_total(self, total: int) -> None:
        """The exact count, once known (the first estimate may include keys from another sweep)."""
        self.total = total
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, total=total)

    def advance(self, status: str, cost_usd: float) -> None:
        self.done += 1
        if status == "error":
            self.errors += 1
        elif status == "refused":
            self.refused += 1
        if status == "ok":
            if math.isnan(cost_usd):
                self.cost_unknown += 1
            else:
                self.cost_priced += 1
                self.cost_usd += cost_usd
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done, **self._fields())  # type: ignore[arg-type]
        elif self.mode == "log":
            now = time.monotonic()
            if now - self._last_log >= LOG_EVERY_S:
                self._last_log = now
                log.info(self.line())

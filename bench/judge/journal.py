"""The judge's spend journal: one line per billed judge call, in the run folder.

The generation journal (journal.jsonl) holds image requests; judge calls are billed
too, so each one that got an answer (readable or not, or a refusal) appends a line
here with what it cost. bench.spend reads this file beside the generation journal,
so a resume, `bench estimate` and the next scoring pass all count judge money against
max_cost_usd. Kept in its own file so neither journal's format constrains the other.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JUDGE_JOURNAL = "judge_spend.jsonl"
log = logging.getLogger("bench.judge")


@dataclass
class JudgeSpend:
    spent_usd: float = 0.0  # the sum of the known costs
    calls: int = 0  # billed calls on record
    unknown_cost_calls: int = 0  # billed calls whose cost nobody knows (not in spent_usd)


class JudgeJournal:
    """Appends one JSON line per billed call, flushed and fsynced before the call's answer is used."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / JUDGE_JOURNAL

    def append(self, entry: dict[str, Any]) -> None:
        cost = entry.get("cost_usd")
        line = {
            "time": time.time(),
            **entry,
            "cost_usd": None if not isinstance(cost, float | int) or math.isnan(cost) else float(cost),
        }
        data = (json.dumps(line, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def judge_spend(run_dir: Path) -> JudgeSpend:
    """What the judge has spent in this run folder, over every scoring pass."""
    out = JudgeSpend()
    path = run_dir / JUDGE_JOURNAL
    if not path.is_file():
        return out
    with open(path, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                entry = json.loads(raw)
            except ValueError:
                log.warning("%s line %d: unreadable (cut off by a crash?); not counted", path, number)
                continue
            if not isinstance(entry, dict):
                continue
            out.calls += 1
            cost = entry.get("cost_usd")
            if isinstance(cost, int | float) and not isinstance(cost, bool) and math.isfinite(cost):
                out.spent_usd += float(cost)
            else:
                out.unknown_cost_calls += 1
    return out

"""What a run folder has already spent, read from its journal, so a resume does not get the cap again.

Every journal line is a request that was sent and ended (ok, refused, or an error that was
billed such as a failed download); their costs add up to the folder's spend, whichever
invocation paid them. Reported costs also seed the per-setting cost estimates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.catalog.spec import ModelSpec
from bench.limits import Budget, cost_key
from bench.store import RunStore, row_billed


@dataclass(frozen=True)
class ReportedCost:
    """One request's reported cost as the journal holds it (keyed later, against the model's spec)."""

    target: str
    provider: str
    model: str
    payload: dict[str, Any]
    width: float
    height: float
    cost_usd: float
    megapixels: float | None


@dataclass
class FolderSpend:
    spent_usd: float = 0.0
    requests: int = 0  # journal lines: requests that were sent and ended
    unknown_cost_requests: int = 0  # ok requests whose cost nobody knows (not in spent_usd)
    observations: list[ReportedCost] = field(default_factory=list)
    billed_targets: set[str] = field(default_factory=set)  # targets with a billed request on record
    # Targets billed at least once at a cost nobody knew (no report, no price): already probed.
    unknown_cost_targets: set[str] = field(default_factory=set)
    judge_usd: float = 0.0  # of spent_usd: what the VLM judge's calls cost (bench/judge/journal.py)
    judge_calls: int = 0

    def add_judge(self, run_dir: Path) -> None:
        """Count the judge's billed calls in this folder (its own journal) into the folder's spend."""
        from bench.judge.journal import judge_spend

        judge = judge_spend(run_dir)
        self.spent_usd += judge.spent_usd
        self.judge_usd += judge.spent_usd
        self.judge_calls += judge.calls
        self.unknown_cost_requests += judge.unknown_cost_calls

    def add(self, rows: list[dict[str, Any]]) -> None:
        """Count one journal line (a journal visitor: see RunStore.scan)."""
        first = rows[0]
        if first["status"] == "skipped" or first.get("cached") is True:
            return  # never sent, or replayed from the response cache at no cost to this folder
        self.requests += 1
        billed = row_billed(first)
        if billed:
            self.billed_targets.add(str(first.get("target")))
        costs = [c for c in (_number(r.get("cost_usd")) for r in rows) if not math.isnan(c)]
        if not costs:
            if billed:
                self.unknown_cost_requests += 1
                self.unknown_cost_targets.add(str(first.get("target")))
            return
        total = sum(costs)
        self.spent_usd += total
        if first.get("cost_source") != "reported" or first["status"] != "ok":
            return
        try:
            payload = json.loads(first.get("payload") or "{}")
        except (TypeError, ValueError):
            return
        if not isinstance(payload, dict):
            return
        pixels = [_number(r.get("image_width")) * _number(r.get("image_height")) for r in rows]
        known = [p for p in pixels if not math.isnan(p)]
        self.observations.append(
            ReportedCost(
                target=str(first.get("target")),
                provider=str(first.get("provider")),
                model=str(first.get("model")),
                payload=payload,
                width=_number(first.get("width")),
                height=_number(first.get("height")),
                cost_usd=total,
                megapixels=sum(known) / len(known) / 1e6 if known else None,
            )
        )

    def seed(self, budget: Budget, spec_for: Callable[[str, str], ModelSpec | None]) -> None:
        """Start the budget at this spend, with these reported costs as the latest known."""
        budget.spent_usd += self.spent_usd
        budget.settled |= self.billed_targets
        # Refused only while nothing prices them (Budget.refuses_unpriced): a price entry added since wins.
        budget.unpriceable |= self.unknown_cost_targets
        for seen in self.observations:
            spec = spec_for(seen.provider, seen.model)
            if spec is not None:  # a model this run does not know cannot be keyed; its spend still counts
                key = cost_key(seen.target, spec, seen.payload, seen.width, seen.height)
                budget.estimator.observe(key, seen.cost_usd, seen.megapixels)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan


def folder_spend(store: RunStore) -> FolderSpend:
    out = FolderSpend()
    for rows in store.iter_journal():
        out.add(rows)
    out.add_judge(store.run_dir)
    return out

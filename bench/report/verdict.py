"""The decision for a run or sweep folder: its summary, records and votes handed to bench.decide.

`bench report`, `bench run` and `bench recommend` all call `folder_verdict`, so one folder with one
config gets one verdict wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from bench.arena.report import arena_replicates
from bench.decide.evidence import GROUP_KEYS, Replicates, metric_replicates
from bench.decide.settings import parse_settings
from bench.decide.verdict import Verdict, decide
from bench.report.runs import RunSet

if TYPE_CHECKING:
    from bench.arena.ratings import ArenaRatings


def folder_verdict(
    runs: RunSet,
    summary: pd.DataFrame,
    report_cfg: Mapping[str, Any] | None,
    *,
    arena: ArenaRatings | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Verdict:
    """The verdict under `report_cfg` (report.quality_metric + report.decide), `overrides` (CLI flags) on top."""
    settings = parse_settings(report_cfg)
    if overrides:
        settings = settings.with_overrides(**{k: v for k, v in overrides.items() if v is not None})
    replicates: dict[str, Replicates] = {}
    rep = arena_replicates(summary, arena, [k for k in GROUP_KEYS if k in summary.columns])
    if rep is not None:
        replicates["arena_elo"] = rep
    for name in ("fid", "kid"):  # over images, stored by the scorer beside FID/KID in metrics.parquet
        got = metric_replicates(summary, runs.metrics, name)
        if got is not None:
            replicates[name] = got
    return decide(summary, runs.records, settings, replicates=replicates)

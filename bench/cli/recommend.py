"""`bench recommend PATH`: which group to choose, with how sure we are (bench.decide).

Exit codes: 0 a recommendation was made; 1 none could be made (constraints exclude every group,
or the data cannot yet separate the contenders); 2 bad input (not a run folder, a bad flag value,
or no quality signal that can carry a choice), found before anything is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.cli.exit_codes import EXIT_USAGE
from bench.decide.settings import CONSTRAINT_KEYS, parse_constraints
from bench.decide.signals import CHOICES
from bench.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench recommend",
        description="the cheapest group shown within a margin of the best (and of every other contender), under constraints; "
        "writes verdict.json; exit 0 recommended, 1 none (constraints / undecided), 2 bad input",
    )
    p.add_argument("path", type=Path, help="a run folder, or a sweep folder (its runs are merged)")
    p.add_argument(
        "--max-cost-per-1k", type=float, help="USD per 1,000 images (report.decide.max_cost_per_1k)"
    )
    p.add_argument("--max-p90-latency", type=float, help="seconds (report.decide.max_p90_latency)")
    p.add_argument("--max-refusal-rate", type=float, help="share 0-1 (report.decide.max_refusal_rate)")
    p.add_argument("--min-ok-rate", type=float, help="share 0-1 (report.decide.min_ok_rate)")
    p.add_argument(
        "--quality-metric", choices=CHOICES, help="the signal (report.quality_metric; auto: best usable)"
    )
    p.add_argument(
        "--margin", type=float, help="the non-inferiority margin in the signal's units (default per signal)"
    )
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. report.decide.margins.clip=0.5")
    return p


def recommend(path: Path, report_cfg: Mapping[str, Any], flags: Mapping[str, Any]) -> int:
    from bench.decide.io import write_verdict
    from bench.decide.render import verdict_block
    from bench.report.build import stats_settings
    from bench.report.runs import NotARunFolder, RunSet
    from bench.report.summary import summarize_runs
    from bench.report.verdict import folder_verdict
    from bench.store import BrokenRecords

    cfg = dict(report_cfg)
    if flags.get("quality_metric"):
        cfg["quality_metric"] = flags["quality_metric"]
    decide_cfg = dict(cfg.get("decide") or {})
    for key in CONSTRAINT_KEYS:
        if flags.get(key) is not None:
            decide_cfg[key] = flags[key]
    cfg["decide"] = decide_cfg
    # Flags are checked with the config keys' rules, naming the flag, before anything is read.
    parse_constraints({k: flags.get(k) for k in CONSTRAINT_KEYS}, as_flags=True)
    if flags.get("margin") is not None and not flags["margin"] > 0:
        raise ConfigError("--margin", flags["margin"], "give a margin > 0 in the signal's units")
    try:
        runs = RunSet.load(path)
    except (NotARunFolder, BrokenRecords) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from bench.arena.report import arena_ratings

    st = stats_settings(cfg)
    arena = arena_ratings(runs, n_boot=st.n_boot, confidence=st.confidence, seed=st.seed)
    summary = summarize_runs(runs, st, arena=arena)
    verdict = folder_verdict(runs, summary, cfg, arena=arena)
    if flags.get("margin") is not None and verdict.signal:
        margins = {**dict(decide_cfg.get("margins") or {}), verdict.signal: flags["margin"]}
        cfg["decide"] = {**decide_cfg, "margins": margins}
        verdict = folder_verdict(runs, summary, cfg, arena=arena)
    out = write_verdict(runs.root, verdict)
    print(verdict_block(verdict, str(out)))
    return verdict.exit_code

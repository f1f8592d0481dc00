"""`bench run` with study.mode=adaptive: prompts in rounds, contenders that can no longer win dropped.

Each round runs the ordinary runner on a sub-plan (the first N prompts of a fixed random order, for
the contenders still in the race), scores the new images with the configured per-image signal,
and looks (bench.decide.sequential.look). Every look is appended to adaptive.jsonl; a resumed run
replays those lines, so it restarts at the same round with the same drops, and the runner's journal
skips every request already answered: nothing is paid twice. max_cost_usd covers every round and
the judge (the runner and the judge both count the folder's whole spend, the judge's calls included).
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache import ResponseCache
from bench.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE
from bench.config import BenchConfig
from bench.decide.sequential import Drop, GroupEvidence, Look, SequentialRules, look
from bench.decide.trace import (
    adaptive_trace,
    append_journal,
    merge_into_verdict,
    plain,
    read_journal,
    trace_block,
)
from bench.errors import ConfigError
from bench.providers.base import Provider
from bench.runner import Runner, RunSummary
from bench.store import RunStore
from bench.study import SCORE_RANGES, StudySettings
from bench.sweep import SweepPlan


@dataclass(frozen=True)
class Contender:
    """A group of the study: a target with one setting (what bench.report.summary calls a group)."""

    target_index: int
    setting_index: int
    label: str


def contenders_of(plan: SweepPlan) -> list[Contender]:
    from bench.group_names import group_label

    out = []
    for ti, (target, _, settings) in enumerate(plan.targets):
        for si, s in enumerate(settings):
            size = s.size.label if s.size else None
            key = {
                "target": target.id,
                "steps": s.request.steps,
                "guidance": s.request.guidance,
                "size": size,
            }
            out.append(Contender(ti, si, group_label(key)))
    return out


def sub_plan(
    plan: SweepPlan, order: list[int], prompts: int, alive: set[str], who: list[Contender]
) -> SweepPlan:
    """The first `prompts` prompts of the study's order, for the contenders still in the race."""
    keep = {(c.target_index, c.setting_index) for c in who if c.label in alive}
    targets = []
    for ti, (target, spec, settings) in enumerate(plan.targets):
        chosen = tuple(s for si, s in enumerate(settings) if (ti, si) in keep)
        if chosen:
            targets.append((target, spec, chosen))
    return SweepPlan(prompts=tuple(plan.prompts[i] for i in order[:prompts]), targets=tuple(targets),
                     repeats=plan.repeats)  # fmt: skip


def _drop_of(d: Mapping[str, Any]) -> Drop:
    values: dict[str, Any] = {k: (math.nan if v is None else v) for k, v in d.items()}
    return Drop(**values)


def evidence(
    run_dir: Path, config: BenchConfig, who: list[Contender], order_ids: list[str]
) -> tuple[list[GroupEvidence], str, float, dict[str, float], float]:
    """Per contender, its scores in the study's prompt order and its request outcomes; the signal's
    name, its margin, the money spent per contender on generation so far, and the judge's spend."""
    from bench.decide.evidence import group_of_records, prompt_table
    from bench.decide.settings import parse_settings
    from bench.decide.verdict import choose_signal
    from bench.report.runs import RunSet
    from bench.report.summary import requests_of, summarize

    runs = RunSet.load(run_dir)
    records = runs.records
    summary = summarize(records, metrics=runs.metrics)
    settings = parse_settings(config.report)
    sig, why = choose_signal(summary, settings.signal)
    if sig is None or sig.per_image_column is None:
        raise AdaptiveError(f"an adaptive study needs a per-image quality signal: {why or sig}")
    margin, _ = settings.margin(sig.name)
    labels = [c.label for c in who]
    table = prompt_table(records, summary, sig.per_image_column, labels).reindex(order_ids)
    group = group_of_records(records, summary)
    reqs = requests_of(records.assign(_group=group))
    out, spent = [], {}
    for c in who:
        rows = records[group == c.label]
        r = reqs[reqs["_group"] == c.label]
        srow = summary[summary["group"] == c.label]
        ok_rows = rows[rows["status"] == "ok"]
        costs = rows["cost_usd"].astype(float) if "cost_usd" in rows else np.zeros(0)
        spent[c.label] = float(np.nansum(costs)) if len(rows) else 0.0
        scores = table[c.label].to_numpy(float) if c.label in table else np.full(len(order_ids), np.nan)
        out.append(GroupEvidence(
            c.label, np.asarray(scores, dtype=np.float64),
            cost_per_1k_usd=float(srow["cost_per_1k_usd"].iloc[0]) if len(srow) else math.nan,
            cheapest_image_usd=float(np.nanmin(ok_rows["cost_usd"])) if len(ok_rows) and ok_rows["cost_usd"].notna().any() else math.nan,
            latency_p90_s=float(srow["latency_p90_s"].iloc[0]) if len(srow) else math.nan,
            latencies_s=ok_rows["latency_s"].to_numpy(float),
            refused=np.asarray(r["status"] == "refused", dtype=np.float64),
            ok=np.asarray(r["status"] == "ok", dtype=np.float64),
        ))  # fmt: skip
    judge = records["judge_cost_usd"].astype(float) if "judge_cost_usd" in records else np.zeros(0)
    return out, sig.name, margin, spent, float(np.nansum(judge))


class AdaptiveError(Exception):
    """The study cannot go on (no per-image signal; a score outside study.score_range)."""


def _rules(config: BenchConfig, study: StudySettings, signal: str, margin: float) -> SequentialRules:
    from bench.decide.settings import parse_settings

    settings = parse_settings(config.report)
    low, high = study.score_range or SCORE_RANGES[signal]
    return SequentialRules(margin=margin, alpha=1.0 - settings.confidence, score_low=low, score_high=high,
                           constraints=settings.constraints, min_prompts=settings.min_prompts)  # fmt: skip


def live_line(state: Look, done: int, limit: int, spent: float, grid_usd: float, total: int) -> str:
    """One or two lines of the race's state for the terminal."""
    share = f"{spent / grid_usd:.0%} of the grid's ${grid_usd:.4g}" if grid_usd > 0 else "grid cost unknown"
    head = (f"adaptive round {state.round}: {done}/{limit} prompts, {len(state.alive)}/{total} contenders left, "
            f"${spent:.4g} spent ({share})")  # fmt: skip
    if state.settled:
        return head + f"\n  settled: {state.recommended}"
    dropped = ", ".join(f"{d.group} ({d.kind})" for d in state.drops)
    lead = f"  leading (cheapest in the race): {state.candidate or '-'}; best so far: {state.best or '-'}"
    return head + "\n" + lead + (f"; dropped now: {dropped}" if dropped else "")


@dataclass(frozen=True)
class RunSteps:
    """The steps of `bench run` a round reuses, handed in by bench.cli.run (which imports this module)."""

    generate: Callable[..., Any]
    score_and_report: Callable[..., Any]
    metrics_enabled: Callable[..., bool]


def run_adaptive(
    cfg: Mapping[str, Any],
    config: BenchConfig,
    providers: dict[str, Provider],
    plan: SweepPlan,
    run_dir: Path,
    study: StudySettings,
    steps: RunSteps,
) -> tuple[int, dict[str, Any] | None]:
    """The rounds; returns (exit code, the trace for verdict.json) or (code, None) when interrupted."""

    order = [int(i) for i in np.random.default_rng(study.seed).permutation(len(plan.prompts))]
    order_ids = [plan.prompts[i].id for i in order]
    limit = min(len(order), study.max_prompts or len(order))
    who = contenders_of(plan)
    header = {
        "kind": "study",
        "study": study.as_dict(),
        "order": order_ids[:limit],
        "contenders": [c.label for c in who],
    }
    past = read_journal(run_dir)
    if past and past[0].get("kind") == "study" and past[0] != plain(header):
        print(f"bench: study.*: this run folder's adaptive study was started with {past[0]['study']}; use a new "
              f"run_name to change it", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE, None
    if not past:
        append_journal(run_dir, header)
    looks = [e for e in past if e.get("kind") == "look"]
    dropped: dict[str, Drop] = {d["group"]: _drop_of(d) for e in looks for d in e["drops"]}
    done = looks[-1]["prompts"] if looks else 0
    stopped = bool(looks) and bool(looks[-1].get("stop"))
    rnd = len(looks)
    judge_spent = float(looks[-1].get("judge_usd") or 0.0) if looks else 0.0
    per_image = _planned_images_per_prompt(plan, who)
    state: Look | None = None
    signal = ""
    summary: RunSummary | None = None
    while not stopped:
        step = study.first_round if rnd == 0 else study.round_prompts
        target = min(limit, done + step)
        alive = {c.label for c in who} - set(dropped)
        # The runner counts everything this folder has spent, the judge's calls included, against the cap.
        cap = config.max_cost_usd
        runner = Runner(run_id=run_dir.name, providers=providers, store=RunStore(run_dir), settings=config.runner,
                        prices=config.prices, max_cost_usd=cap,
                        cache=ResponseCache(config.cache) if config.cache.mode != "off" else None)  # fmt: skip
        summary = asyncio.run(steps.generate(runner, sub_plan(plan, order, target, alive, who), providers))
        RunStore(run_dir).write_records({"run_id": run_dir.name})
        print(f"bench: round {rnd + 1}: {summary.line()}", file=sys.stderr)
        if summary.interrupted:
            print(f"bench: re-run the same command with run_name={run_dir.name} to resume at round {rnd + 1}",
                  file=sys.stderr)  # fmt: skip
            return EXIT_INTERRUPTED, None
        _score(run_dir, config, cap, steps)
        try:
            groups, signal, margin, spent, judge_spent = evidence(run_dir, config, who, order_ids)
            rules = _rules(config, study, signal, margin)
            _check_range(groups, rules)
        except (AdaptiveError, ConfigError) as exc:
            print(f"bench: adaptive study stopped: {exc}", file=sys.stderr)
            return EXIT_FAILED, None
        rnd += 1
        done = target
        state = look(groups, dropped, rules, rnd)
        dropped.update({d.group: d for d in state.drops})
        # The runner stops sending when max_cost_usd would be passed ("max_cost_usd=... reached").
        budget_hit = "max_cost_usd" in summary.stop_reason or (
            config.max_cost_usd is not None and sum(spent.values()) + judge_spent >= config.max_cost_usd
        )
        why_stop = ("settled" if state.settled else "max_prompts" if done >= limit
                    else "budget" if budget_hit else "")  # fmt: skip
        grid_usd = _grid_cost(groups, per_image, len(order))
        append_journal(run_dir, {
            "kind": "look", "round": rnd, "prompts": done, "signal": signal, "margin": margin,
            "drops": [asdict(d) for d in state.drops], "alive": state.alive, "best": state.best,
            "candidate": state.candidate, "settled": state.settled, "recommended": state.if_stopped,
            "open": state.open, "vs_candidate": [asdict(p) for p in state.vs_candidate],
            "spent_usd": spent, "judge_usd": judge_spent, "grid_usd": grid_usd, "stop": why_stop,
        })  # fmt: skip
        print(
            "bench: " + live_line(state, done, limit, sum(spent.values()), grid_usd, len(who)),
            file=sys.stderr,
        )
        stopped = bool(why_stop)
    from bench.run_state import record_outputs

    outputs, table = steps.score_and_report(run_dir, config)
    trace = adaptive_trace(run_dir)
    if trace is not None:
        merge_into_verdict(run_dir, trace)
        print(trace_block(trace))
    record_outputs(run_dir, cfg, outputs, table)
    return 0, trace


def _score(run_dir: Path, config: BenchConfig, cap: float | None, steps: RunSteps) -> None:
    """Score the new images (the judge's answers are cached: an image is never paid twice)."""
    from bench.cli.emulated_judge import judge_endpoint
    from bench.metrics.score import score_run

    if not steps.metrics_enabled(config.metrics):
        return
    with judge_endpoint(config.metrics) as metrics_cfg:
        score_run(run_dir, metrics_cfg, providers=config.providers, max_cost_usd=cap)


def _check_range(groups: list[GroupEvidence], rules: SequentialRules) -> None:
    for g in groups:
        s = g.scores[np.isfinite(g.scores)]
        if s.size and (s.min() < rules.score_low or s.max() > rules.score_high):
            raise AdaptiveError(
                f"study.score_range=[{rules.score_low:g}, {rules.score_high:g}]: {g.name} has a score of "
                f"{s.min() if s.min() < rules.score_low else s.max():.4g} outside it; set study.score_range to "
                "bounds no score can pass"
            )


def _planned_images_per_prompt(plan: SweepPlan, who: list[Contender]) -> dict[str, int]:
    out = {}
    for c in who:
        _, _, settings = plan.targets[c.target_index]
        s = settings[c.setting_index]
        out[c.label] = (s.request.num_images or 1) * plan.repeats
    return out


def _grid_cost(groups: list[GroupEvidence], per_image: Mapping[str, int], prompts: int) -> float:
    """What the full grid would have cost: every prompt for every contender at its cost per image."""
    total = 0.0
    for g in groups:
        total += g.cost_per_1k_usd / 1000.0 * per_image.get(g.name, 1) * prompts
    return total

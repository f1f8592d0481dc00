"""`bench run`: validate everything, then generate, store, score and summarise one run."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from bench.cache import ResponseCache
from bench.catalog.sources import (
    Catalog,
    CatalogError,
    Resolved,
    live_price_entries,
    parse_catalog_settings,
    provenance,
    unpriced_units,
)
from bench.cli.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from bench.config import BenchConfig, check_writable, parse_config, share_limits
from bench.errors import ConfigError
from bench.http_logging import configure_http_logging
from bench.prices import price_entry_hint
from bench.prompts import load_prompts
from bench.providers.base import Provider
from bench.providers.registry import adapter_class, create_provider
from bench.run_state import record_outputs, stored_summary_table
from bench.runlock import RunFolderBusy, run_folder_lock
from bench.runner import Runner, RunSummary
from bench.store import RunStore
from bench.sweep import SweepPlan, plan_sweep

log = logging.getLogger("bench")
_warned_units: set[tuple[str, str]] = set()  # (target, unit): `bench run` plans twice, warns once


def build_providers(config: BenchConfig, *, require_keys: bool) -> dict[str, Provider]:
    """Instantiate the providers the targets use; with require_keys, each must have its key set."""
    providers: dict[str, Provider] = {}
    for target in config.targets:
        if target.provider in providers:
            continue
        provider_cfg = config.providers[target.provider]
        # Adapters that price by usage (gpt-image-1 tokens) estimate from the same table.
        settings = replace(
            provider_cfg.settings,
            options={**provider_cfg.settings.options, "price_table": config.prices},
            http_transport=config.runner.http_transport,
        )
        # Parallel jobs of a multirun share a hosted provider's limits (README "Beyond one machine").
        settings = share_limits(
            settings,
            config.runner.parallel_jobs,
            shared_account=adapter_class(provider_cfg.adapter).account_limits,
        )
        provider = create_provider(provider_cfg.adapter, settings)
        if require_keys:
            provider.check_ready()
        providers[target.provider] = provider
    return providers


def prepare(
    cfg: Mapping[str, Any], *, require_keys: bool
) -> tuple[BenchConfig, dict[str, Provider], SweepPlan]:
    """Everything that can fail because of the user's input, done before any generation request.

    Model schemas come from the catalog (user files, cache, shipped snapshot, or fetched
    from the provider: bench.catalog.sources); prices the providers publish join the table.
    """
    from bench.cli.emulated_judge import without_inherited_judge

    config = parse_config(without_inherited_judge(cfg))
    if metrics_enabled(config.metrics):
        from bench.cli.emulated_judge import check_judge_endpoint
        from bench.metrics.config import check_explicit_devices, parse_metrics_config

        check_judge_endpoint(config.metrics)
        # e.g. a judge key variable that is unset, or metrics.clip.device=cuda on a machine without CUDA
        check_explicit_devices(parse_metrics_config(config.metrics, config.providers))
    quality_metric = str(config.report.get("quality_metric", "auto"))
    from bench.report.quality_axes import CHOICES

    if quality_metric not in CHOICES:
        raise ConfigError("report.quality_metric", quality_metric, f"use one of {', '.join(CHOICES)}")
    from bench.decide.settings import parse_settings

    parse_settings(config.report)  # the decision's constraints and margins (report.decide), checked up front
    from bench.study import parse_study

    parse_study(cfg.get("study"))  # study.mode and its settings, checked up front
    prompts = load_prompts(config.prompts)
    providers = build_providers(config, require_keys=require_keys)
    if require_keys and metrics_enabled(config.metrics):
        # A run (an estimate only prices): never judge a hosted provider's images with pixel counts.
        from bench.cli.emulated_judge import check_judged_targets

        check_judged_targets(
            config.metrics,
            [t.provider for t in config.targets],
            {name: p.settings.base_url for name, p in config.providers.items()},
        )
    resolved = resolve_targets(config, providers, cfg, live_prices=require_keys)
    live = live_price_entries(resolved)
    if live:
        config = replace(config, prices=config.prices.with_entries(live))
        for provider in providers.values():
            if "price_table" in provider.settings.options:
                options = {**provider.settings.options, "price_table": config.prices}
                provider.settings = replace(provider.settings, options=options)
    config = replace(config, unpriced_units=warn_unpriced_units(config, resolved))
    specs = {tid: item.spec for tid, item in resolved.items()}
    plan = plan_sweep(config.targets, providers, prompts, config.sweep, specs)
    return config, providers, plan


def warn_unpriced_units(config: BenchConfig, resolved: Mapping[str, Resolved]) -> dict[str, str]:
    """Targets priced by their provider in a unit bench cannot count ("compute seconds") that no
    price entry covers: one warning per target naming the unit; target id -> unit."""
    out: dict[str, str] = {}
    targets = {t.id: t for t in config.targets}
    for tid, price in unpriced_units(resolved).items():
        target = targets[tid]
        if config.prices.lookup(target.provider, target.model) is not None:
            continue  # the table prices it; the published unit does not matter
        out[tid] = price.unit
        if (tid, price.unit) not in _warned_units:
            _warned_units.add((tid, price.unit))
            cap = (
                "; with max_cost_usd set it is probed once, then refused"
                if config.max_cost_usd is not None
                else ""
            )
            print(
                f"bench: warning: {tid}: {target.provider} publishes its price per {price.unit!r} "
                f"({price.usd:g}, {price.source_url}), a unit bench cannot turn into a cost: its cost is "
                f"unknown (NaN) unless its answers report one{cap}; "
                f"{price_entry_hint(target.provider, target.model)}",
                file=sys.stderr,
            )
    return out


def resolve_targets(
    config: BenchConfig, providers: Mapping[str, Provider], cfg: Mapping[str, Any], *, live_prices: bool
) -> dict[str, Resolved]:
    """Each target's schema (and live price) from the catalog; a catalog failure is a config error (exit 2)."""
    catalog = Catalog(parse_catalog_settings(cfg), live_prices=live_prices)
    out: dict[str, Resolved] = {}
    for i, target in enumerate(config.targets):
        try:
            out[target.id] = catalog.resolve(providers[target.provider], target.model)
        except CatalogError as exc:
            raise ConfigError(f"targets[{i}]", target.id, str(exc)) from None
    return out


def catalog_used(plan: SweepPlan, config: BenchConfig) -> dict[str, Any]:
    """Per target, the schema source and hash a run used, and a live price with its fetch time
    (written into config.yaml)."""
    used: dict[str, Any] = {}
    for target, spec, _ in plan.targets:
        used[target.id] = provenance(spec)
        entry = config.prices.lookup(spec.provider, spec.model)
        if entry is not None and entry.source == "price_api":
            used[target.id]["live_price"] = {
                "usd": entry.usd,
                "unit": entry.unit,
                "rule": entry.describe_rule(),
                "source_url": entry.source_url,
                "fetched": entry.note,
            }
        unit = config.unpriced_units.get(target.id)
        if unit is not None:  # published in a unit bench cannot count: cost unknown
            used[target.id]["unpriced_unit"] = unit
    return used


async def _generate(runner: Runner, plan: SweepPlan, providers: Mapping[str, Provider]) -> RunSummary:
    try:
        return await runner.run(plan)
    finally:
        for provider in providers.values():
            await provider.aclose()


Prepared = tuple[BenchConfig, dict[str, Provider], SweepPlan]


def execute_run(cfg: Mapping[str, Any], run_dir: Path, prepared: Prepared | None = None) -> int:
    """Run one sweep into run_dir (`prepared`: what prepare(cfg) returned, if already done); returns the exit code."""
    from bench.cli.emulated_judge import INHERITED_JUDGE_NOTE, without_inherited_judge

    used = without_inherited_judge(cfg)
    if used is not cfg:
        print(INHERITED_JUDGE_NOTE, file=sys.stderr)
        cfg = used
    try:
        config, providers, plan = prepared or prepare(cfg, require_keys=True)
        check_writable(run_dir)
    except ConfigError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_http_logging(
        debug=config.http_debug, secrets=[s for p in providers.values() for s in p.secrets()]
    )
    # Handler errors (a log file on a full disk) must not print a traceback per log line.
    logging.raiseExceptions = False
    try:
        with run_folder_lock(run_dir, "run"):
            return _run_locked(cfg, config, providers, plan, run_dir)
    except RunFolderBusy as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run_locked(
    cfg: Mapping[str, Any],
    config: BenchConfig,
    providers: dict[str, Provider],
    plan: SweepPlan,
    run_dir: Path,
) -> int:
    recorded = {**dict(cfg), "catalog_used": catalog_used(plan, config)}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(recorded, sort_keys=False), encoding="utf-8")
    store = RunStore(run_dir)
    runner = Runner(
        run_id=run_dir.name,
        providers=providers,
        store=store,
        settings=config.runner,
        prices=config.prices,
        max_cost_usd=config.max_cost_usd,
        cache=ResponseCache(config.cache) if config.cache.mode != "off" else None,
        unpriced_units=config.unpriced_units,
    )
    log.info("run folder: %s (%d requests planned)", run_dir, plan.total)
    for provider in providers.values():
        provider.prepare_transport()  # imports and TLS set-up, before the event loop starts
    from bench.study import parse_study

    study = parse_study(cfg.get("study"))
    if study.mode == "adaptive":
        from bench.cli.adaptive import RunSteps, run_adaptive

        steps = RunSteps(
            generate=_generate, score_and_report=score_and_report, metrics_enabled=metrics_enabled
        )
        return run_adaptive(cfg, config, providers, plan, run_dir, study, steps)[0]
    try:
        summary = asyncio.run(_generate(runner, plan, providers))
    except OSError as exc:
        with contextlib.suppress(OSError):  # the journal stays the source of truth either way
            store.write_records({"run_id": run_dir.name})
        print(
            f"bench: cannot write results to {run_dir}: {exc}; sending stopped, requests in flight "
            f"were cancelled, finished requests are kept",
            file=sys.stderr,
        )
        return EXIT_FAILED
    unchanged = summary.finished == 0 and summary.skipped == 0 and not summary.interrupted
    stored_table = stored_summary_table(run_dir, cfg) if unchanged else None
    if stored_table is not None:
        # A finished run re-run: nothing was sent and nothing its outputs derive from changed.
        print(f"bench: {summary.line()}", file=sys.stderr)
        print("bench: nothing new: records.parquet, scores and report are up to date", file=sys.stderr)
        if config.report.get("print_summary", True):
            print(stored_table)
        return EXIT_OK
    store.write_records({"run_id": run_dir.name})
    print(f"bench: {summary.line()}", file=sys.stderr)
    if summary.interrupted:
        print(f"bench: re-run the same command with run_name={run_dir.name} to finish", file=sys.stderr)
        return EXIT_INTERRUPTED
    outputs, table = score_and_report(run_dir, config)
    record_outputs(run_dir, cfg, outputs, table)
    failure = run_failure(summary, config.runner.max_error_rate)
    if failure:
        print(f"bench: run failed: {failure}", file=sys.stderr)
        return EXIT_FAILED
    if summary.unpriced:
        # Requests were refused for a reason only the user can fix: not what was asked.
        for message in summary.unpriced.values():
            print(f"bench: refused: {message}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def run_failure(summary: RunSummary, max_error_rate: float) -> str | None:
    """Why a finished run counts as failed (exit 1), or None.

    The run is the whole run folder: requests stored by earlier invocations count as
    done. A refusal is an answer (the refusal rate is a result), not an error.
    """
    errors = summary.error
    if errors == 0:
        return None
    done = summary.already_done + summary.ok + summary.refused
    share = errors / (done + errors)
    if done == 0:
        reason = f"no request succeeded ({errors} ended in error)"
    elif share > max_error_rate:
        reason = (
            f"{errors} of {done + errors} requests ended in error "
            f"({share:.0%} > runner.max_error_rate={max_error_rate:g})"
        )
    else:
        return None
    counts = sorted(((n, kind) for kind, n in summary.error_types.items() if kind != "refused"), reverse=True)
    top = ", ".join(f"{kind} {n}" for n, kind in counts[:3])
    example = summary.error_examples.get(counts[0][1], "") if counts else ""
    return f"{reason}; top error types: {top}" + (f"; e.g. {example}" if example else "")


def score_and_report(run_dir: Path, config: BenchConfig) -> tuple[list[str], str]:
    """Score and write the report; returns the files written besides records.parquet, and the summary table."""
    from bench.report.summary import format_table, load_records, summarize

    written: list[str] = []
    if metrics_enabled(config.metrics):
        from bench.metrics.availability import unavailable_metrics

        # Deciding first keeps torch and open_clip unimported when nothing could be scored.
        why_not = unavailable_metrics(config.metrics, [t.id for t in config.targets])
        if why_not is None:
            from bench.cli.emulated_judge import judge_endpoint
            from bench.metrics.notes import MetricsWarning
            from bench.metrics.score import METRICS_FILE, score_run

            with warnings.catch_warnings(), judge_endpoint(config.metrics) as metrics_cfg:
                # Each caveat is printed once, as a note of the report below, not again as a warning.
                warnings.simplefilter("ignore", MetricsWarning)
                report = score_run(
                    run_dir, metrics_cfg, providers=config.providers, max_cost_usd=config.max_cost_usd
                )
            print(f"bench: {report}", file=sys.stderr)
            written.append(METRICS_FILE)
        else:
            print(f"bench: not scored: {why_not}", file=sys.stderr)
    # --- report wiring (owner: report engineer): after metrics, write summary.parquet, plots, report.html
    if config.report.get("write", True):
        from bench.decide.render import verdict_block
        from bench.report.build import write_report

        out = write_report(run_dir, config.report)
        written += [str(p.relative_to(run_dir)) for p in (out.summary_path, out.html_path, out.verdict_path)]
        log.info("report: %s", out.html_path)
        table = format_table(out.summary, out.verdict.signal or None, emulated_judge=out.verdict.emulated)
        table += (
            "\n\n" + verdict_block(out.verdict) + "\n\n" + next_steps(run_dir, out.html_path, out.verdict)
        )
    else:
        table = format_table(summarize(load_records(run_dir)))
    if config.report.get("print_summary", True):
        print(table)
    # --- end report wiring
    return written, table


def next_steps(run_dir: Path, html_path: Path, verdict: Any) -> str:
    """What to do after a run: the report, the viewer, the verdict's command, and how to get a signal."""
    lines = [
        "Next:",
        f"  open the report:   {html_path}",
        f"  browse the images: bench view {run_dir}",
        f"  decide again:      bench recommend {run_dir} [--max-cost-per-1k USD] [--max-p90-latency S]",
    ]
    if not verdict.signal:
        lines.append(
            f"  get a quality signal: bench rate {run_dir} (your votes), metrics.judge.enabled=true (a VLM judge), "
            "or CLIP / PickScore / HPSv2 weights"
        )
    elif verdict.emulated:
        lines.append(
            "  the judge here is the offline emulator: point metrics.judge.target at a real VLM to decide for real"
        )
    return "\n".join(lines)


def metrics_enabled(metrics_cfg: Mapping[str, Any]) -> bool:
    return any(isinstance(block, Mapping) and block.get("enabled", False) for block in metrics_cfg.values())

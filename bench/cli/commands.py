"""The commands other than `run`: estimate, ls, report, score."""

from __future__ import annotations

import math
import sys
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.cache import ResponseCache
from bench.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from bench.cli.run import prepare
from bench.errors import BenchError, ConfigError
from bench.report.summary import format_table
from bench.runlock import run_folder_lock
from bench.runner import expected_cost_usd
from bench.spend import folder_spend
from bench.store import JOURNAL, BrokenRecords, RunStore


def estimate(cfg: Mapping[str, Any]) -> int:
    """Count a sweep's requests per target and price them from the price table; send nothing."""
    config, providers, plan = prepare(cfg, require_keys=False)
    missing_keys = []
    for name, provider in providers.items():
        try:
            provider.check_ready()
        except BenchError as exc:
            missing_keys.append(f"{name}: {exc}")
    counts: Counter[str] = Counter()
    costs: dict[str, float] = {}
    unpriced: Counter[str] = Counter()
    sources: dict[str, str] = {}
    # Requests a run would replay from the response cache instead of sending (and paying for).
    cache = ResponseCache(config.cache) if config.cache.reads else None
    cached: Counter[str] = Counter()
    for job in plan.jobs():
        tid = job.target.id
        counts[tid] += 1
        provider = providers[job.target.provider]
        covered = cache is not None and config.cache.covers(job.target.provider)
        scope = provider.cache_scope(job.spec) if covered else None
        if cache is not None and scope is not None and cache.lookup(job.key, scope) is not None:
            cached[tid] += 1
            continue
        entry = config.prices.lookup(job.target.provider, job.target.model, job.payload)
        expected = expected_cost_usd(config.prices, providers[job.target.provider], job)
        cost = math.nan if expected is None else expected
        if math.isnan(cost):
            unpriced[tid] += 1
        else:
            costs[tid] = costs.get(tid, 0.0) + cost
            sources[tid] = f"{entry.effective_date} {entry.source_url}" if entry else "adapter estimate"
    print(f"{'target':48} {'requests':>9} {'est. cost':>12}  price source")
    total_cost = 0.0
    for tid, n in counts.items():
        if unpriced[tid]:
            cost_text = "unknown"
        else:
            cost_text = f"${costs.get(tid, 0.0):.4f}"
            total_cost += costs.get(tid, 0.0)
        print(f"{tid:48} {n:>9} {cost_text:>12}  {sources.get(tid, 'no price entry')}")
    unknown = sum(unpriced.values())
    priced = f"${total_cost:.4f} priced" + (f" + {unknown} requests of unknown cost" if unknown else "")
    print(
        f"total: {plan.total} requests, {plan.total * config.sweep.num_images} images, "
        + (f"cost unknown ({unknown} requests unpriced)" if unknown and not costs else priced)
        + (f"; {sum(cached.values())} answered by the response cache ($0)" if cached else "")
    )
    judge = _judge_estimate(config, plan)
    if judge is not None:
        print(judge.line(math.nan if sum(unpriced.values()) else total_cost))
    run_dir = config.results_dir / str(cfg.get("run_name"))
    spent = folder_spend(RunStore(run_dir)) if (run_dir / JOURNAL).is_file() else None
    if spent is not None:
        unknown_note = (
            f" + {spent.unknown_cost_requests} requests of unknown cost"
            if spent.unknown_cost_requests
            else ""
        )
        judge_note = (
            f" (judge ${spent.judge_usd:.4f} in {spent.judge_calls} calls)" if spent.judge_calls else ""
        )
        print(f"run folder {run_dir}: ${spent.spent_usd:.4f} spent so far{judge_note}{unknown_note}")
    if config.max_cost_usd is not None:
        already = spent.spent_usd if spent is not None else 0.0
        print(
            f"max_cost_usd: {config.max_cost_usd:g} for the whole run folder; "
            f"${already:.4f} spent, ${max(config.max_cost_usd - already, 0.0):.4f} left "
            "(the run stops before passing it)"
        )
    for _, spec, _ in plan.targets:
        if spec.unverified:
            print(
                f"note: {spec.target_id}: its schema is UNVERIFIED (a generic guess, not published by "
                "the provider): parameters are not checked against what the API accepts"
            )
    if unknown:
        print(
            f"note: no price known for {', '.join(sorted(unpriced))}: add an entry with "
            "prices.entries=[{provider: ..., model: ..., unit: image, usd: ..., effective_date: ..., "
            "source_url: ...}] (it is added to the shipped table)",
            file=sys.stderr,
        )
    for line in missing_keys:
        print(f"note: {line}", file=sys.stderr)
    return EXIT_OK


def _judge_estimate(config: Any, plan: Any) -> Any:
    """The VLM judge's share (bench/judge/estimate.py) when metrics.judge is on, else None."""
    judge_raw = config.metrics.get("judge") if isinstance(config.metrics, Mapping) else None
    if not (isinstance(judge_raw, Mapping) and judge_raw.get("enabled")):
        return None
    from bench.judge.config import parse_judge_config
    from bench.judge.estimate import estimate_judge

    judge_cfg = parse_judge_config(judge_raw, config.providers)
    images = []
    for job in plan.jobs():
        request = job.request
        size = (request.width, request.height) if request.width and request.height else None
        images += [(job.prompt.text, job.prompt.metadata, size)] * config.sweep.num_images
    return estimate_judge(judge_cfg, images)


def rebuild_records(run_dir: Path) -> int:
    """records.parquet again from the journal (after it was damaged); stored scores must be recomputed."""
    if not (run_dir / JOURNAL).is_file():
        print(
            f"bench: {run_dir / JOURNAL} not found: nothing to rebuild records.parquet from", file=sys.stderr
        )
        return EXIT_USAGE
    with run_folder_lock(run_dir, "report --rebuild"):
        store = RunStore(run_dir)
        store.repair()
        out = store.write_records({"run_id": run_dir.name})
    print(
        f"bench: rebuilt {out} from {run_dir / JOURNAL}; run `bench score {run_dir}` for CLIP scores",
        file=sys.stderr,
    )
    return EXIT_OK


def report(run_dir: Path, report_cfg: Mapping[str, Any] | None = None, *, rebuild: bool = False) -> int:
    # --- report wiring (owner: report engineer): run or sweep folder -> summary.parquet, plots, report.html
    from bench.report.build import write_report
    from bench.report.runs import NotARunFolder

    if rebuild and (code := rebuild_records(run_dir)) != EXIT_OK:
        return code
    try:
        out = write_report(run_dir, report_cfg or {})
    except (NotARunFolder, BrokenRecords) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from bench.decide.render import verdict_block

    print(format_table(out.summary, out.verdict.signal or None, emulated_judge=out.verdict.emulated))
    if out.agreement is not None:
        from bench.arena.agreement_report import agreement_text

        print(agreement_text(out.agreement))
    print()
    print(verdict_block(out.verdict, str(out.verdict_path)))
    print(
        f"bench: wrote {out.summary_path}, {out.html_path}, {out.verdict_path.name} and {len(out.plots)} plots "
        f"in {out.root / 'plots'}",
        file=sys.stderr,
    )
    return EXIT_OK
    # --- end report wiring


def folder_cap(run_dir: Path, given: Any) -> float | None:
    """The cap a later pass over a run folder spends under: max_cost_usd as given on the command line,
    else the one the run recorded in its config.yaml (the folder's cap still holds), else none."""
    import yaml

    if given is None and (run_dir / "config.yaml").is_file():
        recorded = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        given = recorded.get("max_cost_usd") if isinstance(recorded, Mapping) else None
    if given is None:
        return None
    if isinstance(given, bool) or not isinstance(given, int | float) or given < 0:
        raise ConfigError("max_cost_usd", given, "use a non-negative number of US dollars, or null")
    return float(given)


def score(
    run_dir: Path,
    metrics_cfg: Mapping[str, Any],
    providers: Mapping[str, Any] | None = None,
    report_cfg: Mapping[str, Any] | None = None,
    max_cost_usd: Any = None,
) -> int:
    """Score the run, then rewrite summary.parquet, plots/ and report.html from the new scores (as
    `bench run` does after scoring), so they are never older than records.parquet; report.write=false
    leaves them alone."""
    from bench.metrics.errors import WeightsError
    from bench.metrics.notes import MetricsWarning
    from bench.metrics.score import score_run

    if not run_dir.is_dir():
        print(f"bench: {run_dir} not found: is it a run folder?", file=sys.stderr)
        return EXIT_USAGE
    report_cfg = report_cfg or {}
    with run_folder_lock(run_dir, "score"):  # RunFolderBusy (exit 2) while a run writes here
        if not (run_dir / "records.parquet").is_file():
            print(f"bench: {run_dir}/records.parquet not found: is it a run folder?", file=sys.stderr)
            return EXIT_USAGE
        try:
            import yaml

            from bench.cli.emulated_judge import judge_endpoint, judge_for_run_folder

            config_file = run_dir / "config.yaml"
            recorded = (
                yaml.safe_load(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}
            )
            metrics_cfg = judge_for_run_folder(metrics_cfg, recorded or {})
            with warnings.catch_warnings(), judge_endpoint(metrics_cfg) as scoring_cfg:
                # Each caveat is printed once, as a note of the result below, not again as a warning.
                warnings.simplefilter("ignore", MetricsWarning)
                result = score_run(
                    run_dir,
                    scoring_cfg,
                    require_weights=True,
                    providers=providers,
                    max_cost_usd=folder_cap(run_dir, max_cost_usd),
                )
        except ConfigError as exc:  # e.g. the emulated judge on a run mixing real hosts: nothing scored
            print(f"bench: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except WeightsError as exc:
            # Nothing was written: scores from an earlier pass stay as they were.
            print(f"bench: {exc} (stored scores in {run_dir} are unchanged)", file=sys.stderr)
            return EXIT_USAGE
        print(result)
        if not report_cfg.get("write", True):
            return EXIT_OK
        return write_report_after_scoring(run_dir, report_cfg)


def write_report_after_scoring(folder: Path, report_cfg: Mapping[str, Any]) -> int:
    """summary.parquet, plots/ and report.html of `folder` again, from the scores just written."""
    from bench.metrics.errors import FingerprintMismatch
    from bench.report.build import write_report
    from bench.report.runs import NotARunFolder

    try:
        out = write_report(folder, report_cfg)
    except (NotARunFolder, BrokenRecords, FingerprintMismatch) as exc:
        print(
            f"bench: scores written, but summary.parquet and report.html were not refreshed: {exc}; "
            f"fix that, then run `bench report {folder}`",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"bench: refreshed {out.summary_path} and {out.html_path} with the new scores", file=sys.stderr)
    return EXIT_OK

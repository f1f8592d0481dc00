"""Dispatch `bench <command>`. `run` hands its arguments to Hydra, so overrides, `-m` and `--cfg` work as in any Hydra app."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.cli.exit_codes import EXIT_USAGE
from bench.cli.parsers import (
    catalog_parser,
    compare_parser,
    estimate_parser,
    ls_parser,
    report_parser,
    score_parser,
    view_parser,
)
from bench.cli.run import execute_run, prepare
from bench.config import check_writable, parse_http_debug
from bench.errors import BenchError, ConfigError
from bench.http_logging import configure_http_logging
from bench.runlock import check_run_folder_free

log = logging.getLogger("bench")
_HYDRA_FLAGS_WITHOUT_RUN = {
    "--cfg",
    "-c",
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "-i",
    "--resolve",
    "-p",
    "--package",
}
_MULTIRUN_FLAGS = {"-m", "--multirun"}

USAGE = """usage: bench <command> [args]

commands:
  run [overrides...]        run a sweep (Hydra overrides; -m for multirun; --cfg job to print the config;
                            --retry-billed: send again requests billed whose image could not be had)
  estimate [overrides...]   count the requests a sweep makes and price it, sending nothing
  ls [--provider NAME] [--search TEXT]
                            providers, models, the parameters each accepts (ranges, options,
                            defaults) and prices; fetched and user-listed models included
  catalog pull PROVIDER:MODEL...   fetch models' schemas and prices from the provider and cache them
  catalog show PROVIDER:MODEL...   a model's schema, normalized mapping and price, from any source
  report PATH [--rebuild]   summary.parquet, plots/ and report.html for a run or sweep folder
                            (--rebuild: records.parquet again from the journal first)
  recommend PATH [--max-cost-per-1k USD] [--max-p90-latency S] [--max-refusal-rate R] [--min-ok-rate R]
                            which group to choose: the cheapest not shown worse than the best within a
                            margin; writes verdict.json; exit 0 recommended, 1 none, 2 bad input
  compare BASELINE CANDIDATE [gate overrides...] [--min-measured 0.9] [--allow-missing TARGET...]
                            regression gate: exit 0 pass, 1 regression / not measured / missing target,
                            2 unusable input
  score RUN_DIR [overrides] (re)compute metrics for a run without generating anything; refreshes its report
  emulate PROVIDER [...]    serve a loopback emulator of a provider's API (see `bench emulate -h`)
  view PATH [PATH2]         browse a run or sweep folder on 127.0.0.1 (two folders: compare them)
  rate PATH [--rater NAME]  blind pairwise voting in the browser (127.0.0.1); votes go to PATH/votes.jsonl
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if args else EXIT_USAGE
    command, rest = args[0], args[1:]
    handlers = {
        "run": cmd_run,
        "estimate": cmd_estimate,
        "ls": cmd_ls,
        "report": cmd_report,
        "compare": cmd_compare,
        "recommend": cmd_recommend,
        "score": cmd_score,
        "emulate": cmd_emulate,
        "catalog": cmd_catalog,
        "view": cmd_view,
        "rate": cmd_rate,
    }
    if command not in handlers:
        print(f"bench: unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return handlers[command](rest)
    except BrokenPipeError:
        # `bench ls | head`: the reader left. Point stdout at /dev/null so the interpreter's
        # final flush does not raise again, and end quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)


RETRY_BILLED_FLAG = "--retry-billed"


def cmd_run(args: list[str]) -> int:
    from bench.cli.hydra_config import compose_config

    if RETRY_BILLED_FLAG in args:  # our flag, not Hydra's: it is the config key runner.retry_billed
        args = [a for a in args if a != RETRY_BILLED_FLAG] + ["runner.retry_billed=true"]
    flags = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    overrides = [a for a in args if not a.startswith("-")]
    if flags and flags <= _MULTIRUN_FLAGS:
        from bench.cli.multirun import run_multirun

        # Every job's config is composed and checked before the first job starts, and the
        # exit code is the worst job's, whichever launcher ran them.
        return run_multirun(overrides)
    if not flags:
        return _single_run(args)
    if not flags & (_HYDRA_FLAGS_WITHOUT_RUN | _MULTIRUN_FLAGS):
        # Validate before Hydra makes a run folder: a typo must not leave an empty run behind,
        # and every config error is found before any request is sent.
        cfg = compose_config(overrides)
        prepare(cfg, require_keys=True)
        check_writable(Path(str(cfg.get("results_dir", "results"))))
        # Before Hydra writes .hydra/ into a folder another `bench run` is using.
        check_run_folder_free(Path(str(cfg.get("results_dir", "results"))) / str(cfg.get("run_name")), "run")
    return _hydra_run(args)


def _single_run(overrides: list[str]) -> int:
    """One run, with the config composed once (hydra.main composes it twice more, ~1 s each).

    The config is validated and the sweep planned before Hydra makes the run folder (a typo
    must not leave an empty run behind; every config error is found before any request is
    sent), and the job then runs on that same composed config and plan.
    """
    from hydra import initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import run_job
    from hydra.errors import HydraException
    from hydra.types import HydraContext, RunMode
    from omegaconf import DictConfig, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from bench.cli.hydra_config import (
        CONFIG_DIR,
        CONFIG_NAME,
        override_problem,
        plain_config,
        register_resolvers,
    )

    register_resolvers()
    exit_codes: list[int] = [0]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None, job_name="bench"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        try:
            cfg = hydra.compose_config(
                CONFIG_NAME, overrides, run_mode=RunMode.RUN, with_log_configuration=True
            )
            # What run_job will hand the job: the config without its hydra node, resolved.
            validated = {str(k): _resolved(cfg[k]) for k in cfg if k != "hydra"}
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError("overrides", " ".join(overrides), override_problem(exc)) from None
        prepared = prepare(validated, require_keys=True)
        check_writable(Path(str(validated.get("results_dir", "results"))))
        with open_dict(cfg):
            cfg.hydra.mode = RunMode.RUN

        def task(task_cfg: DictConfig) -> None:
            from hydra.core.hydra_config import HydraConfig

            run_dir = Path(HydraConfig.get().runtime.output_dir)
            container = plain_config(task_cfg)
            # The same composed config reaches the job; re-plan only if Hydra changed something.
            reuse = prepared if container == validated else None
            exit_codes.append(execute_run(container, run_dir, prepared=reuse))

        callbacks = Callbacks(cfg)
        callbacks.on_run_start(config=cfg, config_name=CONFIG_NAME)
        ret = run_job(
            hydra_context=HydraContext(config_loader=hydra.config_loader, callbacks=callbacks),
            task_function=task,
            config=cfg,
            job_dir_key="hydra.run.dir",
            job_subdir_key=None,
        )
        callbacks.on_run_end(config=cfg, config_name=CONFIG_NAME, job_return=ret)
        _ = ret.return_value  # re-raises what the job raised
    return max(exit_codes)


def _resolved(value: Any) -> Any:
    from omegaconf import Container, OmegaConf

    return OmegaConf.to_container(value, resolve=True) if isinstance(value, Container) else value


def _hydra_run(args: list[str]) -> int:
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig, OmegaConf

    from bench.cli.hydra_config import CONFIG_DIR, CONFIG_NAME, register_resolvers

    register_resolvers()
    exit_codes: list[int] = [0]

    @hydra.main(config_path=str(CONFIG_DIR), config_name=CONFIG_NAME, version_base=None)
    def task(cfg: DictConfig) -> None:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        exit_codes.append(execute_run({str(k): v for k, v in container.items()}, run_dir))

    saved_argv = sys.argv
    sys.argv = ["bench", *args]
    try:
        task()
    finally:
        sys.argv = saved_argv
    return max(exit_codes)


def cmd_estimate(args: list[str]) -> int:
    from bench.cli.commands import estimate
    from bench.cli.hydra_config import compose_config

    ns = estimate_parser().parse_args(args)
    _setup_logging()
    return estimate(compose_config(ns.overrides))


def cmd_ls(args: list[str]) -> int:
    from bench.cli.catalog_cmd import list_models
    from bench.cli.hydra_config import compose_config

    ns = ls_parser().parse_args(args)
    return list_models(compose_config(ns.overrides), ns.provider, ns.search)


def cmd_catalog(args: list[str]) -> int:
    from bench.cli.catalog_cmd import catalog_command
    from bench.cli.hydra_config import compose_config

    ns = catalog_parser().parse_args(args)
    targets = [a for a in ns.args if "=" not in a.partition(":")[0] and ":" in a and not a.startswith("+")]
    overrides = [a for a in ns.args if a not in targets]
    return catalog_command(ns.action, targets, compose_config(overrides))


def cmd_report(args: list[str]) -> int:
    from bench.cli.commands import report

    # --- report/gate wiring (owner: report engineer) ---
    from bench.cli.hydra_config import compose_config

    ns = report_parser().parse_args(args)
    return report(ns.run_dir, compose_config(ns.overrides).get("report") or {}, rebuild=ns.rebuild)


def cmd_recommend(args: list[str]) -> int:
    from bench.cli.hydra_config import compose_config
    from bench.cli.recommend import parser, recommend

    ns = parser().parse_args(args)
    flags = {k: v for k, v in vars(ns).items() if k not in ("path", "overrides")}
    return recommend(ns.path, compose_config(ns.overrides).get("report") or {}, flags)


def cmd_compare(args: list[str]) -> int:
    from bench.cli.hydra_config import compose_config
    from bench.gate import run_gate

    ns = compare_parser().parse_intermixed_args(args)  # overrides may come after --min-measured
    bad = [t for t in ns.allow_missing or [] if "=" in t]
    if bad:
        print(
            f"bench compare: --allow-missing {bad[0]}: looks like an override, not a target; "
            "put overrides before --allow-missing",
            file=sys.stderr,
        )
        return 2
    # The gate group is not in the run config's defaults: add it (`gate=NAME` picks another option).
    choice = next((o.split("=", 1)[1] for o in ns.overrides if o.startswith("gate=")), "default")
    rest = [o for o in ns.overrides if not o.startswith("gate=")]
    cfg = compose_config([f"+gate={choice}", *rest])
    gate_cfg = dict(cfg.get("gate") or {})
    if ns.min_measured is not None:
        gate_cfg["min_measured"] = ns.min_measured
    if ns.allow_missing:
        gate_cfg["allow_missing"] = [*(gate_cfg.get("allow_missing") or []), *ns.allow_missing]
    return run_gate(ns.baseline, ns.candidate, gate_cfg)
    # --- end report/gate wiring ---


def cmd_score(args: list[str]) -> int:
    from bench.cli.commands import score
    from bench.cli.hydra_config import compose_config
    from bench.cli.score_jobs import is_sweep_folder, score_sweep

    ns = score_parser().parse_args(args)
    _setup_logging()
    if is_sweep_folder(ns.run_dir):
        return score_sweep(ns.run_dir, ns.overrides)
    cfg = compose_config(ns.overrides)
    # The judge's HTTP client logs through httpx: one INFO line per request unless quieted (and
    # a key would be redacted in its DEBUG lines), as `bench run` does for the providers.
    configure_http_logging(debug=parse_http_debug(cfg.get("bench") or {}), secrets=_configured_keys(cfg))
    return score(
        ns.run_dir,
        cfg.get("metrics") or {},
        cfg.get("providers") or {},
        cfg.get("report") or {},
        max_cost_usd=cfg.get("max_cost_usd"),
    )


def _configured_keys(cfg: Mapping[str, Any]) -> list[str]:
    """The values of every key variable the config names (providers' and the judge's), for redaction."""
    names = [
        block.get("api_key_env")
        for block in (cfg.get("providers") or {}).values()
        if isinstance(block, Mapping)
    ]
    judge = (cfg.get("metrics") or {}).get("judge")
    if isinstance(judge, Mapping):
        names.append(judge.get("api_key_env"))
    return [os.environ[str(n)] for n in names if n and os.environ.get(str(n))]


def cmd_emulate(args: list[str]) -> int:
    from bench.emulators.cli import main as emulate_main

    return emulate_main(args)


def cmd_view(args: list[str]) -> int:
    from bench.local_server import AllowedHost, BadHostOption
    from bench.view.serve import serve

    ns = view_parser().parse_args(args)
    if len(ns.paths) > 2:
        print(f"bench view: {len(ns.paths)} folders given; give one, or two to compare", file=sys.stderr)
        return EXIT_USAGE
    try:
        hosts = tuple(AllowedHost.parse(h) for h in ns.host)
    except BadHostOption as exc:
        print(f"bench view: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return serve(ns.paths, ns.port, hosts)


def cmd_rate(args: list[str]) -> int:
    from bench.arena.cli import main as rate_main

    return rate_main(args)

"""`bench run -m`: validate every job of the sweep before the first starts; exit non-zero if any job failed.

Hydra's `@hydra.main` throws away what the jobs of a multirun return, so under the
joblib (or any out-of-process) launcher a failed job could not change the exit code.
Here the sweep is launched through the same Hydra machinery (sweeper, launcher,
callbacks, job folders), but the launcher's JobReturns come back to us: each job's
return value is its exit code, whichever process or machine ran it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.cli import cluster_env
from bench.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from bench.cli.hydra_config import override_problem
from bench.cli.launchers import launcher_config, with_parallel_jobs
from bench.cli.run import execute_run, metrics_enabled, prepare
from bench.config import check_writable
from bench.errors import BenchError, ConfigError

log = logging.getLogger("bench")


def expand_sweep(overrides: Sequence[str]) -> list[list[str]]:
    """The override list of every job Hydra's basic sweeper will launch (`a=1,2 b=x,y` -> 4 jobs).

    Sweeps come from the command line and from `hydra.sweeper.params` in the composed config
    (config.yaml or an experiment file). Hydra's own pieces do the work, in its order: the
    master config is composed as `Hydra.multirun` composes it, the config's params come first
    and the command line's task overrides after them (a key given in both: the command line
    wins), then `BasicSweeper.split_arguments` expands them.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from bench.cli.hydra_config import CONFIG_NAME

    try:
        with hydra_app() as app:
            # Imported after Hydra's plugin scan, which loads the core plugins' modules anew.
            from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

            master = app.compose_config(
                config_name=CONFIG_NAME,
                overrides=[*overrides, "hydra.mode=MULTIRUN"],
                run_mode=RunMode.MULTIRUN,
            )
            task = OmegaConf.to_container(master.hydra.overrides.task, resolve=False)
            assert isinstance(task, list)
            arguments = [str(o) for o in task]
            sweeper = master.hydra.sweeper
            if str(sweeper.get("_target_", "")).endswith(".BasicSweeper"):
                declared = sweeper.get("params")
                params = OmegaConf.to_container(declared, resolve=False) if declared else {}
                assert isinstance(params, dict)
                declared_params = {str(k): str(v) for k, v in params.items()}  # as f"{k}={v}" renders them
                from_config = BasicSweeper(max_batch_size=None, params=declared_params)._parse_config()
                arguments = [*from_config, *arguments]
            parser = OverridesParser.create(config_loader=app.config_loader)
            batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError("overrides", " ".join(overrides), override_problem(exc)) from None
    return [list(job) for batch in batches for job in batch]


@contextlib.contextmanager
def hydra_app() -> Iterator[Any]:
    """Hydra's app over the project's configs, as `@hydra.main` would build it (cleared on exit)."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    from bench.cli.hydra_config import CONFIG_DIR, register_resolvers

    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        yield Hydra.create_main_hydra2(
            task_name="bench", config_search_path=create_config_search_path(str(CONFIG_DIR))
        )
    finally:
        GlobalHydra.instance().clear()


def validate_jobs(overrides: Sequence[str], jobs: Iterable[Sequence[str]]) -> tuple[int, set[str]]:
    """Compose each job as Hydra's sweeper will (`load_sweep_config`: its config loader and the
    master config's hydra overrides, e.g. hydra.searchpath) and prepare it as its run would;
    the first problem is a ConfigError. Returns the number of jobs and the names of the
    environment variables holding the keys they need (never the values)."""
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf import open_dict
    from omegaconf.errors import OmegaConfBaseException

    from bench.cli.hydra_config import CONFIG_NAME, plain_config

    composed_jobs: list[tuple[Sequence[str], dict[str, Any]]] = []
    with hydra_app() as app:
        try:
            master = app.compose_config(
                config_name=CONFIG_NAME,
                overrides=[*overrides, "hydra.mode=MULTIRUN"],
                run_mode=RunMode.MULTIRUN,
            )
            for job in jobs:
                composed = app.config_loader.load_sweep_config(master, list(job))
                with open_dict(composed):
                    del composed["hydra"]  # Hydra's business (launcher, folders), not the job's config
                composed_jobs.append((job, plain_config(composed)))
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError("overrides", " ".join(overrides), override_problem(exc)) from None
    # Prepared outside Hydra's global state: preparing may compose configs of its own.
    names: set[str] = set()
    for job, cfg in composed_jobs:
        try:
            config, providers, _ = prepare(cfg, require_keys=True)
            check_writable(Path(str(cfg.get("results_dir", "results"))))
        except ConfigError as exc:
            raise ConfigError(exc.key, exc.value, f"{exc.fix} (in the job {' '.join(job)})") from None
        judge_env = (
            cluster_env.judge_key_env(config.metrics, config.providers)
            if metrics_enabled(config.metrics)
            else None
        )
        names |= cluster_env.key_names(providers.values(), judge_env)
    return len(composed_jobs), names


def multirun_task(cfg: Any) -> int:
    """One job of the sweep (runs in whatever process the launcher chose); returns its exit code."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    container = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(container, dict)
    job_cfg = {str(k): v for k, v in container.items()}
    cluster_env.write_job_file(run_dir)
    try:
        try:
            prepared = prepare(job_cfg, require_keys=True)
        except ConfigError as exc:  # e.g. a key variable this worker does not have: say which node
            print(f"bench: {exc} (job on {cluster_env.describe_node()})", file=sys.stderr)
            return EXIT_USAGE
        return execute_run(job_cfg, run_dir, prepared)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:  # one job's crash must not hide the others' results; it still fails the sweep
        log.exception("job in %s crashed", run_dir)
        return EXIT_FAILED


def launch(
    overrides: Sequence[str], key_names: Iterable[str] = (), task_function: Any = multirun_task
) -> list[tuple[str, int]]:
    """Run the sweep through Hydra's sweeper and launcher; (job folder, exit code) per job.

    Under Ray the jobs run in a cluster's worker processes, which lack this shell's key
    variables: the task function carries the values of `key_names` (bench.cli.cluster_env).
    `task_function` returns each job's exit code (`bench score` over a sweep passes its own).
    """
    from hydra.core.utils import JobStatus
    from omegaconf import OmegaConf

    from bench.cli.hydra_config import CONFIG_NAME

    task = task_function
    with contextlib.ExitStack() as stack:
        launcher = launcher_config(overrides)
        if cluster_env.is_ray(launcher):
            stack.enter_context(ray_session(launcher))
            task = cluster_env.WithKeys(task_function, cluster_env.driver_key_values(key_names))
        with hydra_app() as app:
            returns = app.multirun(
                config_name=CONFIG_NAME,
                task_function=task,
                overrides=[*overrides, "hydra.mode=MULTIRUN"],
            )
    outcomes: list[tuple[str, int]] = []
    for batch in returns or []:
        for job in batch:
            output_dir = (
                OmegaConf.select(job.hydra_cfg, "hydra.runtime.output_dir") if job.hydra_cfg else None
            )
            label = str(output_dir or " ".join(job.overrides or []))
            value = job.return_value if job.status == JobStatus.COMPLETED else None
            if isinstance(value, int):
                outcomes.append((label, value))
            else:
                log.error("job %s did not report an exit code (%s)", label, job.status)
                outcomes.append((label, EXIT_FAILED))
    return outcomes


@contextlib.contextmanager
def ray_session(launcher: dict[str, Any]) -> Iterator[None]:
    """Ray started (or joined) here, before the plugin would: the plugin's init adds a memory
    setting that Ray refuses when joining a running cluster (bench.cli.cluster_env)."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(**cluster_env.ray_init_arguments(launcher))
    try:
        yield
    finally:
        ray.shutdown()


def _key(override: str) -> str:
    """`+a.b=1` -> `a.b`: the key Hydra's override_dirname exclude_keys match on."""
    return override.split("=", 1)[0].lstrip("+~")


def with_job_folder_names(overrides: Sequence[str], jobs: Sequence[Sequence[str]]) -> list[str]:
    """Job folders are named after the job's overrides, cut at FOLDER_NAME_MAX characters, so a
    long override every job shares (a target list) could push out the one that tells the jobs
    apart. When a name would be cut, the keys all jobs share are left out of the names."""
    if len(jobs) < 2 or any(_key(o) == "hydra.job.config.override_dirname.exclude_keys" for o in overrides):
        return list(overrides)
    from omegaconf import OmegaConf

    from bench.cli.hydra_config import CONFIG_DIR, CONFIG_NAME, FOLDER_NAME_MAX

    shipped = OmegaConf.load(CONFIG_DIR / f"{CONFIG_NAME}.yaml")
    excluded = [
        str(k) for k in OmegaConf.select(shipped, "hydra.job.config.override_dirname.exclude_keys") or []
    ]
    named = [[o for o in job if _key(o) not in excluded] for job in jobs]
    if max(len(",".join(sorted(job))) for job in named) <= FOLDER_NAME_MAX:
        return list(overrides)
    shared = set(named[0]).intersection(*named[1:])
    common_keys = sorted(
        {_key(o) for o in shared} - {_key(o) for job in named for o in job if o not in shared}
    )
    if not common_keys:
        return list(overrides)
    keys = ",".join(f"'{k}'" for k in [*excluded, *common_keys])
    return [*overrides, f"hydra.job.config.override_dirname.exclude_keys=[{keys}]"]


def run_multirun(overrides: Sequence[str]) -> int:
    """Validate every job, launch the sweep, and exit with the worst job's code."""
    jobs = expand_sweep(overrides)
    _, key_names = validate_jobs(overrides, jobs)
    outcomes = launch(with_parallel_jobs(with_job_folder_names(overrides, jobs), len(jobs)), key_names)
    failed = [(label, code) for label, code in outcomes if code != EXIT_OK]
    for label, code in failed:
        print(f"bench: job {label} exited {code}", file=sys.stderr)
    if len(outcomes) != len(jobs):
        print(f"bench: {len(jobs)} jobs planned, {len(outcomes)} reported back", file=sys.stderr)
        return EXIT_FAILED
    if failed:
        print(f"bench: multirun: {len(failed)} of {len(outcomes)} jobs failed", file=sys.stderr)
        return max(code for _, code in failed)
    return EXIT_OK

"""How many jobs of a multirun run at once, so provider limits can be shared among them.

`providers.<name>.concurrency` and `requests_per_minute` are limits of the provider
account, which every job of a sweep uses at the same time. `bench run -m` works out
how many jobs the chosen Hydra launcher runs concurrently and passes it to every job
as `runner.parallel_jobs`; each job then takes its share (bench.config.share_limits),
so ten parallel jobs do not hit one provider ten times harder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from bench.errors import ConfigError

PARALLEL_JOBS_KEY = "runner.parallel_jobs"


def launcher_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved `hydra.launcher` node for these overrides (the plugin's defaults included)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from bench.cli.hydra_config import CONFIG_DIR, CONFIG_NAME, override_problem, register_resolvers

    register_resolvers()
    hydra_overrides = [o for o in overrides if o.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
            cfg = compose(config_name=CONFIG_NAME, overrides=hydra_overrides, return_hydra_config=True)
        node = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError("hydra/launcher", " ".join(hydra_overrides), override_problem(exc)) from None
    assert isinstance(node, dict)
    return {str(k): v for k, v in node.items()}


def parallel_jobs(launcher: dict[str, Any], n_jobs: int) -> int:
    """Jobs the launcher runs at once (never more than there are). Unknown launchers: all of them."""
    target = str(launcher.get("_target_", ""))
    if target.endswith("BasicLauncher"):
        return 1
    if target.endswith("JoblibLauncher"):
        workers = int(launcher.get("n_jobs", -1))
        if workers < 0:  # joblib: -1 = every CPU, -2 = all but one, ...
            workers = max((os.cpu_count() or 1) + 1 + workers, 1)
        return max(min(workers, n_jobs), 1)
    if "submitit" in target.lower():
        return max(min(int(launcher.get("array_parallelism", 256)), n_jobs), 1)
    # Ray and anything else: as many as the cluster has room for, which the config cannot tell;
    # assuming all of them at once keeps the sum of the jobs' limits within the provider's.
    return max(n_jobs, 1)


def with_parallel_jobs(overrides: Sequence[str], n_jobs: int) -> list[str]:
    """The overrides plus runner.parallel_jobs for every job, unless the user set it."""
    if any(o.lstrip("+~").startswith(PARALLEL_JOBS_KEY + "=") for o in overrides):
        return list(overrides)
    share = parallel_jobs(launcher_config(overrides), n_jobs)
    return [*overrides, f"{PARALLEL_JOBS_KEY}={share}"]


def jobs_per_machine(launcher: dict[str, Any], n_jobs: int) -> int:
    """Jobs sharing one machine's cores: all concurrent ones for the launchers that run jobs here
    (joblib, submitit_local); one for SLURM, whose jobs get their own allocation, and for Ray and
    the others, which place jobs themselves (Ray sets each worker's OMP_NUM_THREADS)."""
    target = str(launcher.get("_target_", ""))
    if target.endswith(("JoblibLauncher", "submitit_launcher.LocalLauncher")):
        return parallel_jobs(launcher, n_jobs)
    return 1

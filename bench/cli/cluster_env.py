"""What a job of a multirun needs from the machine that launched it, wherever the job runs.

Keys: the start-up check passes on the driver, where the user exported the keys, but a
Ray worker is a process of a raylet that was started elsewhere (`ray start`), so it does
not have them. Only the *names* in the providers' `api_key_env` (and the judge's) are
read from the config; their values travel with the job's task function, in memory, to the
worker that runs it. Ray's `runtime_env={"env_vars": ...}` would be simpler, but Ray's
runtime-env agent writes those values into its log files. SLURM jobs get the submitting
shell's environment from sbatch (`--export=ALL`, SLURM's default), and local launchers
start their workers from this process, so both already have the keys.

Where a job ran: each job writes `job.json` into its run folder (host, process, and the
Ray node or SLURM job when there is one), so a sweep can be traced to its nodes.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

JOB_FILE = "job.json"


def key_names(providers: Iterable[Any], judge_key_env: str | None) -> set[str]:
    """The environment variables holding the keys these providers (and the judge) need."""
    names = {str(p.settings.api_key_env) for p in providers if p.needs_api_key and p.settings.api_key_env}
    if judge_key_env:
        names.add(judge_key_env)
    return names


def judge_key_env(metrics: Any, providers: Any) -> str | None:
    """The name of the judge's key variable when the judge is on (its workers need it), else None."""
    from bench.metrics.config import parse_metrics_config

    judge = parse_metrics_config(metrics or {}, providers or {}).judge
    return (judge.api_key_env or None) if judge.enabled else None


def node_facts() -> dict[str, Any]:
    """Where this process runs: host, pid, and the Ray node / SLURM job if it is one's worker."""
    facts: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        facts["ray_node_id"] = ray.get_runtime_context().get_node_id()
    for variable in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURMD_NODENAME"):
        if variable in os.environ:
            facts[variable.lower()] = os.environ[variable]
    return facts


def describe_node() -> str:
    """One phrase for messages: `host vm (Ray node 5e17…)` or `host vm (SLURM job 12)`."""
    facts = node_facts()
    where = f"host {facts['host']}"
    if "ray_node_id" in facts:
        where += f" (Ray node {str(facts['ray_node_id'])[:12]})"
    elif "slurm_job_id" in facts:
        where += f" (SLURM job {facts['slurm_job_id']})"
    return where


def write_job_file(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / JOB_FILE).write_text(json.dumps(node_facts(), sort_keys=True) + "\n", encoding="utf-8")


class WithKeys:
    """A multirun task function that first sets the driver's key variables the worker lacks.

    Its repr names the variables and never shows a value (launchers log task functions).
    """

    def __init__(self, task: Any, values: Mapping[str, str]) -> None:
        self.task = task
        self._values = dict(values)

    def __call__(self, cfg: Any) -> Any:
        for name, value in self._values.items():
            os.environ.setdefault(name, value)
        return self.task(cfg)

    def __repr__(self) -> str:
        return f"WithKeys({getattr(self.task, '__name__', type(self.task).__name__)}, names={sorted(self._values)})"


def driver_key_values(names: Iterable[str]) -> dict[str, str]:
    return {name: os.environ[name] for name in sorted(names) if os.environ.get(name)}


def is_ray(launcher: Mapping[str, Any]) -> bool:
    return str(launcher.get("_target_", "")).endswith("RayLauncher")


def ray_init_arguments(launcher: Mapping[str, Any]) -> dict[str, Any]:
    """`hydra.launcher.ray.init` as ray.init takes it.

    The plugin adds `object_store_memory` to every init, which Ray refuses when it connects
    to a running cluster (the cluster set its memory at `ray start`): it is dropped then.
    """
    ray_cfg = launcher.get("ray") or {}
    init = dict(ray_cfg.get("init") or {})
    if init.get("address"):
        init.pop("object_store_memory", None)
        init.pop("num_cpus", None)
        init.pop("num_gpus", None)
    else:
        init.setdefault("object_store_memory", 78_643_200)  # the plugin's own default for a local Ray
    return {k: v for k, v in init.items() if v is not None or k == "address"}

"""`bench run -m` under Hydra's joblib, submitit_local and Ray launchers, against emulators on 127.0.0.1.

Each launcher runs a 2-job sweep in processes of its own: one job against a healthy
emulator, one against an emulator whose every answer is a 500. The command must exit 1
(a job failed), both run folders must hold their records, and `bench report` must merge
the sweep folder. A config error in any job stops everything before the first request
(exit 2). Every job gets runner.parallel_jobs, so provider limits are shared.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import pytest
import yaml
from _clusters import ray_to_itself
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.launchers import parallel_jobs
from bench.cli.main import main
from bench.config import share_limits
from bench.emulators import openai_compat
from bench.providers.base import ProviderSettings

PLUGINS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher",
    "ray": "hydra_plugins.hydra_ray_launcher",
}
LAUNCHER_ARGS = {
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=15"],
    # A local Ray instance of 2 CPUs, without the dashboard (nothing listens beyond loopback).
    "ray": [
        "hydra/launcher=ray",
        "+hydra.launcher.ray.init.num_cpus=2",
        "+hydra.launcher.ray.init.include_dashboard=false",
    ],
}
EXPECTED_PARALLEL = {"joblib": 2, "submitit_local": 2, "ray": 2}


def launcher_available(name: str) -> None:
    if importlib.util.find_spec(PLUGINS[name]) is None:
        pytest.skip(f"the {name} launcher plugin is not installed (pip install -e '.[launchers]')")


def ray_can_start() -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed")
    try:
        ray.init(num_cpus=1, include_dashboard=False)
    except Exception as exc:  # ray raises many kinds; the reason is what matters
        pytest.skip(f"a local Ray instance cannot start here: {type(exc).__name__}: {exc}")
    finally:
        if ray.is_initialized():
            ray.shutdown()


@pytest.fixture
def ray_alone(request: pytest.FixtureRequest) -> Iterator[None]:
    """The Ray case runs holding the machine's Ray lock (see tests/_clusters.py)."""
    with ray_to_itself() if request.node.callspec.params.get("launcher") == "ray" else nullcontext():
        yield


def fresh_workers(launcher: str) -> None:
    """joblib's loky keeps worker processes between calls: ones started by an earlier test
    would not see the key variable this test sets (a real `bench run -m` starts fresh)."""
    if launcher == "joblib":
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)


def sweep_args(launcher: str, results: Path, sweep: str) -> list[str]:
    return [
        "run",
        "-m",
        *LAUNCHER_ARGS[launcher],
        "targets=[openai:gpt-image-2]",
        f"providers.openai.api_key_env={KEY_ENV}",
        "prompts.n=2",
        "sweep=quick",
        "metrics=off",
        "report.write=false",
        "report.print_summary=false",
        "runner.progress=off",
        "runner.max_attempts=1",
        f"results_dir={results}",
        f"sweep_name={sweep}",
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("ray_alone")
@pytest.mark.parametrize("launcher", sorted(PLUGINS))
def test_two_job_sweep_fails_when_a_job_fails_and_the_report_merges_it(
    launcher: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    launcher_available(launcher)
    if launcher == "ray":
        ray_can_start()
    monkeypatch.setenv(KEY_ENV, KEY)
    fresh_workers(launcher)
    results = tmp_path / "results"
    with (
        emulator(openai_compat.create_app(knobs(), profile="openai")) as (good, good_emu),
        emulator(openai_compat.create_app(knobs(fault="server_error"), profile="openai")) as (bad, bad_emu),
    ):
        code = main([*sweep_args(launcher, results, "s"), f"providers.openai.base_url={good},{bad}"])
        assert code == 1  # one job's requests all failed
        assert good_emu.submissions == 2 and bad_emu.submissions == 2

    sweep = results / "sweeps" / "s"
    runs = sorted(p.parent for p in sweep.glob("*/records.parquet"))
    assert len(runs) == 2
    statuses = sorted(tuple(sorted(set(pd.read_parquet(r / "records.parquet").status))) for r in runs)
    assert statuses == [("error",), ("ok",)]
    for run in runs:
        config = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
        assert config["runner"]["parallel_jobs"] == EXPECTED_PARALLEL[launcher]

    assert main(["report", str(sweep), "report.print_summary=false"]) == 0
    assert (sweep / "summary.parquet").is_file()
    assert "4 records from 2 run(s)" in (sweep / "report.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("launcher", sorted(PLUGINS))
def test_a_config_error_in_any_job_stops_the_sweep_before_the_first_request(
    launcher: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    launcher_available(launcher)
    monkeypatch.setenv(KEY_ENV, KEY)
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        args = [*sweep_args(launcher, results, "bad"), f"providers.openai.base_url={url}"]
        code = main([*args, "sweep.sizes=[1024x1024],[7x7]"])
        assert emu.submissions == 0
    assert code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench:")]
    assert len(err) == 1 and "sweep.sizes" in err[0]
    assert not (results / "sweeps").exists()


def test_parallel_jobs_follows_the_launcher() -> None:
    basic = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 3}
    submitit = {
        "_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "array_parallelism": 4,
    }
    ray = {"_target_": "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher"}
    assert parallel_jobs(basic, 10) == 1
    assert parallel_jobs(joblib, 10) == 3 and parallel_jobs(joblib, 2) == 2
    assert parallel_jobs(submitit, 10) == 4
    assert parallel_jobs(ray, 10) == 10


def test_limits_are_divided_among_parallel_jobs() -> None:
    hosted = ProviderSettings(name="fal", concurrency=8, requests_per_minute=120.0)
    shared = share_limits(hosted, 4, shared_account=True)
    assert (shared.concurrency, shared.requests_per_minute) == (2, 30.0)
    # More jobs than slots: each keeps one request in flight (the log says the sum is exceeded).
    assert share_limits(hosted, 16, shared_account=True).concurrency == 1
    # An in-process generator's limit is its own device's: not divided.
    local = ProviderSettings(name="diffusers", concurrency=2)
    assert share_limits(local, 4, shared_account=False) == local


@pytest.mark.parametrize(
    ("overrides", "n_jobs", "expected"),
    [
        ([], 5, 1),
        (["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"], 5, 3),
        (["hydra/launcher=submitit_local"], 5, 5),
        (["hydra/launcher=submitit_slurm", "hydra.launcher.array_parallelism=2"], 5, 2),
        (["hydra/launcher=ray"], 5, 5),
    ],
)
def test_parallel_jobs_is_read_from_the_composed_launcher_config(
    overrides: list[str], n_jobs: int, expected: int
) -> None:
    """The plugins' own config nodes (SLURM's included, composed without a cluster) give the share."""
    from bench.cli.launchers import launcher_config, with_parallel_jobs

    if overrides:
        choice = overrides[0].split("=", 1)[1]
        launcher_available("submitit_local" if choice == "submitit_slurm" else choice)  # one plugin, both
    assert parallel_jobs(launcher_config(overrides), n_jobs) == expected
    planned = with_parallel_jobs(["sweep.steps=[4],[8]", *overrides], n_jobs)
    assert planned[-1] == f"runner.parallel_jobs={expected}"
    # A value the user gave wins.
    assert with_parallel_jobs([*overrides, "runner.parallel_jobs=7"], n_jobs)[-1] == "runner.parallel_jobs=7"

"""`bench run -m` on real clusters: a one-node SLURM cluster and a two-node Ray cluster.

The clusters are started by the tests (tests/_clusters.py) and stopped by PID afterwards.
Where the machine cannot start them (not root, packages missing), the tests skip with the
reason; CI runs as root and `make cluster-packages` installs SLURM first.

The recipes of docs/cluster-recipes.md run as written; the other tests check what a user
with a cluster relies on: every job's run folder, a failed job's exit code at the driver,
`bench report` merging the sweep, keys reaching the workers and no file holding them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _clusters import SlurmCluster, loopback_namespace, pid_alive, ray_to_itself, slurm_cluster
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import openai_compat

pytestmark = pytest.mark.slow
RECIPES = Path(__file__).resolve().parents[1] / "docs" / "cluster-recipes.md"
BIN = Path(sys.executable).parent


def recipe(name: str) -> str:
    """The fenced bash block after `<!-- recipe: NAME -->` in docs/cluster-recipes.md."""
    text = RECIPES.read_text(encoding="utf-8")
    found = re.search(rf"<!-- recipe: {name} -->\s*```bash\n(.*?)```", text, re.S)
    assert found, f"no `{name}` recipe in {RECIPES}"
    return found.group(1)


def run_recipe(script: str, cwd: Path, env: dict[str, str], prefix: list[str] | None = None) -> str:
    """Run a recipe with bash -e; background jobs (the emulator) are stopped when it ends."""
    wrapped = f"set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}"
    done = subprocess.run(
        [*(prefix or []), "bash", "-c", wrapped],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    return output


def user_env(**extra: str) -> dict[str, str]:
    """The user's shell: the venv's bin first on PATH, this checkout importable."""
    root = str(Path(__file__).resolve().parents[1])
    path = f"{BIN}:{os.environ.get('PATH', '')}"
    python_path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PATH": path, "PYTHONPATH": python_path, **extra}


def run_folders(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/records.parquet"))


def files_holding(folder: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
    assert not [pid for pid in cluster.pids() if pid_alive(pid)], "SLURM daemons still running"


def sweep_args(results: Path, name: str) -> list[str]:
    return [
        "run",
        "-m",
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=debug",
        "hydra.launcher.timeout_min=20",
        "targets=[aimlapi:flux/schnell]",
        f"providers.aimlapi.api_key_env={KEY_ENV}",
        "prompts.n=2",
        "sweep=quick",
        "metrics=off",
        "report.print_summary=false",
        "runner.progress=off",
        "runner.max_attempts=1",
        f"results_dir={results}",
        f"sweep_name={name}",
    ]


def test_slurm_recipe_runs_as_written(slurm: SlurmCluster, tmp_path: Path) -> None:
    run_recipe(recipe("slurm"), tmp_path, user_env(**slurm.env))
    sweep = tmp_path / "results" / "sweeps" / "slurm-study"
    runs = run_folders(sweep)
    assert len(runs) == 2
    for run in runs:
        assert set(pd.read_parquet(run / "records.parquet").status) == {"ok"}
        assert json.loads((run / "job.json").read_text())["slurm_job_id"]
    assert (sweep / "report.html").is_file()


def test_slurm_sweep_reports_a_failed_job_and_keeps_keys_out_of_files(
    slurm: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in slurm.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(KEY_ENV, KEY)
    results = tmp_path / "results"
    with (
        emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (good, good_emu),
        emulator(openai_compat.create_app(knobs(fault="server_error"), profile="aimlapi")) as (bad, bad_emu),
    ):
        code = main([*sweep_args(results, "s"), f"providers.aimlapi.base_url={good},{bad}"])
        assert good_emu.submissions == 2 and bad_emu.submissions == 2
    assert code == 1  # the job against the failing emulator failed; its code reached the driver

    sweep = results / "sweeps" / "s"
    runs = run_folders(sweep)
    assert sorted(tuple(sorted(set(pd.read_parquet(r / "records.parquet").status))) for r in runs) == [
        ("error",),
        ("ok",),
    ]
    jobs = [json.loads((r / "job.json").read_text()) for r in runs]
    assert all(j["slurm_job_id"] and j["pid"] != os.getpid() for j in jobs)  # ran as SLURM jobs
    assert main(["report", str(sweep), "report.print_summary=false"]) == 0
    assert "4 records from 2 run(s)" in (sweep / "report.html").read_text(encoding="utf-8")
    assert (sweep / ".submitit").is_dir()  # submitit's pickles and logs are among the files searched
    assert files_holding(sweep, KEY) == []


def test_a_slurm_job_without_its_key_fails_naming_the_variable_and_the_node(
    slurm: SlurmCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in slurm.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(KEY_ENV, KEY)
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, emu):
        code = main(
            [
                *sweep_args(results, "nokey"),
                f"providers.aimlapi.base_url={url}",
                "sweep.seeds=[1],[2]",
                f"+hydra.launcher.setup=[unset {KEY_ENV}]",  # a site whose jobs do not get the shell's variables
            ]
        )
        assert emu.submissions == 0
    assert code == 2
    errors = "".join(p.read_text() for p in (results / "sweeps" / "nokey" / ".submitit").rglob("*.err"))
    lines = [line for line in errors.splitlines() if line.startswith("bench:")]
    assert len(lines) == 2
    assert all(KEY_ENV in line and "(job on host" in line and "SLURM job" in line for line in lines)


def test_ray_recipe_runs_on_two_nodes_as_written(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[launchers]')")
    # Ray's session folder, searched for the key below (short: Ray's socket paths must fit 107 bytes)
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    script = recipe("ray").replace("--head ", f"--head --temp-dir={temp} ", 1)
    secret = "sk-recipe-" + os.urandom(8).hex()
    script = script.replace("AIMLAPI_API_KEY=sk-anything", f"AIMLAPI_API_KEY={secret}")
    with ray_to_itself(), loopback_namespace() as inside:
        try:
            run_recipe(script, tmp_path, user_env(), prefix=inside)
        finally:
            subprocess.run([*inside, str(BIN / "ray"), "stop", "--force"], capture_output=True, check=False)
            leftover = subprocess.run(["pgrep", "-f", str(temp)], capture_output=True, text=True).stdout
            secrets_left = files_holding(temp, secret)
            shutil.rmtree(temp, ignore_errors=True)
    sweep = tmp_path / "results" / "sweeps" / "ray-study"
    runs = run_folders(sweep)
    assert len(runs) == 2
    nodes = {json.loads((r / "job.json").read_text())["ray_node_id"] for r in runs}
    assert len(nodes) == 2  # one job on the head, one on the second node (one CPU each)
    for run in runs:
        assert set(pd.read_parquet(run / "records.parquet").status) == {"ok"}  # the key reached the worker
    assert (sweep / "report.html").is_file()
    assert files_holding(sweep, secret) == [] and secrets_left == []
    assert leftover == "", f"Ray processes left running: {leftover}"


def test_bench_score_over_a_sweep_runs_one_job_per_run_folder(tmp_path: Path) -> None:
    """`bench score SWEEP` with a launcher scores every run folder in jobs of their own, resumably."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install -e '.[launchers]'")
    results = tmp_path / "results"
    code = main(
        [
            "run",
            "-m",
            "targets=[local:shapes-fast]",
            "prompts.n=2",
            "sweep=quick",
            "sweep.seeds=[1],[2]",
            "metrics=off",
            "report.write=false",
            "report.print_summary=false",
            "runner.progress=off",
            f"results_dir={results}",
            "sweep_name=sc",
        ]
    )
    assert code == 0
    sweep = results / "sweeps" / "sc"
    scoring = [
        "metrics=test",
        "metrics.fid.enabled=false",
        "metrics.kid.enabled=false",
        f"+metrics.cache_dir={tmp_path / 'embeddings'}",
    ]
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    assert main(["score", str(sweep), *scoring, *launcher]) == 0
    runs = run_folders(sweep)
    assert len(runs) == 2
    for run in runs:
        assert pd.read_parquet(run / "records.parquet").clip_score.notna().all()
    jobs = sorted((sweep / ".score-jobs").glob("*/.hydra"))
    assert len(jobs) == 2  # one scoring job per run folder, through the launcher
    assert run_folders(sweep) == runs  # the jobs' folders are not taken for run folders

"""Hydra behaviour of `bench run`: multirun folders, --cfg job, overrides."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main


def test_multirun_makes_one_run_folder_per_combination(tmp_path: Path) -> None:
    code = main(
        [
            "run",
            "-m",
            "experiment=smoke",
            "prompts.n=2",
            "metrics=off",
            "runner.progress=off",
            f"results_dir={tmp_path}",
            "sweep_name=s",
            "sweep.steps=[4],[8]",
        ]
    )
    assert code == 0
    runs = sorted(p.parent for p in (tmp_path / "sweeps" / "s").glob("*/records.parquet"))
    assert [r.name for r in runs] == [
        "0-experiment=smoke,prompts.n=2,sweep.steps=4",
        "1-experiment=smoke,prompts.n=2,sweep.steps=8",
    ]
    steps = [set(pd.read_parquet(r / "records.parquet").steps) for r in runs]
    assert steps == [{4.0}, {8.0}]


def test_cfg_job_prints_the_resolved_config_and_runs_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--cfg", "job", "experiment=smoke", f"results_dir={tmp_path}"]) == 0
    out = capsys.readouterr().out
    assert "targets:" in out and "- local:shapes-fast" in out and "steps:\n  - 4" in out
    assert list(tmp_path.iterdir()) == []

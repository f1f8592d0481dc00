"""`bench score SWEEP_FOLDER`: score every run folder of a sweep, one job per run folder.

Scoring a 10k-image sweep on a CPU is the slow step (preference models are ViT-H). Given a
sweep folder, `bench score` scores its run folders one after another in this process; given
a Hydra launcher as well (`hydra/launcher=joblib hydra.launcher.n_jobs=2`, `submitit_slurm`,
`ray`), it sends one scoring job per run folder through that launcher, as `bench run -m`
sends runs, and exits with the worst job's code. Scores are cached per image (content hash
and model fingerprint), so an interrupted pass resumes where it stopped.

Each job refreshes its run folder's summary.parquet and report.html (as `bench score RUN`
does); the sweep folder's own summary and report, which `bench report SWEEP` made, are
refreshed at the end when they exist, so none is left older than the scores.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.cli import cluster_env
from bench.cli.exit_codes import EXIT_OK

SCORE_JOB_KEY = "+score_job"


def run_folders(sweep: Path) -> list[Path]:
    return sorted(p.parent for p in sweep.glob("*/records.parquet"))


def is_sweep_folder(path: Path) -> bool:
    return path.is_dir() and not (path / "records.parquet").is_file() and bool(run_folders(path))


class ScoreJob:
    """The task of one scoring job: the run folder with index `score_job` (picklable for launchers).

    `jobs_per_machine` jobs share one machine's cores: each takes its share of torch threads, so
    two jobs on 2 cores run 1 thread each instead of 2 each, fighting over the cores.
    """

    def __init__(self, runs: list[Path], jobs_per_machine: int = 1) -> None:
        self.runs = [str(r) for r in runs]
        self.jobs_per_machine = jobs_per_machine

    def __call__(self, cfg: Any) -> int:
        from omegaconf import OmegaConf

        from bench.cli.commands import score
        from bench.metrics.device import job_threads

        threads = job_threads(self.jobs_per_machine)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)

        container = OmegaConf.to_container(cfg, resolve=True)
        assert isinstance(container, dict)
        run = Path(self.runs[int(container["score_job"])])
        return score(
            run,
            container.get("metrics") or {},
            container.get("providers") or {},
            container.get("report") or {},
            max_cost_usd=container.get("max_cost_usd"),
        )


def score_sweep(sweep: Path, overrides: list[str]) -> int:
    """Score each run folder of `sweep`; through the launcher when the overrides name one."""
    from bench.cli.commands import score
    from bench.cli.hydra_config import compose_config
    from bench.cli.launchers import jobs_per_machine, launcher_config
    from bench.cli.multirun import launch

    runs = run_folders(sweep)
    launcher = [o for o in overrides if o.lstrip("+~").startswith("hydra")]
    if not launcher:
        cfg = compose_config(overrides)
        report_cfg = cfg.get("report") or {}
        cap = cfg.get("max_cost_usd")
        codes = [
            score(run, cfg.get("metrics") or {}, cfg.get("providers") or {}, report_cfg, max_cost_usd=cap)
            for run in runs
        ]
        return max(max(codes, default=EXIT_OK), refresh_sweep_report(sweep, report_cfg))
    jobs = ",".join(str(i) for i in range(len(runs)))
    cfg = compose_config([o for o in overrides if o not in launcher])
    outcomes = launch(
        [
            *overrides,
            f"{SCORE_JOB_KEY}={jobs}",
            f"hydra.sweep.dir={sweep / '.score-jobs'}",
            "hydra.sweep.subdir=${hydra.job.num}",
        ],
        key_names=cluster_env.key_names(
            (), cluster_env.judge_key_env(cfg.get("metrics"), cfg.get("providers"))
        ),
        task_function=ScoreJob(runs, jobs_per_machine(launcher_config(launcher), len(runs))),
    )
    failed = [(label, code) for label, code in outcomes if code != EXIT_OK]
    for label, code in failed:
        print(f"bench: scoring job {label} exited {code}", file=sys.stderr)
    print(f"scored {len(runs)} run folder(s) in {len(outcomes)} job(s); {len(failed)} failed")
    refreshed = refresh_sweep_report(sweep, cfg.get("report") or {})
    return max(max((code for _, code in failed), default=EXIT_OK), refreshed)


def refresh_sweep_report(sweep: Path, report_cfg: Mapping[str, Any]) -> int:
    """Rewrite the sweep folder's own summary.parquet and report.html if they exist (made by
    `bench report SWEEP`; `bench run -m` does not make them, so neither does this)."""
    from bench.report.build import REPORT_FILE
    from bench.report.summary import SUMMARY_FILE

    if not report_cfg.get("write", True):
        return EXIT_OK
    if not ((sweep / SUMMARY_FILE).is_file() or (sweep / REPORT_FILE).is_file()):
        return EXIT_OK
    from bench.cli.commands import write_report_after_scoring

    return write_report_after_scoring(sweep, report_cfg)

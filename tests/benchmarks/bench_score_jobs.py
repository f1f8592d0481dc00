"""Scoring a sweep: one process against one job per run folder through a launcher, in the same run.

    .venv/bin/python tests/benchmarks/bench_score_jobs.py [--runs 2] [--repeats 4] [--jobs 2]

Makes a sweep of `--runs` run folders on the offline `local` provider (the 12-prompt project
suite, `--repeats` images per prompt, 1024x1024 PNGs), then scores it twice from an empty embedding cache: `bench score SWEEP` (run folders
one after another in one process) and `bench score SWEEP hydra/launcher=joblib
hydra.launcher.n_jobs=JOBS` (one job per run folder). CLIP is a random-init ViT-B-32 (no
weights offline; the arithmetic is the same as with real weights), FID/KID off. Prints
images/s for each, the ratio, and the CPU seconds the processes used (on a machine shared
with other work, wall time also measures the others' load; CPU time shows what the extra
processes cost); asserts nothing about time.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = [str(Path(sys.executable).parent / "bench")]


def bench(*args: str) -> None:
    subprocess.run([*BENCH, *args], check=True, capture_output=True, text=True)


def _children_cpu_s() -> float:
    """User + system CPU seconds of the finished child processes (and theirs, once waited for)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        seeds = ",".join(f"[{i + 1}]" for i in range(args.runs))
        bench(
            "run", "-m", "targets=[local:shapes-fast]", "sweep=quick", f"sweep.repeats={args.repeats}",
            f"sweep.seeds={seeds}", "metrics=off", "report.write=false", "report.print_summary=false",
            "runner.progress=off", f"results_dir={results}", "sweep_name=b",
        )  # fmt: skip
        sweep = results / "sweeps" / "b"
        import pandas as pd

        images = sum(len(pd.read_parquet(p)) for p in sweep.glob("*/records.parquet"))
        timings: dict[str, float] = {}
        for label, launcher in (
            ("one process", []),
            (f"{args.jobs} joblib jobs", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"]),
        ):
            cache = Path(tmp) / f"embeddings-{len(timings)}"
            scoring = ["metrics=test", "metrics.fid.enabled=false", "metrics.kid.enabled=false"]
            start, cpu = time.perf_counter(), _children_cpu_s()
            bench("score", str(sweep), *scoring, f"+metrics.cache_dir={cache}", *launcher)
            timings[label] = time.perf_counter() - start
            print(
                f"{label:>16}: {timings[label]:6.1f} s  {images / timings[label]:6.2f} images/s"
                f"  ({_children_cpu_s() - cpu:.1f} CPU s)"
            )
        one, many = timings.values()
        print(f"speed-up of {args.jobs} jobs over one process: {one / many:.2f}x ({images} images)")


if __name__ == "__main__":
    main()

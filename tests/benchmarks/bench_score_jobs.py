"""Scoring a sweep: one process against one job per run folder through a launcher, in the same run.

    .venv/bin/python tests/benchmarks/bench_score_jobs.py [--runs 2] [--prompts 24] [--jobs 2]

Makes a sweep of `--runs` run folders on the offline `local` provider (`--prompts` images
each), then scores it twice from an empty embedding cache: `bench score SWEEP` (run folders
one after another in one process) and `bench score SWEEP hydra/launcher=joblib
hydra.launcher.n_jobs=JOBS` (one job per run folder). CLIP is a random-init ViT-B-32 (no
weights offline; the arithmetic is the same as with real weights), FID/KID off. Prints
images/s for each and the ratio; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = [str(Path(sys.executable).parent / "bench")]


def bench(*args: str) -> None:
    subprocess.run([*BENCH, *args], check=True, capture_output=True, text=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--prompts", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        seeds = ",".join(f"[{i + 1}]" for i in range(args.runs))
        bench(
            "run", "-m", "targets=[local:shapes-fast]", f"prompts.n={args.prompts}", "sweep=quick",
            f"sweep.seeds={seeds}", "metrics=off", "report.write=false", "report.print_summary=false",
            "runner.progress=off", f"results_dir={results}", "sweep_name=b",
        )  # fmt: skip
        sweep = results / "sweeps" / "b"
        images = args.runs * args.prompts
        timings: dict[str, float] = {}
        for label, launcher in (
            ("one process", []),
            (f"{args.jobs} joblib jobs", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.jobs}"]),
        ):
            cache = Path(tmp) / f"embeddings-{len(timings)}"
            scoring = ["metrics=test", "metrics.fid.enabled=false", "metrics.kid.enabled=false"]
            start = time.perf_counter()
            bench("score", str(sweep), *scoring, f"+metrics.cache_dir={cache}", *launcher)
            timings[label] = time.perf_counter() - start
            print(f"{label:>16}: {timings[label]:6.1f} s  {images / timings[label]:6.2f} images/s")
        one, many = timings.values()
        print(f"speed-up of {args.jobs} jobs over one process: {one / many:.2f}x ({images} images)")


if __name__ == "__main__":
    main()

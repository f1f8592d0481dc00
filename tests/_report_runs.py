"""Small real runs for the report, gate, notebook and browser tests, made once per test session.

Runs go through the `bench` CLI in a subprocess (as CI and users call it). Each distinct run
(name, targets, options) is made once per session (per pytest-xdist worker) in a folder of
its own, and every module that asks for it gets a copy in its own folder, which it may change
freely. A dozen modules ask for the same few runs; each `bench run` costs some ten seconds.
Quality is
scored by a test oracle, not CLIP: no CLIP weights exist offline, and random-init CLIP
scores carry no signal, so a planted colour drop could not show in them. The oracle is
100 x mean HSV saturation, written into clip_score under its own fingerprint
("test-oracle:saturation"), so the gate's logic is exercised on a metric that does
respond to the planted defect (a variant that draws every colour gray).
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())"]
ORACLE_FP = "test-oracle:saturation:0000"
SWEEP = [
    "sweep=default",
    "sweep.steps=[4]",
    "sweep.guidance=[2.0]",
    "sweep.seeds=[0,1]",
    'sweep.sizes=["128x128"]',
    "metrics=off",
    "report.print_summary=false",
    "report.n_boot=200",
]
BASE_TARGETS = "targets=[local:shapes-fast,local:shapes-quality]"
NOCOLOR_TARGETS = 'targets=[{target:"local:shapes-nocolor",name:"local:shapes-fast"},local:shapes-quality]'
SLOW_TARGETS = (
    'targets=[{target:"local:shapes-fast",name:"local:shapes-fast",params:{extra_latency_s:0.3}},'
    "local:shapes-quality]"
)
# (name, targets, extra overrides, scored) -> the untouched run folder, copied for each caller.
_made: dict[tuple[str, str, tuple[str, ...], bool], Path] = {}
_made_root: list[Path] = []


def bench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*BENCH, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def bench_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`bench ARGS` called in this process: the same code, exit code and printed output as the
    `bench` command, without a new interpreter's seconds of imports per call. Each module keeps
    real `bench(...)` subprocesses for the exit codes it is about; this serves the other calls.
    Log lines are not in its stderr (pytest's log capture holds the root logger)."""
    from bench.cli.main import main

    capsys.readouterr()  # what the test printed before is not this command's output
    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(["bench", *args], code, out.out, out.err)


def oracle_score(run_dir: Path) -> None:
    path = run_dir / "records.parquet"
    df = pd.read_parquet(path)
    scores = []
    for status, rel in zip(df["status"], df["image_path"], strict=True):
        if status != "ok" or not isinstance(rel, str):
            scores.append(np.nan)
            continue
        with Image.open(run_dir / rel) as im:
            sat = np.asarray(im.convert("RGB").convert("HSV"))[..., 1]
        scores.append(100.0 * float(sat.mean()) / 255.0)
    df["clip_score"] = scores
    df["clip_fingerprint"] = [ORACLE_FP if not np.isnan(s) else None for s in scores]
    df.to_parquet(path, index=False)


def _session_root() -> Path:
    if not _made_root:
        root = Path(tempfile.mkdtemp(prefix="t2i-bench-runs-"))
        atexit.register(shutil.rmtree, root, True)
        _made_root.append(root)
    return _made_root[0]


def make_run(root: Path, name: str, targets: str = BASE_TARGETS, *extra: str, score: bool = True) -> Path:
    """A scored run `root/name`: a copy of the run made once per session with these arguments.

    A second call with the same root and name returns the folder as the caller left it.
    """
    run_dir = root / name
    if run_dir.is_dir():
        return run_dir
    key = (name, targets, extra, score)
    if key not in _made:
        made_in = _session_root() / str(len(_made))
        proc = bench("run", targets, *SWEEP, f"results_dir={made_in}", f"run_name={name}", *extra)
        assert proc.returncode == 0, proc.stderr[-2000:]
        if score:
            oracle_score(made_in / name)
        _made[key] = made_in / name
    shutil.copytree(_made[key], run_dir, symlinks=True)
    return run_dir


PRICED_STUDY_PRICES = (
    'prices.entries=[{provider:local,model:"shapes-quality",unit:image,usd:0.04,effective_date:"2026-12-06",'
    'source_url:"test price"},{provider:local,model:"*",unit:image,usd:0.002,effective_date:"2026-12-06",'
    'source_url:"test price"}]'
)
_recommended: set[Path] = set()


def make_priced_study(base: Path) -> Path:
    """A study with a verdict, made once per session under `base` (tmp_path_factory.getbasetemp()):
    shapes-nocolor ($2/1k, every colour gray, labelled local:shapes-fast) against shapes-quality
    ($40/1k), scored by the oracle, then `bench recommend` (verdict.json). Copy it before voting."""
    run = make_run(base / "priced-study", "study", NOCOLOR_TARGETS, PRICED_STUDY_PRICES)
    if run not in _recommended:
        from bench.cli.main import main  # in-process: one interpreter start less

        assert main(["recommend", str(run), "report.n_boot=200"]) in (0, 1)
        assert (run / "verdict.json").is_file()
        _recommended.add(run)
    return run

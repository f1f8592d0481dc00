"""The CI recipe in docs/gate-checks.md, run as written against the OpenAI emulator on 127.0.0.1.

The emulator counts what reaches it: the recipe's candidate (cache.mode=off) sends every request
and the gate's verdict is a measurement; the old recipe shape (candidate in the baseline's
results_dir, cache on) sends nothing and the gate says NOT MEASURED in its first line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from _provider_harness import emulator, knobs

from bench.emulators import openai_compat

DOCS = Path(__file__).resolve().parents[1] / "docs" / "gate-checks.md"
N_PROMPTS = 12


def recipe() -> str:
    blocks = re.findall(r"```bash\n(# ci-gate recipe\n.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, (
        "docs/gate-checks.md must hold one ```bash block starting with '# ci-gate recipe'"
    )
    return blocks[0]


def run_bash(script: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "EMULATOR_URL": url,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("OPENAI_API_KEY", None)
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_the_documented_recipe_measures_and_the_old_shape_is_not_measured(tmp_path: Path) -> None:
    script = recipe()
    assert "cache.mode=off" in script
    with emulator(openai_compat.create_app(knobs(inference_s=(0.01, 0.02)), profile="openai")) as (url, emu):
        proc = run_bash(script, tmp_path, url)  # `bench compare` is last: its exit code is the job's
        sent_by_recipe = emu.submissions
        old = tmp_path / "old"
        old.mkdir()
        old_shape = script.replace(" cache.mode=off", "")
        assert old_shape != script
        first = run_bash(old_shape, old, url)
        sent_by_old = emu.submissions - sent_by_recipe
    # The recipe: baseline and candidate each sent all 12 requests to the emulator.
    assert sent_by_recipe == 2 * N_PROMPTS, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout.splitlines()
    verdict = next(line for line in out if re.match(r"(PASS|REGRESSION|NOT MEASURED|FAIL)\b", line))
    data = json.loads((tmp_path / "gate-out" / "gate.json").read_text())
    assert data["n_measured"] == data["n_pairs"] == N_PROMPTS
    assert data["verdict"] in ("PASS", "REGRESSION") and verdict.startswith(data["verdict"])
    assert proc.returncode == data["exit_code"]
    # Latency on a loaded shared machine may differ between the two runs; nothing else may fail.
    assert {c["metric"] for c in data["checks"] if c["status"] == "FAIL"} <= {"latency_p50", "latency_p90"}
    # The old shape: the candidate was answered by the response cache (the baseline's answers).
    assert sent_by_old == N_PROMPTS  # the baseline only
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    lines = first.stdout.splitlines()
    verdicts = [line for line in lines if re.match(r"(PASS|REGRESSION|NOT MEASURED|FAIL)\b", line)]
    assert verdicts[0].startswith("NOT MEASURED: too few live pairs for openai:gpt-image-2 (0 of 12)")
    assert json.loads((old / "gate-out" / "gate.json").read_text())["verdict"] == "NOT MEASURED"

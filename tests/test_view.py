"""`bench view` without a browser: bad input is one line and exit 2; the drops ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from _report_runs import bench

from bench.view.app import LoadedRun, quality_drops


def test_bad_paths_are_one_line_exit_2(tmp_path: Path) -> None:
    missing = bench("view", str(tmp_path / "nope"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "does not exist" in missing.stderr
    three = bench("view", str(tmp_path), str(tmp_path), str(tmp_path))
    assert three.returncode == 2 and "give one, or two" in three.stderr


def _run(label: str, scores: dict[str, float]) -> LoadedRun:
    rows = [
        {"group": "t steps=4", "prompt_id": pid, "prompt": f"prompt {pid}", "status": "ok", "clip_score": s,
         "image_relpath": f"images/{pid}.png"}
        for pid, s in scores.items()
    ]  # fmt: skip
    rows.append({"group": "t steps=4", "prompt_id": "px", "prompt": "x", "status": "error", "clip_score": np.nan,
                 "image_relpath": None})  # fmt: skip
    return LoadedRun(label, Path("."), pd.DataFrame(rows))


def test_quality_drops_rank_the_biggest_fall_first() -> None:
    a = _run("A", {"p1": 30.0, "p2": 30.0, "p3": 30.0})
    b = _run("B", {"p1": 29.0, "p2": 10.0, "p3": 31.0})
    drops = quality_drops(a, b)
    assert [d["prompt_id"] for d in drops] == ["p2", "p1", "p3"]
    assert drops[0]["delta"] == -20.0 and drops[0]["image_b"] == "images/p2.png"

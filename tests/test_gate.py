"""The regression gate: passes a re-run, fails planted regressions, refuses unusable input (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_runs import NOCOLOR_TARGETS, SLOW_TARGETS, bench, bench_in_process, make_run

from bench.gate import GateConfig, compare

# Latencies measured on a shared machine vary with its load (a loaded one runs 3x slower), so a
# latency verdict on two real runs would depend on the machine. The runs below are real, but
# their latencies are then set from the baseline's paired records: equal for the re-runs, and
# a planted 2x + 0.3 s rise on the slow target. The gate's latency logic is then tested on
# numbers that cannot move with the machine.
_PAIR = ["target", "prompt_id", "seed", "image_index"]
PLANTED_SLOW_TARGET = "local:shapes-fast"


def _set_latencies_from(base: Path, run: Path, slow_target: str | None = None) -> None:
    base_df = pd.read_parquet(base / "records.parquet")[[*_PAIR, "latency_s"]]
    path = run / "records.parquet"
    df = pd.read_parquet(path)
    merged = df[_PAIR].merge(base_df, on=_PAIR, how="left", validate="one_to_one")
    latency = merged["latency_s"].to_numpy(float, copy=True)
    if slow_target is not None:
        slow = (df["target"] == slow_target).to_numpy()
        latency[slow] = 2.0 * latency[slow] + 0.3
    df["latency_s"] = latency
    df.to_parquet(path, index=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gate_runs")
    made = {
        "base": make_run(root, "base"),
        "again": make_run(root, "again"),
        "nocolor": make_run(root, "nocolor", NOCOLOR_TARGETS),
        "slow": make_run(root, "slow", SLOW_TARGETS),
    }
    for name in ("again", "nocolor"):
        _set_latencies_from(made["base"], made[name])
    _set_latencies_from(made["base"], made["slow"], PLANTED_SLOW_TARGET)
    return made


# The exit codes through a real `bench compare` process: test_same_sweep_twice_passes (0),
# test_planted_quality_drop_fails (1) and test_mismatched_fingerprints_refused (2). The other
# tests call it in this process (bench_in_process), which runs the same code.


def _checks(result_json: dict[str, object], metric: str) -> dict[str, dict[str, object]]:
    checks = result_json["checks"]
    assert isinstance(checks, list)
    return {c["target"]: c for c in checks if c["metric"] == metric}


def test_same_sweep_twice_passes(runs: dict[str, Path], tmp_path: Path) -> None:
    proc = bench("compare", str(runs["base"]), str(runs["again"]), f"gate.output_dir={tmp_path}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout.splitlines()[-1]
    data = json.loads((tmp_path / "gate.json").read_text())
    assert data["verdict"] == "PASS" and data["n_pairs"] == 48
    clip = _checks(data, "clip")["local:shapes-fast"]
    assert clip["status"] == "pass" and clip["delta"] == pytest.approx(0.0, abs=1e-9)
    md = (tmp_path / "gate.md").read_text()
    assert md.startswith("## ✅ t2i-bench gate: PASS") and "| local:shapes-fast | CLIP score |" in md


def test_planted_quality_drop_fails(runs: dict[str, Path], tmp_path: Path) -> None:
    proc = bench("compare", str(runs["base"]), str(runs["nocolor"]), f"gate.output_dir={tmp_path}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("REGRESSION") and "local:shapes-fast CLIP score" in last
    data = json.loads((tmp_path / "gate.json").read_text())
    clip = _checks(data, "clip")
    assert clip["local:shapes-fast"]["status"] == "FAIL"
    assert clip["local:shapes-fast"]["high"] < -0.5  # the rule: upper bound below -max_drop
    assert clip["local:shapes-quality"]["status"] == "pass"  # the untouched target is not blamed
    assert (tmp_path / "gate.md").read_text().startswith("## ❌ t2i-bench gate: REGRESSION")


def test_planted_latency_rise_fails(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = bench_in_process(
        capsys, "compare", str(runs["base"]), str(runs["slow"]), f"gate.output_dir={tmp_path}"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "gate.json").read_text())
    p90 = _checks(data, "latency_p90")["local:shapes-fast"]
    assert p90["status"] == "FAIL" and p90["low"] > 0.20
    assert _checks(data, "clip")["local:shapes-fast"]["status"] == "pass"


def test_relaxed_threshold_override_passes_latency(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = bench_in_process(
        capsys,
        "compare",
        str(runs["base"]),
        str(runs["slow"]),
        "gate.latency.max_rise_p90=1000",
        f"gate.output_dir={tmp_path}",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _with_fingerprint(src: Path, dst: Path, fp: str) -> Path:
    shutil.copytree(src, dst)
    df = pd.read_parquet(dst / "records.parquet")
    df["clip_fingerprint"] = [fp if isinstance(f, str) else None for f in df["clip_fingerprint"]]
    df.to_parquet(dst / "records.parquet", index=False)
    return dst


def test_mismatched_fingerprints_refused(runs: dict[str, Path], tmp_path: Path) -> None:
    real = _with_fingerprint(runs["again"], tmp_path / "real", "clip:ViT-B-32:openai:0123456789abcdef")
    rand = _with_fingerprint(runs["base"], tmp_path / "rand", "clip:ViT-B-32:random-init:random-init:fedcba")
    proc = bench("compare", str(rand), str(real))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench compare: unusable input:")
    assert "refusing to average or compare" in lines[0] and "RANDOM-INIT" in lines[0]
    assert not (real / "gate.json").exists()


def test_unusable_inputs_exit_2(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = bench_in_process(capsys, "compare", str(runs["base"]), str(tmp_path / "nope"))
    assert missing.returncode == 2 and "candidate" in missing.stderr and "does not exist" in missing.stderr
    other = shutil.copytree(runs["again"], tmp_path / "other")
    df = pd.read_parquet(other / "records.parquet")
    df["prompt_id"] = "x-" + df["prompt_id"]
    df.to_parquet(other / "records.parquet", index=False)
    unpaired = bench_in_process(capsys, "compare", str(runs["base"]), str(other))
    assert unpaired.returncode == 2 and "nothing paired" in unpaired.stderr
    unscored = shutil.copytree(runs["again"], tmp_path / "unscored")
    df = pd.read_parquet(unscored / "records.parquet")
    df["clip_score"], df["clip_fingerprint"] = np.nan, None
    df.to_parquet(unscored / "records.parquet", index=False)
    half = bench_in_process(capsys, "compare", str(runs["base"]), str(unscored))
    assert half.returncode == 2 and "has none" in half.stderr


def test_unknown_cost_is_unknown_not_pass(runs: dict[str, Path], tmp_path: Path) -> None:
    cand = shutil.copytree(runs["again"], tmp_path / "unpriced")
    df = pd.read_parquet(cand / "records.parquet")
    df.loc[df["target"] == "local:shapes-fast", "cost_usd"] = np.nan
    df.to_parquet(cand / "records.parquet", index=False)
    result = compare(runs["base"], cand, GateConfig())
    cost = {c.target: c for c in result.checks if c.metric == "cost_per_image"}
    assert cost["local:shapes-fast"].status == "unknown" and np.isnan(cost["local:shapes-fast"].delta)
    assert cost["local:shapes-quality"].status == "pass"
    assert result.exit_code == 0


def test_refusal_rise_is_significant_only_with_enough_discordant_pairs(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    cand = shutil.copytree(runs["again"], tmp_path / "refusing")
    df = pd.read_parquet(cand / "records.parquet")
    fast = df.index[df["target"] == "local:shapes-fast"]
    df.loc[fast[:2], "status"] = "refused"  # 2 discordant pairs: p = 0.25, not significant
    df.to_parquet(cand / "records.parquet", index=False)
    few = {
        c.target: c for c in compare(runs["base"], cand, GateConfig()).checks if c.metric == "refusal_rate"
    }
    assert few["local:shapes-fast"].status == "pass"
    df.loc[fast[:12], "status"] = "refused"  # 12 of 24: p = 2^-12
    df.to_parquet(cand / "records.parquet", index=False)
    result = compare(runs["base"], cand, GateConfig())
    many = {c.target: c for c in result.checks if c.metric == "refusal_rate"}
    assert many["local:shapes-fast"].status == "FAIL" and many["local:shapes-fast"].delta == pytest.approx(
        0.5
    )
    assert result.exit_code == 1


def test_retries_fail_the_gate_when_the_ok_rate_cannot_see_them(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    # Half the requests met a 5xx and succeeded on the retry: the ok rate stays 100%.
    cand = shutil.copytree(runs["again"], tmp_path / "retrying")
    df = pd.read_parquet(cand / "records.parquet")
    fast = df.index[df["target"] == "local:shapes-fast"]
    retried = fast[::2]  # 12 of 24 requests needed a second attempt
    df.loc[retried, "attempts"] = 2
    df.to_parquet(cand / "records.parquet", index=False)
    result = compare(runs["base"], cand, GateConfig())
    by = {(c.target, c.metric): c for c in result.checks}
    assert by[("local:shapes-fast", "ok_rate")].status == "pass"
    rate, att = by[("local:shapes-fast", "retry_rate")], by[("local:shapes-fast", "mean_attempts")]
    assert rate.status == "FAIL" and rate.delta == pytest.approx(0.5) and rate.low > 0.05
    assert att.status == "FAIL" and att.delta == pytest.approx(0.5) and att.low > 0.10
    assert by[("local:shapes-quality", "retry_rate")].status == "pass"
    assert result.exit_code == 1


def test_gate_md_leads_with_the_verdict_and_only_the_failing_checks(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = bench_in_process(
        capsys, "compare", str(runs["base"]), str(runs["nocolor"]), f"gate.output_dir={tmp_path}"
    )
    assert proc.returncode == 1
    md = (tmp_path / "gate.md").read_text()
    lines = md.splitlines()
    assert lines[0] == "## ❌ t2i-bench gate: REGRESSION"
    assert lines[2].startswith("**REGRESSION: ") and "local:shapes-fast CLIP score" in lines[2]
    head, sep, folded = md.partition("<details>")
    assert sep and folded.rstrip().endswith("</details>")
    failing_rows = [r for r in head.splitlines() if r.startswith("| ") and not r.startswith("| target")]
    data = json.loads((tmp_path / "gate.json").read_text())
    failed = [c for c in data["checks"] if c["status"] == "FAIL"]
    assert len(failing_rows) == len(failed) >= 1 and all(r.endswith("| FAIL |") for r in failing_rows)
    full_rows = [r for r in folded.splitlines() if r.startswith("| ") and not r.startswith("| target")]
    assert len(full_rows) == len(data["checks"]) > len(failed)  # gate.json and the fold keep every check
    assert {"retry_rate", "mean_attempts"} <= {c["metric"] for c in data["checks"]}
    passing = bench_in_process(
        capsys, "compare", str(runs["base"]), str(runs["again"]), f"gate.output_dir={tmp_path}"
    )
    md = (tmp_path / "gate.md").read_text()
    assert passing.returncode == 0 and "Failing checks" not in md
    assert md.index("**PASS") < md.index("<details>")


def _first_line(proc: object) -> str:
    out = getattr(proc, "stdout", "")
    assert isinstance(out, str) and out, proc
    return out.splitlines()[0]


def test_replayed_candidate_answers_are_not_measured_in_line_one(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 5 of the fast target's 24 pairs replayed (79% live, below 90%): NOT MEASURED, first line, exit 1.
    cand = shutil.copytree(runs["again"], tmp_path / "replayed")
    df = pd.read_parquet(cand / "records.parquet")
    fast = df.index[df["target"] == "local:shapes-fast"]
    df.loc[fast[:5], "cached"] = True
    df.to_parquet(cand / "records.parquet", index=False)
    proc = bench_in_process(capsys, "compare", str(runs["base"]), str(cand), f"gate.output_dir={tmp_path}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first = _first_line(proc)
    assert first.startswith(
        "NOT MEASURED: too few live pairs for local:shapes-fast (19 of 24): need 90% per target"
    )
    assert "local:shapes-quality" not in first  # fully live: not blamed
    data = json.loads((tmp_path / "gate.json").read_text())
    assert data["verdict"] == "NOT MEASURED" and data["exit_code"] == 1 and data["n_measured"] == 43
    md = (tmp_path / "gate.md").read_text().splitlines()
    assert md[0] == "## ❌ t2i-bench gate: NOT MEASURED" and md[2].startswith("**NOT MEASURED")
    # A lower bar passes, and the checks then use only the live pairs.
    lower = bench_in_process(
        capsys,
        "compare",
        str(runs["base"]),
        str(cand),
        "--min-measured",
        "0.75",
        f"gate.output_dir={tmp_path}",
    )
    assert lower.returncode == 0 and _first_line(lower).startswith("PASS"), lower.stdout + lower.stderr
    data = json.loads((tmp_path / "gate.json").read_text())
    assert _checks(data, "clip")["local:shapes-fast"]["n_pairs"] == 19
    # Every answer replayed: nothing is measured, whatever the bar.
    df["cached"] = True
    df.to_parquet(cand / "records.parquet", index=False)
    none = bench_in_process(
        capsys, "compare", str(runs["base"]), str(cand), "--min-measured", "0", f"gate.output_dir={tmp_path}"
    )
    assert (
        none.returncode == 1
        and _first_line(none).startswith("NOT MEASURED")
        and "0 of 48 in all" in none.stdout
    ), none.stdout


def test_baseline_target_without_counterpart_fails_in_line_one(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cand = shutil.copytree(runs["again"], tmp_path / "one_target")
    df = pd.read_parquet(cand / "records.parquet")
    df[df["target"] == "local:shapes-fast"].to_parquet(cand / "records.parquet", index=False)
    proc = bench_in_process(capsys, "compare", str(runs["base"]), str(cand), f"gate.output_dir={tmp_path}")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    first = _first_line(proc)
    assert first.startswith("FAIL: 1 baseline target(s) have no candidate counterpart: local:shapes-quality")
    assert json.loads((tmp_path / "gate.json").read_text())["missing_targets"] == ["local:shapes-quality"]
    allowed = bench_in_process(
        capsys,
        "compare",
        str(runs["base"]),
        str(cand),
        f"gate.output_dir={tmp_path}",
        "--allow-missing",
        "local:shapes-quality",
    )
    assert allowed.returncode == 0 and _first_line(allowed).startswith("PASS"), (
        allowed.stdout + allowed.stderr
    )
    assert any(
        "allowed by --allow-missing: local:shapes-quality" in line for line in allowed.stdout.splitlines()
    )
    by_config = bench_in_process(capsys, "compare", str(runs["base"]), str(cand),
                           "gate.allow_missing=[local:shapes-quality]", f"gate.output_dir={tmp_path}")  # fmt: skip
    assert by_config.returncode == 0, by_config.stdout + by_config.stderr
    misplaced = bench_in_process(
        capsys, "compare", str(runs["base"]), str(cand), "--allow-missing", "x", "gate.seed=1"
    )
    assert misplaced.returncode == 2 and "--allow-missing gate.seed=1" in misplaced.stderr


def test_terminal_table_fits_120_columns_and_gate_md_keeps_the_full_table(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = bench_in_process(
        capsys, "compare", str(runs["base"]), str(runs["nocolor"]), f"gate.output_dir={tmp_path}"
    )
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("REGRESSION") and lines[-1].startswith("REGRESSION")
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    data = json.loads((tmp_path / "gate.json").read_text())
    md = (tmp_path / "gate.md").read_text()
    assert "| target | check | baseline | candidate | delta [CI] | pairs | rule | status |" in md
    assert all(c["rule"] in md for c in data["checks"])  # the rules live in gate.md


def test_gate_md_names_the_candidate_recommendation(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = tmp_path / "candidate"
    shutil.copytree(runs["nocolor"], candidate)
    (candidate / "verdict.json").unlink(missing_ok=True)
    out = tmp_path / "out"
    bench_in_process(capsys, "compare", str(runs["base"]), str(candidate), f"gate.output_dir={out}")
    assert "decision:" not in (out / "gate.md").read_text()  # no verdict.json: nothing claimed
    rec = bench_in_process(capsys, "recommend", str(candidate))
    assert rec.returncode == 0, rec.stdout + rec.stderr
    verdict = json.loads((candidate / "verdict.json").read_text())
    bench_in_process(capsys, "compare", str(runs["base"]), str(candidate), f"gate.output_dir={out}")
    md = (out / "gate.md").read_text().splitlines()
    line = f"decision: {verdict['recommended']} recommended (CLIP, margin {verdict['margin']:g})"
    assert line in md[:6], md[:6]  # right under the gate's own verdict
    assert json.loads((out / "gate.json").read_text())["decision"] == line

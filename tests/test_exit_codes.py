"""Exit codes are part of the interface: 0 only when the command did what was asked.

Runs go to real servers on 127.0.0.1 (a scripted OpenAI-shaped server, or a port where
nothing listens, standing in for "sent to a host that does not answer").
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scripted_server import Answer, paid_config, scripted

import bench.runner
from bench.cli import hydra_config, main
from bench.cli.run import execute_run
from bench.config import RunnerSettings
from bench.runner import backoff_delay_s

KEY = "sk-test-0123456789abcdef"
BAD_REQUEST = Answer(400, {}, {"error": {"message": "bad size", "code": "invalid_parameter"}})


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2I_TEST_PAID_KEY", KEY)


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet")


# ---- bench run: all failed, error share ----------------------------------------------------


def test_a_run_whose_every_request_failed_exits_1_naming_the_error_type(
    bench_cfg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As when no base_url was set and every request went to a host that does not answer.
    cfg = paid_config(bench_cfg, f"http://127.0.0.1:{closed_port()}", "prompts.n=3")
    cfg["runner"]["max_attempts"] = 2
    assert execute_run(cfg, tmp_path / "run") == 1
    err = capsys.readouterr().err
    assert "run failed: no request succeeded (3 ended in error); top error types: transport 3" in err
    assert KEY not in err
    df = records(tmp_path / "run")
    assert (df.status == "error").all() and (df.error_type == "transport").all()


def test_cli_run_against_an_unanswering_host_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            "+providers.paid={adapter: openai_compat, api_key_env: T2I_TEST_PAID_KEY,"
            f" base_url: 'http://127.0.0.1:{closed_port()}', options: {{profile: openai}}}}",
            "targets=[paid:dall-e-3]",
            "sweep=quick",
            "prompts.n=2",
            "metrics=off",
            "runner.progress=off",
            "runner.max_attempts=1",
            f"results_dir={tmp_path}",
            "run_name=r",
        ]
    )
    assert code == 1
    assert "top error types: transport 2" in capsys.readouterr().err


@pytest.mark.parametrize(("max_error_rate", "expected"), [(0.5, 1), (0.8, 0)])
def test_error_share_above_max_error_rate_exits_1(
    max_error_rate: float, expected: int, bench_cfg: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3 of 4 requests are refused as invalid (never retried), 1 succeeds: 75% errors.
    with scripted([BAD_REQUEST] * 3) as (url, script):
        cfg = paid_config(bench_cfg, url, "prompts.n=4", f"runner.max_error_rate={max_error_rate}")
        assert execute_run(cfg, tmp_path / "run") == expected
    assert len(script.hits) == 4
    err = capsys.readouterr().err
    if expected:
        assert "3 of 4 requests ended in error (75% > runner.max_error_rate=0.5)" in err
        assert "invalid_request 3" in err
    else:
        assert "run failed" not in err


def test_refusals_are_answers_not_errors(bench_cfg: Any, tmp_path: Path) -> None:
    refused = Answer(400, {}, {"error": {"message": "blocked", "code": "content_policy_violation"}})
    with scripted([], default=refused) as (url, _):
        assert execute_run(paid_config(bench_cfg, url, "prompts.n=2"), tmp_path / "run") == 0
    assert (records(tmp_path / "run").status == "refused").all()


def test_max_error_rate_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"results_dir={tmp_path}", "runner.max_error_rate=2"]) == 2
    assert "runner.max_error_rate=2: use a share between 0 and 1" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# ---- Retry-After ---------------------------------------------------------------------------


def test_retry_after_is_capped_by_backoff_max_s() -> None:
    settings = RunnerSettings(backoff_base_s=1.0, backoff_max_s=8.0)
    assert max(backoff_delay_s(1, settings, 3600.0) for _ in range(200)) == 8.0
    assert all(3.0 <= backoff_delay_s(1, settings, 3.0) <= 3.3 for _ in range(200))


def test_a_long_retry_after_waits_at_most_backoff_max_s(
    bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delays: list[float] = []

    def spy(attempt: int, settings: RunnerSettings, retry_after_s: float | None) -> float:
        delays.append(backoff_delay_s(attempt, settings, retry_after_s))
        return delays[-1]

    monkeypatch.setattr(bench.runner, "backoff_delay_s", spy)
    limited = Answer(429, {"Retry-After": "9"}, {"error": {"message": "slow down"}})
    with scripted([limited]) as (url, script):
        cfg = paid_config(bench_cfg, url)  # timeout_s=10, backoff_max_s=0.2
        assert execute_run(cfg, tmp_path / "run") == 0
    assert len(script.hits) == 2
    assert len(delays) == 1 and delays[0] <= 0.2
    assert records(tmp_path / "run").iloc[0].attempts == 2


def test_a_retry_after_longer_than_timeout_fails_as_rate_limited_without_waiting(
    bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    monkeypatch.setattr(bench.runner, "backoff_delay_s", lambda *a: waits.append(1.0) or 1.0)
    limited = Answer(429, {"Retry-After": "3600"}, {"error": {"message": "slow down"}})
    with scripted([], default=limited) as (url, script):
        assert execute_run(paid_config(bench_cfg, url), tmp_path / "run") == 1
    assert len(script.hits) == 1 and waits == []
    row = records(tmp_path / "run").iloc[0]
    assert (row.status, row.error_type, row.attempts) == ("error", "rate_limited", 1)
    assert "longer than timeout_s=10: not waiting" in row.error_message


# ---- multirun ------------------------------------------------------------------------------


def multirun_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "run",
        "-m",
        "experiment=smoke",
        "prompts.n=1",
        "metrics=off",
        "report.write=false",
        "report.print_summary=false",
        "runner.progress=off",
        "runner.max_attempts=1",
        f"results_dir={tmp_path}",
        "sweep_name=s",
        *extra,
    ]


def test_multirun_with_a_bad_job_exits_2_before_any_job_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(multirun_args(tmp_path, "sweep.steps=[4],[500]"))
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "num_inference_steps=500 is not accepted" in err and "sweep.steps=[500]" in err
    assert list(tmp_path.iterdir()) == []  # not even the good job ran


def test_multirun_with_a_misspelled_key_prints_one_line_and_leaves_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(multirun_args(tmp_path, "sweep.stpes=[4],[8]"))
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert "Could not override 'sweep.stpes'. No such key: check its spelling" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_multirun_exits_1_when_one_job_failed(
    launcher: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if launcher == "joblib":
        pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
        from joblib.externals.loky import get_reusable_executor

        # Workers an earlier test started do not have the key variable this test's job reads.
        get_reusable_executor().shutdown(wait=True)
    paid = (
        "+providers.paid={adapter: openai_compat, api_key_env: T2I_TEST_PAID_KEY,"
        f" base_url: 'http://127.0.0.1:{closed_port()}', options: {{profile: openai}}}}"
    )
    code = main(
        multirun_args(
            tmp_path,
            f"hydra/launcher={launcher}",
            paid,
            "sweep=quick",
            "targets=[local:shapes-fast],[paid:dall-e-3]",
        )
    )
    err = capsys.readouterr().err
    assert code == 1, err
    assert "multirun: 1 of 2 jobs failed" in err
    assert f"bench: job {tmp_path}/sweeps/s/1-" in err and " exited 1" in err  # the paid job's folder
    runs = sorted(p.parent.name for p in (tmp_path / "sweeps" / "s").glob("*/records.parquet"))
    assert len(runs) == 2  # the good job ran to the end beside the failed one


def test_multirun_of_good_jobs_exits_0(tmp_path: Path) -> None:
    assert main(multirun_args(tmp_path, "sweep.steps=[4],[8]")) == 0


@pytest.fixture
def config_dir_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A copy of the project's configs/ with an extra experiment file, used by every compose."""

    def make(name: str, text: str) -> Path:
        configs = tmp_path / "configs"
        shutil.copytree(hydra_config.CONFIG_DIR, configs)
        (configs / "experiment" / f"{name}.yaml").write_text(text, encoding="utf-8")
        monkeypatch.setattr(hydra_config, "CONFIG_DIR", configs)
        return configs

    return make


def in_experiment(name: str, args: list[str]) -> list[str]:
    return [f"experiment={name}" if a == "experiment=smoke" else a for a in args]


SWEEP_IN_FILE = """# @package _global_
defaults:
  - smoke
hydra:
  sweeper:
    params:
      sweep.steps: {steps}
"""


def test_a_sweep_written_in_an_experiment_file_is_validated_before_any_job(
    tmp_path: Path, config_dir_with: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config_dir_with("filesweep", SWEEP_IN_FILE.format(steps="'[4],[500]'"))
    results = tmp_path / "results"
    code = main(in_experiment("filesweep", multirun_args(results)))
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "num_inference_steps=500 is not accepted" in err and "sweep.steps=[500]" in err
    assert not results.exists() or list(results.iterdir()) == []  # not even the good job ran


def test_a_sweep_written_in_an_experiment_file_runs_every_job(tmp_path: Path, config_dir_with: Any) -> None:
    config_dir_with("filesweep", SWEEP_IN_FILE.format(steps="'[4],[8]'"))
    results = tmp_path / "results"
    assert main(in_experiment("filesweep", multirun_args(results))) == 0
    assert len(list((results / "sweeps" / "s").glob("*/records.parquet"))) == 2


def test_a_sweep_over_an_experiment_on_hydra_searchpath_is_validated_as_hydra_composes_it(
    tmp_path: Path,
) -> None:
    extra = tmp_path / "extra"
    (extra / "experiment").mkdir(parents=True)
    (extra / "experiment" / "mine.yaml").write_text(SWEEP_IN_FILE.format(steps="'[4],[8]'"), encoding="utf-8")
    results = tmp_path / "results"
    args = in_experiment("mine", multirun_args(results, f"hydra.searchpath=[file://{extra}]"))
    assert main(args) == 0
    assert len(list((results / "sweeps" / "s").glob("*/records.parquet"))) == 2


# ---- bench score keeps stored scores -------------------------------------------------------


def test_score_with_a_mistyped_weights_path_keeps_stored_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.metrics.synthetic import write_synthetic_run

    run = tmp_path / "run"
    write_synthetic_run(run, per_target=3, size=48)
    assert main(["score", str(run), "metrics=test", "metrics.fid.enabled=false"]) == 0
    before = records(run)
    assert before.clip_score.notna().sum() == 6
    metrics_before = (run / "metrics.parquet").read_bytes()
    capsys.readouterr()

    code = main(["score", str(run), "metrics=test", "metrics.clip.pretrained=/typo/path"])
    err = capsys.readouterr().err
    assert code == 2
    assert "metrics.clip.pretrained='/typo/path'" in err and "unchanged" in err
    after = records(run)
    pd.testing.assert_series_equal(after.clip_score, before.clip_score)
    assert (run / "metrics.parquet").read_bytes() == metrics_before


# ---- bad input: one line, exit 2, nothing sent or made --------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


BAD_FILES: list[tuple[str, str, bytes, str]] = [
    (
        "yaml",
        "latin1.yaml",
        "prompts:\n  - text: café\n".encode("latin-1"),
        "not UTF-8 text (byte 0xe9 on line 2)",
    ),
    ("yaml", "binary.yaml", bytes(range(256)) * 4, "not UTF-8 text"),
    ("yaml", "nul.yaml", b"prompts:\n  - text: a\x00b\n", "not valid YAML"),
    ("yaml", "broken.yaml", b"prompts:\n  - text: [unclosed\n", "not valid YAML at line 3"),
    ("geneval", "bad.jsonl", b'{"tag": "a", "prompt": "x"}\n{not json}\n', "line 2 is not JSON"),
    (
        "geneval",
        "noprompt.jsonl",
        b'{"tag": "a", "prompt": "x"}\n{"tag": "b"}\n',
        'line 2 has no "prompt" string',
    ),
    ("parti", "bad.tsv", b"Prompt\tCategory\nok\tA\nbad \xff\tB\n", "not UTF-8 text (byte 0xff on line 3)"),
]


@pytest.mark.parametrize(("suite", "name", "data", "expected"), BAD_FILES, ids=[b[1] for b in BAD_FILES])
def test_bad_prompt_files(
    suite: str, name: str, data: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / name, data)
    results = tmp_path / "results"
    # A user's own YAML suite is the default prompts group with suite=yaml.
    choose = "prompts.suite=yaml" if suite == "yaml" else f"prompts={suite}"
    code = main(["run", f"results_dir={results}", choose, f"prompts.path={path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("bench: config error: prompts.path=") and expected in err[-1], err
    assert not results.exists()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("prompts.seed=abc", "prompts.seed='abc': use a whole number"),
        ("prompts.categories=5", "prompts.categories=5: give a list of category names"),
        (
            "+providers.local.max_download_bytes=abc",
            "providers.local.max_download_bytes='abc': use a whole number",
        ),
        (
            "+providers.local.max_download_bytes=-5",
            "providers.local.max_download_bytes=-5: use a whole number",
        ),
    ],
)
def test_bad_values_are_one_line_exit_2(
    override: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", f"results_dir={tmp_path}", override])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert expected in err
    assert list(tmp_path.iterdir()) == []

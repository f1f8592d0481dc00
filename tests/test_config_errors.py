"""Every kind of config error: one line naming key, value and fix; exit 2; nothing sent or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["targets=[local:no-such-model]"],
            "targets='local:no-such-model': unknown model; local has: shapes-fast",
        ),
        (["targets=[nowhere:model]"], "unknown provider 'nowhere'"),
        (["targets=[local]"], "write a target as provider:model"),
        (["sweep.steps=[0]"], "sweep.steps=0: use whole numbers >= 1"),
        (["sweep.steps=[500]"], "num_inference_steps=500 is not accepted; it takes integer >= 1 <= 200"),
        (["sweep.guidance=[-1]"], "sweep.guidance=-1"),
        (["sweep.sizes=[big]"], "sweep.sizes='big'"),
        (["sweep.repeats=0"], "sweep.repeats=0"),
        (["max_cost_usd=-5"], "max_cost_usd=-5"),
        (["runner.progress=loud"], "runner.progress='loud'"),
        (["prompts.n=0"], "prompts.n=0"),
        (["prompts=parti"], "set prompts.path="),
        (["no_such_key=1"], "overrides="),
    ],
)
def test_bad_values(
    overrides: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run_cli(["run", f"results_dir={tmp_path}", *overrides], capsys)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # no run folder was made


def test_missing_api_key_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("T2I_TEST_UNSET_KEY", raising=False)
    code, err = run_cli(
        [
            "run",
            f"results_dir={tmp_path}",
            "+providers.paid={adapter: openai_compat, api_key_env: T2I_TEST_UNSET_KEY, options: {profile: openai}}",
            "targets=[paid:dall-e-3]",
            "sweep=quick",
        ],
        capsys,
    )
    assert code == 2
    assert "providers.paid.api_key_env='T2I_TEST_UNSET_KEY'" in err
    assert "export T2I_TEST_UNSET_KEY=" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["under_a_file", "proc"])
def test_unwritable_results_folder(kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if kind == "under_a_file":
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        results = blocker / "results"
    else:
        results = Path("/proc/t2i-bench-results")  # not writable even for root
    code, err = run_cli(["run", f"results_dir={results}", "experiment=smoke"], capsys)
    assert code == 2
    assert "results_dir=" in err and "choose" in err


def test_estimate_and_ls_send_nothing_and_work_without_keys(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", "sweep.steps=[4]"]) == 0
    out = capsys.readouterr().out
    assert "local:shapes-fast" in out and "total: 96 requests" in out
    assert main(["ls", "--provider", "local"]) == 0
    out = capsys.readouterr().out
    assert "local:shapes-quality" in out and "steps=num_inference_steps" in out

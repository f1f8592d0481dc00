"""The offline preset's emulated judge never judges a hosted provider's images.

`bench run targets=[fal:...]` without `models=fal` keeps the default preset's metrics block
(models=local: the in-process chat emulator as judge, which measures the local generator's
drawings). With only hosted targets the judge is turned off (one note, as with metrics=default);
a run mixing local and hosted targets stops before any request, in one line naming the key, the
value and the fix (exit 2). Counted at the fal emulator on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import fal


def _run(url: str, tmp_path: Path, *extra: str) -> int:
    return main(["run", "targets=[fal:fal-ai/flux/schnell]", f"providers.fal.base_url={url}",
                 f"providers.fal.api_key_env={KEY_ENV}", "providers.fal.poll_interval_s=0.01", "prompts.n=1",
                 "sweep=quick", "runner.progress=off", "report.write=false", f"results_dir={tmp_path}",
                 "run_name=r", *extra])  # fmt: skip


def test_hosted_targets_without_their_preset_run_without_the_emulated_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(fal.create_app(knobs())) as (url, state):
        code = _run(url, tmp_path, "metrics.clip.enabled=false", "metrics.pickscore.enabled=false",
                    "metrics.hpsv2.enabled=false", "metrics.fid.enabled=false", "metrics.kid.enabled=false")  # fmt: skip
        err = capsys.readouterr().err
        assert code == 0, err
        assert sum("emulated judge is off" in line for line in err.splitlines()) == 1, err
        assert any("POST" in c for c in state.calls)
    run = tmp_path / "r"
    assert (run / "records.parquet").is_file()
    assert not (run / "judge_spend.jsonl").exists()  # no judge call was made, emulated or not
    import yaml

    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert recorded["metrics"]["judge"]["enabled"] is False  # the recorded config says what ran


def test_mixed_local_and_hosted_targets_stop_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(fal.create_app(knobs())) as (url, state):
        code = main(["run", "targets=[local:shapes-fast,fal:fal-ai/flux/schnell]", f"providers.fal.base_url={url}",
                     f"providers.fal.api_key_env={KEY_ENV}", "prompts.n=1", "sweep=quick", "runner.progress=off",
                     "report.write=false", f"results_dir={tmp_path}", "run_name=r"])  # fmt: skip
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert (
            "metrics.judge.base_url='emulator'" in err[0] and "fal" in err[0] and "metrics=default" in err[0]
        )
        assert state.calls == [] and not (tmp_path / "r").exists()  # nothing sent, nothing written


def test_the_local_generator_keeps_the_emulated_judge(tmp_path: Path) -> None:
    from bench.cli.emulated_judge import check_judged_targets
    from bench.errors import ConfigError

    judge = {"judge": {"enabled": True, "base_url": "emulator"}}
    check_judged_targets(judge, ["local", "local"])  # the offline preset's own case: no error
    check_judged_targets({"judge": {"enabled": False, "base_url": "emulator"}}, ["fal"])  # no judge: fine
    with pytest.raises(ConfigError, match="targets include provider fal, replicate"):
        check_judged_targets(judge, ["local", "replicate", "fal"])

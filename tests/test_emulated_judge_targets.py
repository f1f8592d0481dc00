"""The offline preset's emulated judge is never inherited by a run whose targets are a hosted provider's.

`bench run targets=[fal:...]` without `models=fal` keeps the default preset's metrics block
(models=local: the in-process chat emulator as judge, which measures the local generator's
drawings). That run must stop before any request, in one line naming the key, the value and the
fix (exit 2); with the fix it runs. Counted at the fal emulator on 127.0.0.1.
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


def test_hosted_targets_without_their_preset_stop_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(fal.create_app(knobs())) as (url, state):
        code = _run(url, tmp_path)
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, err
        assert (
            "metrics.judge.base_url='emulator'" in err[0] and "fal" in err[0] and "metrics=default" in err[0]
        )
        assert "models=fal" in err[0]
        assert state.calls == [] and not (tmp_path / "r").exists()  # nothing sent, nothing written
        # The fix named in the message works: the provider's preset (its metrics have no judge).
        fixed = _run(url, tmp_path, "models=fal", "metrics.clip.enabled=false", "metrics.pickscore.enabled=false",
                     "metrics.hpsv2.enabled=false")  # fmt: skip
        assert fixed == 0 and any("POST" in c for c in state.calls)
    assert (tmp_path / "r" / "records.parquet").is_file()


def test_the_local_generator_keeps_the_emulated_judge(tmp_path: Path) -> None:
    from bench.cli.emulated_judge import check_judged_targets
    from bench.errors import ConfigError

    judge = {"judge": {"enabled": True, "base_url": "emulator"}}
    check_judged_targets(judge, ["local", "local"])  # the offline preset's own case: no error
    check_judged_targets({"judge": {"enabled": False, "base_url": "emulator"}}, ["fal"])  # no judge: fine
    with pytest.raises(ConfigError, match="targets include provider fal, replicate"):
        check_judged_targets(judge, ["local", "replicate", "fal"])

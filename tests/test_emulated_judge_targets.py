"""The offline preset's emulated judge never judges a hosted provider's images.

`bench run targets=[fal:...]` without `models=fal` keeps the default preset's metrics block
(models=local: the in-process chat emulator as judge, which measures the local generator's
drawings, which the emulators on 127.0.0.1 serve too). With only real hosted targets the judge is
turned off (one note, as with metrics=default); a run mixing real hosted targets with local or
emulated ones stops before any request (exit 2). Runs counted at the fal emulator on 127.0.0.1.
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


def test_an_emulated_provider_keeps_the_emulated_judge(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The emulators draw with the local generator, so the emulated judge measures what it was made for."""
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(fal.create_app(knobs())) as (url, state):
        code = _run(url, tmp_path, "metrics.clip.enabled=false", "metrics.pickscore.enabled=false",
                    "metrics.hpsv2.enabled=false", "metrics.fid.enabled=false", "metrics.kid.enabled=false")  # fmt: skip
        err = capsys.readouterr().err
        assert code == 0, err
        assert "emulated judge is off" not in err
        assert any("POST" in c for c in state.calls)
    import yaml

    recorded = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert recorded["metrics"]["judge"]["enabled"] is True


def test_real_hosted_targets_turn_the_inherited_judge_off_and_mixing_them_is_refused() -> None:
    from bench.cli.emulated_judge import check_judged_targets, without_inherited_judge
    from bench.errors import ConfigError

    metrics = {"judge": {"enabled": True, "base_url": "emulator"}}
    public = {"fal": {"base_url": None}, "replicate": {"base_url": "https://api.replicate.com/v1"}}
    cfg = {
        "targets": ["fal:fal-ai/flux/schnell", {"target": "replicate:a/b"}],
        "metrics": metrics,
        "providers": public,
    }
    used = without_inherited_judge(cfg)
    assert used["metrics"]["judge"]["enabled"] is False and metrics["judge"]["enabled"] is True  # a copy
    emulated = {"fal": {"base_url": "http://127.0.0.1:8701"}}
    kept = {"targets": ["fal:x"], "metrics": metrics, "providers": emulated}
    assert without_inherited_judge(kept) is kept
    mixed = {"targets": ["local:shapes-fast", "fal:x"], "metrics": metrics, "providers": public}
    assert without_inherited_judge(mixed) is mixed  # left for check_judged_targets to refuse
    with pytest.raises(ConfigError, match="targets include provider fal"):
        check_judged_targets(metrics, ["local", "fal"], {"fal": None})
    check_judged_targets(metrics, ["local", "fal"], {"fal": "http://localhost:8701"})  # emulated: fine


def test_the_local_generator_keeps_the_emulated_judge(tmp_path: Path) -> None:
    from bench.cli.emulated_judge import check_judged_targets
    from bench.errors import ConfigError

    judge = {"judge": {"enabled": True, "base_url": "emulator"}}
    check_judged_targets(judge, ["local", "local"], {})  # the offline preset's own case: no error
    check_judged_targets({"judge": {"enabled": False, "base_url": "emulator"}}, ["fal"], {})  # no judge: fine
    with pytest.raises(ConfigError, match="targets include provider fal, replicate"):
        check_judged_targets(judge, ["local", "replicate", "fal"], {})


def test_bench_score_applies_the_rule_to_the_targets_the_run_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench score RUN` composes the default (offline) preset; the run's own config.yaml says where
    its images came from. A run at a real host is scored without the emulated judge; a run mixing a
    real host with the local generator is refused (exit 2) with its stored scores untouched."""
    import yaml

    monkeypatch.setenv(KEY_ENV, KEY)
    off = ["metrics.clip.enabled=false", "metrics.pickscore.enabled=false", "metrics.hpsv2.enabled=false",
           "metrics.fid.enabled=false", "metrics.kid.enabled=false"]  # fmt: skip
    with emulator(fal.create_app(knobs())) as (url, _):
        assert _run(url, tmp_path, *off) == 0
    run = tmp_path / "r"
    config_file = run / "config.yaml"
    recorded = yaml.safe_load(config_file.read_text())
    recorded["providers"]["fal"]["base_url"] = None  # as if the images came from fal's public endpoint
    config_file.write_text(yaml.safe_dump(recorded, sort_keys=False))
    capsys.readouterr()
    code = main(["score", str(run), "report.write=false", *off])
    err = capsys.readouterr().err
    assert code == 0, err
    assert sum("emulated judge is off" in line for line in err.splitlines()) == 1, err

    recorded["targets"] = ["local:shapes-fast", *recorded["targets"]]
    config_file.write_text(yaml.safe_dump(recorded, sort_keys=False))
    before = (run / "metrics.parquet").read_bytes() if (run / "metrics.parquet").is_file() else None
    code = main(["score", str(run), "report.write=false", *off])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "targets include provider fal" in err[0], err
    after = (run / "metrics.parquet").read_bytes() if (run / "metrics.parquet").is_file() else None
    assert after == before

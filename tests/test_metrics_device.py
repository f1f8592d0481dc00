"""metrics.*.device: auto resolves to CUDA, then MPS, then CPU (injected probe), bad values exit 2 naming
the key, the device kind is in the fingerprints, jobs share a machine's cores; the real CUDA path where
CUDA is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import bench  # noqa: F401  (torchvision import fix before open_clip)
from bench.errors import ConfigError
from bench.metrics import device as devmod
from bench.metrics.config import (
    ClipConfig,
    check_explicit_devices,
    parse_metrics_config,
    with_resolved_devices,
)
from bench.metrics.device import DeviceAvailability, job_threads, resolve_device

NO_GPU = DeviceAvailability(cuda_devices=0, mps=False)
TWO_CUDA = DeviceAvailability(cuda_devices=2, mps=False)
MPS_ONLY = DeviceAvailability(cuda_devices=0, mps=True)
CUDA_AND_MPS = DeviceAvailability(cuda_devices=1, mps=True)


def _probe(available: DeviceAvailability) -> devmod.Probe:
    calls: list[int] = []

    def probe() -> DeviceAvailability:
        calls.append(1)
        return available

    probe.calls = calls  # type: ignore[attr-defined]
    return probe


@pytest.mark.parametrize(
    ("available", "expected"),
    [(CUDA_AND_MPS, "cuda"), (TWO_CUDA, "cuda"), (MPS_ONLY, "mps"), (NO_GPU, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(available: DeviceAvailability, expected: str) -> None:
    assert resolve_device("metrics.clip.device", "auto", _probe(available)) == expected


def test_cpu_never_asks_torch() -> None:
    def probe() -> DeviceAvailability:
        raise AssertionError("cpu needs no probe")

    assert resolve_device("metrics.clip.device", "cpu", probe) == "cpu"


def test_explicit_devices_must_exist_here() -> None:
    assert resolve_device("metrics.fid.device", "cuda:1", _probe(TWO_CUDA)) == "cuda:1"
    assert resolve_device("metrics.fid.device", "mps", _probe(MPS_ONLY)) == "mps"
    with pytest.raises(ConfigError, match=r"metrics\.fid\.device='cuda': CUDA is not available"):
        resolve_device("metrics.fid.device", "cuda", _probe(MPS_ONLY))
    with pytest.raises(ConfigError, match=r"metrics\.clip\.device='cuda:2': this machine has 2 CUDA"):
        resolve_device("metrics.clip.device", "cuda:2", _probe(TWO_CUDA))
    with pytest.raises(ConfigError, match=r"metrics\.hpsv2\.device='mps': MPS is not available"):
        resolve_device("metrics.hpsv2.device", "mps", _probe(TWO_CUDA))


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "", "CUDA", "cuda:-1", None])
def test_misspelled_device_names_key_value_and_fix(value: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_metrics_config({"clip": {"device": value}})
    assert str(err.value).startswith(f"config error: metrics.clip.device={value!r}: use auto")
    with pytest.raises(ConfigError, match=r"metrics\.pickscore\.device"):
        parse_metrics_config({"pickscore": {"device": value}})


def test_default_is_auto_and_resolution_covers_enabled_models_only() -> None:
    cfg = parse_metrics_config({"pickscore": {"enabled": True}})
    assert cfg.clip.device == cfg.fid.device == cfg.pickscore.device == cfg.hpsv2.device == "auto"
    resolved = with_resolved_devices(cfg, _probe(TWO_CUDA))
    assert (resolved.clip.device, resolved.fid.device, resolved.pickscore.device) == ("cuda",) * 3
    assert resolved.hpsv2.device == "auto"  # disabled: never resolved, so never an error
    broken = parse_metrics_config({"hpsv2": {"device": "cuda:5"}})
    with_resolved_devices(broken, _probe(NO_GPU))  # hpsv2 is off: nothing to check
    with pytest.raises(ConfigError, match=r"metrics\.hpsv2\.device"):
        with_resolved_devices(replace_enabled(broken), _probe(NO_GPU))


def replace_enabled(cfg: object) -> object:
    from dataclasses import replace

    return replace(cfg, hpsv2=replace(cfg.hpsv2, enabled=True))  # type: ignore[attr-defined]


def test_up_front_check_asks_torch_only_for_an_explicit_gpu() -> None:
    probe = _probe(NO_GPU)
    check_explicit_devices(parse_metrics_config({}), probe)  # auto everywhere
    check_explicit_devices(parse_metrics_config({"clip": {"device": "cpu"}}), probe)
    assert probe.calls == []  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"metrics\.clip\.device='cuda'"):
        check_explicit_devices(parse_metrics_config({"clip": {"device": "cuda"}}), probe)


def test_fingerprint_records_the_resolved_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.metrics import clip as clipmod
    from bench.metrics import inception

    weights = clipmod.resolve_clip_weights(ClipConfig(pretrained=None), None)

    def clip_fp(device: str) -> str:
        return clipmod.clip_fingerprint(ClipConfig(pretrained=None, device=device), weights)

    def inc_details(device: str) -> dict[str, object]:
        return inception.extractor_fingerprint("fid_helper", device, None)[1]

    cpu_fp, cpu_inc = clip_fp("cpu"), inc_details("cpu")
    monkeypatch.setattr(devmod, "torch_availability", lambda: TWO_CUDA)
    assert clip_fp("auto") == clip_fp("cuda") == clip_fp("cuda:1") != cpu_fp
    assert inc_details("auto")["device"] == "cuda" and cpu_inc["device"] == "cpu"
    monkeypatch.setattr(devmod, "torch_availability", lambda: NO_GPU)
    assert clip_fp("auto") == cpu_fp  # a machine without a GPU: the same scores and cache as before


def test_score_run_records_this_machines_device(tmp_path: Path) -> None:
    import torch

    from bench.metrics.score import read_fingerprints, score_run
    from bench.metrics.synthetic import write_synthetic_run

    run = tmp_path / "run"
    write_synthetic_run(run, per_target=1, size=32)
    cfg = {
        "clip": {"pretrained": None, "allow_download": False, "device": "auto"},
        "fid": {"reference": None},
        "stats": {"n_boot": 50},
        "cache_dir": str(tmp_path / "cache"),
    }
    score_run(run, cfg)
    here = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert [d["device"] for d in read_fingerprints(run).values()] == [here]


def test_bad_device_is_exit_2_in_one_line_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main
    from bench.metrics.synthetic import write_synthetic_run

    assert main(["run", f"results_dir={tmp_path / 'results'}", "metrics.fid.device=gpu"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "metrics.fid.device='gpu': use auto" in err
    assert not (tmp_path / "results").exists()  # no run folder, no request

    run = tmp_path / "run"
    write_synthetic_run(run, per_target=1, size=16)
    before = (run / "records.parquet").read_bytes()
    assert main(["score", str(run), "metrics=test", "metrics.clip.device=tpu"]) == 2
    err = capsys.readouterr().err
    assert "metrics.clip.device='tpu': use auto" in err and len(err.strip().splitlines()) == 1
    assert (run / "records.parquet").read_bytes() == before  # stored results untouched
    assert not (run / "metrics.parquet").exists()


def test_explicit_cuda_without_cuda_is_exit_2_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: metrics.clip.device=cuda is valid here")
    from bench.cli import main

    assert main(["run", f"results_dir={tmp_path}", "metrics.clip.device=cuda"]) == 2
    err = capsys.readouterr().err
    assert "metrics.clip.device='cuda': CUDA is not available on this machine; use auto or cpu" in err
    assert list(tmp_path.iterdir()) == []


def test_jobs_on_one_machine_share_its_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.cli.launchers import jobs_per_machine

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert job_threads(2, cores=2) == 1 and job_threads(2, cores=8) == 4 and job_threads(3, cores=2) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # set by the user or the launcher (joblib's loky, Ray)
    assert job_threads(2, cores=2) is None
    joblib = {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", "n_jobs": 2}
    local = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"}
    slurm = {"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"}
    assert jobs_per_machine(joblib, 5) == 2 and jobs_per_machine(local, 3) == 3
    assert jobs_per_machine(slurm, 3) == 1


cuda = pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="no CUDA device on this machine"
)


@cuda
def test_cuda_features_agree_with_cpu() -> None:
    """The real CUDA path: auto lands on the GPU and, with TF32 off, agrees with the CPU to round-off."""
    from bench.metrics import clip as clipmod
    from bench.metrics import inception
    from bench.metrics.synthetic import synthetic_image

    rng = np.random.default_rng(0)
    images = [synthetic_image(rng, 96, i % 3) for i in range(4)]
    by_device = {}
    for device in ("cpu", "auto"):
        cfg = ClipConfig(pretrained=None, device=device, batch_size=4)
        m = clipmod.load_clip_model(cfg, clipmod.resolve_clip_weights(cfg, None))
        ex = inception.load_extractor(device=device, batch_size=4)
        by_device[device] = (
            m.encode_images(images),
            ex.features([inception.to_uint8_chw(i) for i in images]),
        )
        assert m.device.startswith("cuda" if device == "auto" else "cpu")
        assert ex.device.startswith("cuda" if device == "auto" else "cpu")
    np.testing.assert_allclose(by_device["auto"][0], by_device["cpu"][0], atol=1e-4)
    np.testing.assert_allclose(by_device["auto"][1], by_device["cpu"][1], atol=1e-3, rtol=1e-3)


def test_a_scoring_job_takes_its_share_of_torch_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    from omegaconf import OmegaConf

    from bench.cli.score_jobs import ScoreJob

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        job = ScoreJob([tmp_path / "not-a-run"], jobs_per_machine=4)
        assert job(OmegaConf.create({"score_job": 0, "metrics": {}})) == 2  # no such run folder
        assert torch.get_num_threads() == job_threads(4)  # set before scoring began
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        torch.set_num_threads(3)
        ScoreJob([tmp_path / "not-a-run"], jobs_per_machine=4)(OmegaConf.create({"score_job": 0}))
        assert torch.get_num_threads() == 3  # the launcher's (or user's) setting is left alone
    finally:
        torch.set_num_threads(before)

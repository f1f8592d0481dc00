"""The `metrics` block of the Hydra config, parsed into frozen dataclasses.

Accepts plain dicts and OmegaConf DictConfigs alike (tests pass dicts); missing
keys take the defaults of configs/metrics/default.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.judge.config import JudgeConfig, parse_judge_config
from bench.metrics.device import Probe, check_device_value, resolve_device

DEFAULT_CACHE_DIR = "~/.cache/t2i-bench"
DEFAULT_GROUP_BY = ("target", "steps", "guidance", "size")
REFERENCE_KINDS = ("folder", "npz", "run", "target")


@dataclass(frozen=True)
class ClipConfig:
    enabled: bool = True
    backbone: str = "ViT-B-32"
    pretrained: str | None = (
        "openai"  # open_clip tag, a local weights file, or None (random init: tests only)
    )
    quick_gelu: bool | None = None  # None: what the pretrained tag was trained with
    batch_size: int = 32
    device: str = "auto"  # auto: CUDA, then MPS, then CPU (bench.metrics.device), resolved at load
    allow_download: bool = True  # tags not in the local cache are downloaded if the host answers
    random_init_seed: int = 0


@dataclass(frozen=True)
class ReferenceConfig:
    kind: str
    path: str | None = None  # folder, .npz file, or run directory
    target: str | None = None  # kind=target: a target of this run; kind=run: optional filter
    # kind=target set by a preset (models/local.yaml): a run without that target skips FID/KID with a
    # note instead of failing, so overriding `targets` never breaks a run.
    if_present: bool = False


@dataclass(frozen=True)
class FidConfig:
    enabled: bool = True
    reference: ReferenceConfig | None = None
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    weights: str = "fid_helper"  # fid_helper | torch_fidelity | /path/to/torch-fidelity-layout.pth
    batch_size: int = 32
    device: str = "auto"  # auto: CUDA, then MPS, then CPU (bench.metrics.device), resolved at load


@dataclass(frozen=True)
class KidConfig:
    enabled: bool = True
    subset_size: int = 1000  # capped at the smaller sample count
    subsets: int = 100
    seed: int = 0


@dataclass(frozen=True)
class StatsConfig:
    n_boot: int = 2000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class PreferenceConfig:
    enabled: bool = False  # configs/metrics/default.yaml turns both on; metrics=off / test leave them off
    backbone: str = (
        "ViT-H-14"  # pickscore: a PICKSCORE_DIMS key (random init only); hpsv2: an open_clip model
    )
    pretrained: str | None = (
        None  # tag / HF repo id, a local file or folder, or None (random init: tests only)
    )
    batch_size: int = 16
    device: str = "auto"  # auto: CUDA, then MPS, then CPU (bench.metrics.device), resolved at load
    allow_download: bool = True
    random_init_seed: int = 0


# The preference models (bench/metrics/preference.py) and their default weights.
DEFAULT_PRETRAINED = {"pickscore": "yuvalkirstain/PickScore_v1", "hpsv2": "hps_v2.1"}


@dataclass(frozen=True)
class MetricsConfig:
    clip: ClipConfig = field(default_factory=ClipConfig)
    fid: FidConfig = field(default_factory=FidConfig)
    kid: KidConfig = field(default_factory=KidConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    cache_dir: str | None = None
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    pickscore: PreferenceConfig = field(default_factory=PreferenceConfig)
    hpsv2: PreferenceConfig = field(default_factory=PreferenceConfig)

    def resolved_cache_dir(self) -> Path:
        """Config value, else $T2I_BENCH_CACHE, else ~/.cache/t2i-bench."""
        raw = self.cache_dir or os.environ.get("T2I_BENCH_CACHE") or DEFAULT_CACHE_DIR
        return Path(raw).expanduser()


def _plain(value: Any) -> Any:
    """OmegaConf containers to plain Python, without importing omegaconf when not needed."""
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def _section(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = _plain(raw.get(key)) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"metrics.{key}", value, "must be a mapping")
    return dict(value)


def _known(section: dict[str, Any], cls: type, key: str) -> dict[str, Any]:
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(
            f"metrics.{key}.{unknown[0]}", section[unknown[0]], f"unknown key; known: {sorted(allowed)}"
        )
    return section


def _reference(value: Any) -> ReferenceConfig | None:
    value = _plain(value)
    if value in (None, "", "null"):
        return None
    if isinstance(value, str):  # shorthand: a path; .npz means statistics, anything else a folder
        return ReferenceConfig(kind="npz" if value.endswith(".npz") else "folder", path=value)
    if not isinstance(value, Mapping):
        raise ConfigError(
            "metrics.fid.reference", value, "use null, a path, or {kind: folder|npz|run|target, ...}"
        )
    ref = ReferenceConfig(**_known(dict(value), ReferenceConfig, "fid.reference"))
    if ref.kind not in REFERENCE_KINDS:
        raise ConfigError("metrics.fid.reference.kind", ref.kind, f"use one of {list(REFERENCE_KINDS)}")
    if ref.kind in ("folder", "npz", "run") and not ref.path:
        raise ConfigError("metrics.fid.reference.path", ref.path, f"kind={ref.kind} needs a path")
    if ref.kind == "target" and not ref.target:
        raise ConfigError("metrics.fid.reference.target", ref.target, "kind=target needs the target's name")
    return ref


def parse_metrics_config(
    raw: Mapping[str, Any] | MetricsConfig | None, providers: Mapping[str, Any] | None = None
) -> MetricsConfig:
    """`providers` (the run's providers block) supplies the judge's endpoint and key variable."""
    if isinstance(raw, MetricsConfig):
        return raw
    raw = dict(_plain(raw) or {})
    clip = _known(_section(raw, "clip"), ClipConfig, "clip")
    fid = _known(_section(raw, "fid"), FidConfig, "fid")
    kid = _known(_section(raw, "kid"), KidConfig, "kid")
    stats = _known(_section(raw, "stats"), StatsConfig, "stats")
    if clip.get("pretrained") in ("", "null", "none", "None"):
        clip["pretrained"] = None
    fid["reference"] = _reference(fid.get("reference"))
    if "group_by" in fid:
        group_by = fid["group_by"]
        if isinstance(group_by, str) or not all(isinstance(k, str) for k in group_by):
            raise ConfigError("metrics.fid.group_by", group_by, "use a list of record column names")
        fid["group_by"] = tuple(group_by)
    for key, section in (("clip", clip), ("fid", fid), ("kid", kid)):
        if "batch_size" in section and int(section["batch_size"]) < 1:
            raise ConfigError(f"metrics.{key}.batch_size", section["batch_size"], "must be >= 1")
        if "device" in section:
            section["device"] = check_device_value(f"metrics.{key}.device", section["device"])
    if int(kid.get("subset_size", 2)) < 2:
        raise ConfigError("metrics.kid.subset_size", kid["subset_size"], "must be >= 2")
    preference: dict[str, PreferenceConfig] = {}
    for kind, default in DEFAULT_PRETRAINED.items():
        section = _known(_section(raw, kind), PreferenceConfig, kind)
        if section.get("pretrained", default) in ("", "null", "none", "None"):
            section["pretrained"] = None
        if int(section.get("batch_size", 1)) < 1:
            raise ConfigError(f"metrics.{kind}.batch_size", section["batch_size"], "must be >= 1")
        if "device" in section:
            section["device"] = check_device_value(f"metrics.{kind}.device", section["device"])
        preference[kind] = PreferenceConfig(**{"pretrained": default, **section})
    known = {"clip", "fid", "kid", "stats", "cache_dir", "judge", *DEFAULT_PRETRAINED}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"metrics.{unknown[0]}", raw[unknown[0]], f"unknown key; known: {', '.join(sorted(known))}"
        )
    return MetricsConfig(
        clip=ClipConfig(**clip),
        fid=FidConfig(**fid),
        kid=KidConfig(**kid),
        stats=StatsConfig(**stats),
        cache_dir=raw.get("cache_dir"),
        judge=parse_judge_config(raw.get("judge"), providers),
        **preference,
    )


def with_resolved_devices(cfg: MetricsConfig, probe: Probe | None = None) -> MetricsConfig:
    """The config with `auto` replaced by this machine's device for every enabled model (a device this
    machine lacks is a ConfigError, raised before anything is scored or written)."""

    def resolved(key: str, section: PreferenceConfig, enabled: bool) -> PreferenceConfig:
        if not enabled:
            return section
        return replace(section, device=resolve_device(f"metrics.{key}.device", section.device, probe))

    clip, fid = cfg.clip, cfg.fid
    if clip.enabled:
        clip = replace(clip, device=resolve_device("metrics.clip.device", clip.device, probe))
    if fid.enabled or cfg.kid.enabled:
        fid = replace(fid, device=resolve_device("metrics.fid.device", fid.device, probe))
    return replace(
        cfg,
        clip=clip,
        fid=fid,
        pickscore=resolved("pickscore", cfg.pickscore, cfg.pickscore.enabled),
        hpsv2=resolved("hpsv2", cfg.hpsv2, cfg.hpsv2.enabled),
    )


def check_explicit_devices(cfg: MetricsConfig, probe: Probe | None = None) -> None:
    """A GPU named explicitly (cuda, cuda:N, mps) must exist here: checked before any request is sent.
    `auto` and `cpu` need no check, so the usual start-up never imports torch."""
    devices = {
        "clip": (cfg.clip.device, cfg.clip.enabled),
        "fid": (cfg.fid.device, cfg.fid.enabled or cfg.kid.enabled),
        "pickscore": (cfg.pickscore.device, cfg.pickscore.enabled),
        "hpsv2": (cfg.hpsv2.device, cfg.hpsv2.enabled),
    }
    for key, (device, enabled) in devices.items():
        if enabled and device not in ("auto", "cpu"):
            resolve_device(f"metrics.{key}.device", device, probe)

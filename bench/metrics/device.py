"""Where a metric's model runs: `device: auto` (CUDA, then MPS, then CPU) or an explicit device.

The value is checked in two steps, so that start-up never imports torch: its spelling when
the config is parsed (`check_device_value`, exit 2 before any request), and whether this
machine has it when a metric loads (`resolve_device`, which asks torch, or an injected
probe in tests). The resolved kind (cpu, cuda, mps) goes into the metric's fingerprint, so
scores and cached embeddings computed on different kinds of device are never mixed silently.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.errors import ConfigError

AUTO = "auto"
DEVICE_FIX = "use auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"
_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


@dataclass(frozen=True)
class DeviceAvailability:
    """What torch can see on this machine."""

    cuda_devices: int
    mps: bool


def torch_availability() -> DeviceAvailability:
    import torch

    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps_backend = getattr(torch.backends, "mps", None)
    return DeviceAvailability(cuda, bool(mps_backend is not None and mps_backend.is_available()))


Probe = Callable[[], DeviceAvailability]


def check_device_value(key: str, value: object) -> str:
    """The device setting if it is spelled as one (no torch import); ConfigError otherwise."""
    text = str(value).strip() if value is not None else ""
    if not _PATTERN.match(text):
        raise ConfigError(key, value, DEVICE_FIX)
    return text


def resolve_device(key: str, requested: str, probe: Probe | None = None) -> str:
    """`auto` -> cuda, mps or cpu, whichever this machine has first; an explicit device must exist here."""
    requested = check_device_value(key, requested)
    if requested == "cpu":
        return "cpu"
    available = (probe or torch_availability)()  # looked up at call time, so tests can inject one
    if requested == AUTO:
        if available.cuda_devices:
            return "cuda"
        return "mps" if available.mps else "cpu"
    if requested == "mps":
        if not available.mps:
            raise ConfigError(key, requested, "MPS is not available on this machine; use auto or cpu")
        return requested
    index = int(requested.split(":", 1)[1]) if ":" in requested else 0
    if available.cuda_devices == 0:
        raise ConfigError(key, requested, "CUDA is not available on this machine; use auto or cpu")
    if index >= available.cuda_devices:
        raise ConfigError(
            key, requested, f"this machine has {available.cuda_devices} CUDA device(s); use cuda:0 or auto"
        )
    return requested


def device_kind(device: str) -> str:
    """cuda:1 -> cuda: what the fingerprint records (which card of a kind is not part of the computation)."""
    return device.split(":", 1)[0]


@contextlib.contextmanager
def float32_math(device: str) -> Iterator[None]:
    """Full float32 matmuls and convolutions on CUDA for the duration (cuDNN uses TF32, ~10 mantissa
    bits, by default on Ampere and later): the fingerprints say float32, and CPU references agree."""
    if device_kind(device) != "cuda":
        yield
        return
    import torch

    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def job_threads(jobs_on_this_node: int, cores: int | None = None) -> int | None:
    """Torch threads for one of `jobs_on_this_node` scoring jobs sharing a machine's cores, or None to
    leave the setting alone (OMP_NUM_THREADS set: the user or the launcher has decided)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    if cores is None:
        affinity = getattr(os, "sched_getaffinity", None)
        cores = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    return max(1, cores // max(1, jobs_on_this_node))

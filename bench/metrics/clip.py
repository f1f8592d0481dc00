"""CLIP score per image with open_clip: 100 * max(cos(image, text), 0).

The definition of the CLIPScore paper (with w = 100, as torchmetrics) applied per
image, against the prompt the user wrote. Weights are resolved before anything
is loaded, from the local cache only unless the download host answers, so an
offline run fails over to NaN in milliseconds rather than after a minute of
hub retries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import torch

from bench.library_logs import quiet_open_clip
from bench.metrics.config import ClipConfig
from bench.metrics.device import device_kind, float32_math, resolve_device
from bench.metrics.errors import WeightsError
from bench.metrics.fingerprint import RANDOM_INIT_MARK, file_sha256, fingerprint_id, library_versions
from bench.metrics.weights_lookup import cached_pretrained_file as _cached_pretrained_file
from bench.metrics.weights_lookup import host_reachable as _host_reachable

F32 = npt.NDArray[np.float32]

HOW_TO_PROVIDE = (
    "To provide CLIP weights: run once with internet access (open_clip caches them), or download the "
    "checkpoint (e.g. ViT-B-32 'openai': https://huggingface.co/timm/vit_base_patch32_clip_224.openai, "
    "file open_clip_pytorch_model.bin) and set metrics.clip.pretrained=/path/to/file "
    "(with metrics.clip.quick_gelu=true for OpenAI weights)."
)


@dataclass(frozen=True)
class ClipWeights:
    """Where the weights come from, known before the model is built (so the fingerprint is too)."""

    path: Path | None  # None: random init
    label: str  # the tag, "file:<name>" or "random-init"
    sha256: str
    quick_gelu: bool
    preprocess: dict[str, Any]


def _preprocess_cfg(backbone: str, pcfg: dict[str, Any]) -> dict[str, Any]:
    import open_clip

    quiet_open_clip()
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD

    model_cfg = open_clip.get_model_config(backbone) or {}
    size = model_cfg.get("vision_cfg", {}).get("image_size", 224)
    return {
        "image_size": size,
        "interpolation": pcfg.get("interpolation", "bicubic"),
        "resize_mode": pcfg.get("resize_mode", "shortest"),
        "mean": list(pcfg.get("mean", OPENAI_DATASET_MEAN)),
        "std": list(pcfg.get("std", OPENAI_DATASET_STD)),
    }


def resolve_clip_weights(cfg: ClipConfig, cache_dir: Path | None) -> ClipWeights:
    """Find the weights file for (backbone, pretrained); raise WeightsError quickly if unavailable."""
    import open_clip

    quiet_open_clip()

    if open_clip.get_model_config(cfg.backbone) is None:
        raise WeightsError(
            f"metrics.clip.backbone={cfg.backbone!r} is not an open_clip model; see open_clip.list_models()"
        )
    if cfg.pretrained is None:
        return ClipWeights(
            path=None,
            label=RANDOM_INIT_MARK,
            sha256=f"{RANDOM_INIT_MARK}-seed{cfg.random_init_seed}",
            quick_gelu=bool(cfg.quick_gelu),
            preprocess=_preprocess_cfg(cfg.backbone, {}),
        )
    pcfg: dict[str, Any] = dict(open_clip.get_pretrained_cfg(cfg.backbone, cfg.pretrained) or {})
    if not pcfg:
        path = Path(cfg.pretrained).expanduser()
        if not path.is_file():
            tags = open_clip.list_pretrained_tags_by_model(cfg.backbone)
            raise WeightsError(
                f"metrics.clip.pretrained={cfg.pretrained!r} is neither an open_clip tag for {cfg.backbone} "
                f"({', '.join(tags)}) nor an existing file. {HOW_TO_PROVIDE}"
            )
        label = f"file:{path.name}"
    else:
        found = _cached_pretrained_file(pcfg)
        if found is None:
            url = (
                f"https://huggingface.co/{pcfg['hf_hub']}" if pcfg.get("hf_hub") else str(pcfg.get("url", ""))
            )
            if not cfg.allow_download or not _host_reachable(url):
                why = (
                    "downloads are disabled"
                    if not cfg.allow_download
                    else f"{urlparse(url).hostname} is unreachable"
                )
                raise WeightsError(
                    f"CLIP weights {cfg.backbone}/{cfg.pretrained} are not in the local cache and {why}. "
                    + HOW_TO_PROVIDE
                )
            from open_clip.pretrained import download_pretrained

            found = Path(download_pretrained(pcfg))
        path, label = found, cfg.pretrained
    quick_gelu = bool(pcfg.get("quick_gelu", False)) if cfg.quick_gelu is None else cfg.quick_gelu
    return ClipWeights(
        path=path,
        label=label,
        sha256=file_sha256(path, cache_dir),
        quick_gelu=quick_gelu,
        preprocess=_preprocess_cfg(cfg.backbone, pcfg),
    )


def clip_details(cfg: ClipConfig, weights: ClipWeights) -> dict[str, Any]:
    return {
        "backbone": cfg.backbone,
        "weights": weights.label,
        "weights_sha256": weights.sha256,
        "quick_gelu": weights.quick_gelu,
        "preprocess": weights.preprocess,
        "text": "user prompt; truncated to context keeping EOT",
        "score": "100*max(cos,0)",
        "dtype": "float32",
        # No batch size: scores at batch 1 and 32 agree to float round-off (tests/test_metrics_clip.py),
        # and a detail that does not change the numbers would only stop comparable runs being compared.
        # The kind of device (cpu, cuda, mps), resolved from auto: kernels differ in round-off, so
        # scores from different kinds are kept apart rather than mixed silently.
        "device": device_kind(resolve_device("metrics.clip.device", cfg.device)),
        "versions": library_versions("open_clip_torch", "torch", "torchvision", "pillow"),
    }


def clip_fingerprint(cfg: ClipConfig, weights: ClipWeights) -> str:
    return fingerprint_id("clip", clip_details(cfg, weights))


def _normalize(x: torch.Tensor) -> torch.Tensor:
    normalized: torch.Tensor = x / x.norm(dim=-1, keepdim=True)
    return normalized


def clip_score_from_embeddings(image_emb: F32, text_emb: F32) -> npt.NDArray[np.float64]:
    """Row-wise 100 * max(cos, 0) for paired embeddings (need not be normalised)."""
    a = np.asarray(image_emb, dtype=np.float64)
    b = np.asarray(text_emb, dtype=np.float64)
    cos = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.asarray(100.0 * np.maximum(cos, 0.0), dtype=np.float64)


@dataclass
class ClipModel:
    """A loaded open_clip model with its preprocessing and tokenizer; counts encoder calls."""

    cfg: ClipConfig
    weights: ClipWeights
    model: Any
    preprocess: Any
    tokenizer: Any
    fingerprint: str
    device: str = "cpu"  # resolved at load (never auto)
    image_forward_calls: int = 0
    text_forward_calls: int = 0

    def encode_images(self, images: Sequence[Any]) -> F32:
        """PIL images -> normalised embeddings, in batches, each image preprocessed once."""
        out: list[F32] = []
        with torch.inference_mode(), float32_math(self.device):
            for start in range(0, len(images), self.cfg.batch_size):
                batch = torch.stack(
                    [self.preprocess(im) for im in images[start : start + self.cfg.batch_size]]
                )
                self.image_forward_calls += 1
                emb = self.model.encode_image(batch.to(self.device))
                out.append(_normalize(emb.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def encode_texts(self, prompts: Sequence[str]) -> F32:
        out: list[F32] = []
        with torch.inference_mode(), float32_math(self.device):
            for start in range(0, len(prompts), self.cfg.batch_size):
                tokens = self.tokenizer(list(prompts[start : start + self.cfg.batch_size]))
                self.text_forward_calls += 1
                emb = self.model.encode_text(tokens.to(self.device))
                out.append(_normalize(emb.float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def load_clip_model(cfg: ClipConfig, weights: ClipWeights) -> ClipModel:
    import open_clip

    quiet_open_clip()

    cfg = replace(cfg, device=resolve_device("metrics.clip.device", cfg.device))
    pre = weights.preprocess
    kwargs: dict[str, Any] = {
        "force_quick_gelu": weights.quick_gelu,
        "image_mean": tuple(pre["mean"]),
        "image_std": tuple(pre["std"]),
        "image_interpolation": pre["interpolation"],
        "image_resize_mode": pre["resize_mode"],
    }
    if weights.path is None:
        # A fixed seed makes "random-init-seed0" one well-defined model, so its fingerprint is stable.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.random_init_seed)
            model, _, preprocess = open_clip.create_model_and_transforms(
                cfg.backbone, pretrained=None, **kwargs
            )
    else:
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                cfg.backbone, pretrained=str(weights.path), **kwargs
            )
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            raise WeightsError(f"CLIP weights {weights.path} do not load into {cfg.backbone}: {exc}") from exc
    model = model.to(cfg.device).eval()
    tokenizer = open_clip.get_tokenizer(cfg.backbone)
    return ClipModel(
        cfg=cfg,
        weights=weights,
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        fingerprint=clip_fingerprint(cfg, weights),
        device=cfg.device,
    )


def load_tokenizer(backbone: str) -> Any:
    import open_clip

    quiet_open_clip()

    return open_clip.get_tokenizer(backbone)


def is_truncated(tokenizer: Any, prompt: str) -> bool:
    """True if the prompt does not fit the text context (the tokenizer then cuts it, keeping EOT)."""
    context = int(getattr(tokenizer, "context_length", 77) or 77)
    if getattr(tokenizer, "reduction_fn", None) is None and hasattr(tokenizer, "sot_token_id"):
        return len(tokenizer.encode(prompt)) + 2 > context  # + start and end tokens
    # Other tokenizers: tokenise into a long context and count what would not fit.
    long = tokenizer([prompt], context_length=context * 8)
    return int((long != 0).sum()) > context

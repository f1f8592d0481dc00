"""Preference models beside CLIP: PickScore (transformers) and HPSv2.1 (open_clip).

Both are CLIP-architecture scorers fine-tuned on human preferences between images of
one prompt; the score of an image is its image embedding against the prompt's text
embedding:

- PickScore (Kirstain et al. 2023, yuvalkirstain/PickScore_v1, a CLIP ViT-H-14 in
  transformers format): logit_scale.exp() * cos(image, text), as in the model card.
- HPSv2.1 (Wu et al. 2023, xswu/HPSv2 HPS_v2.1_compressed.pt, an open_clip ViT-H-14
  checkpoint): cos(image, text), as hpsv2's `score` computes it, on HPSv2's own
  preprocessing: the longest side scaled to 224 and the short side padded with black to
  a square (hpsv2/src/open_clip/transform.py, `image_transform(resize_longest_max=True)`),
  not CLIP's centre crop, which cut the sides off 16:9 images and moved scores by 0.01-0.02.

Weights are resolved before anything heavy is imported, from the local Hugging Face
cache, a local file or folder, or a download when the host answers. Offline without
them: one warning saying how to provide them, and NaN. `pretrained: null` builds a
seeded random-init model (tests only; its fingerprint says random-init).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.library_logs import quiet_open_clip
from bench.metrics.config import PreferenceConfig
from bench.metrics.device import device_kind, float32_math, resolve_device
from bench.metrics.errors import WeightsError
from bench.metrics.fingerprint import RANDOM_INIT_MARK, file_sha256, fingerprint_id, library_versions

F32 = npt.NDArray[np.float32]
SCORERS = ("pickscore", "hpsv2")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
HPS_REPO = "xswu/HPSv2"
HPS_TAGS = {"hps_v2.1": "HPS_v2.1_compressed.pt", "hps_v2": "HPS_v2_compressed.pt"}
PICKSCORE_FILES = ("model.safetensors", "pytorch_model.bin")
# transformers CLIP dimensions for random-init PickScore models (tests): the real one is ViT-H-14.
PICKSCORE_DIMS: dict[str, dict[str, Any]] = {
    "ViT-H-14": {
        "text": {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 24,
            "num_attention_heads": 16,
        },
        "vision": {
            "hidden_size": 1280,
            "intermediate_size": 5120,
            "num_hidden_layers": 32,
            "num_attention_heads": 16,
            "patch_size": 14,
        },
        "projection_dim": 1024,
    },
    "tiny": {
        "text": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        "vision": {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "patch_size": 32,
        },
        "projection_dim": 32,
    },
}

HOW_TO_PROVIDE = {
    "pickscore": (
        "To provide PickScore weights: run once with internet access (they are cached), or copy the Hugging Face "
        "repo yuvalkirstain/PickScore_v1 (config.json + model.safetensors) to a folder and set "
        "metrics.pickscore.pretrained=/path/to/folder."
    ),
    "hpsv2": (
        "To provide HPSv2.1 weights: run once with internet access (they are cached), or download "
        "HPS_v2.1_compressed.pt from https://huggingface.co/xswu/HPSv2 and set metrics.hpsv2.pretrained=/path/to/file."
    ),
}


@dataclass(frozen=True)
class PreferenceWeights:
    path: Path | None  # a file (hpsv2) or folder (pickscore); None: random init
    label: str
    sha256: str


def _reachable(url: str) -> bool:
    from urllib.parse import urlparse

    return _host_answers(urlparse(url).hostname or "")


@functools.lru_cache(maxsize=8)
def _host_answers(host: str) -> bool:
    """Asked once per process: an offline run waits for the connection timeout once, not per model."""
    from bench.metrics.weights_lookup import host_reachable

    return host_reachable(f"https://{host}/")


def _folder_sha256(folder: Path, cache_dir: Path | None) -> str:
    import hashlib

    files = [folder / n for n in (*PICKSCORE_FILES, "config.json") if (folder / n).is_file()]
    return hashlib.sha256("".join(file_sha256(f, cache_dir) for f in files).encode()).hexdigest()


def resolve_weights(kind: str, cfg: PreferenceConfig, cache_dir: Path | None) -> PreferenceWeights:
    """Find the weights without importing the model libraries; WeightsError (with the fix) if unavailable."""
    if cfg.pretrained is None:
        return PreferenceWeights(None, RANDOM_INIT_MARK, f"{RANDOM_INIT_MARK}-seed{cfg.random_init_seed}")
    local = Path(cfg.pretrained).expanduser()
    if local.exists():
        if kind == "pickscore":
            if not local.is_dir() or not any((local / n).is_file() for n in PICKSCORE_FILES):
                raise WeightsError(
                    f"metrics.pickscore.pretrained={cfg.pretrained!r} is not a transformers CLIP folder. {HOW_TO_PROVIDE[kind]}"
                )
            return PreferenceWeights(local, f"dir:{local.name}", _folder_sha256(local, cache_dir))
        return PreferenceWeights(local, f"file:{local.name}", file_sha256(local, cache_dir))
    from huggingface_hub import try_to_load_from_cache

    files: tuple[str, ...]
    if kind == "hpsv2":
        if cfg.pretrained not in HPS_TAGS:
            raise WeightsError(
                f"metrics.hpsv2.pretrained={cfg.pretrained!r} is neither a tag ({', '.join(HPS_TAGS)}) nor an existing file. "
                + HOW_TO_PROVIDE[kind]
            )
        repo, files = HPS_REPO, (HPS_TAGS[cfg.pretrained],)
    else:
        repo, files = cfg.pretrained, PICKSCORE_FILES
    for name in files:
        found = try_to_load_from_cache(repo, name)
        if isinstance(found, str) and Path(found).is_file():
            path = Path(found) if kind == "hpsv2" else Path(found).parent
            return PreferenceWeights(path, cfg.pretrained, file_sha256(Path(found), cache_dir))
    url = f"https://huggingface.co/{repo}"
    if not cfg.allow_download or not _reachable(url):
        why = "downloads are disabled" if not cfg.allow_download else "huggingface.co is unreachable"
        raise WeightsError(
            f"{kind} weights {cfg.pretrained} are not in the local cache and {why}. {HOW_TO_PROVIDE[kind]}"
        )
    from huggingface_hub import hf_hub_download, snapshot_download

    if kind == "hpsv2":
        path = Path(hf_hub_download(repo, files[0]))
        return PreferenceWeights(path, cfg.pretrained, file_sha256(path, cache_dir))
    folder = Path(snapshot_download(repo, allow_patterns=["config.json", "*.safetensors"]))
    return PreferenceWeights(folder, cfg.pretrained, _folder_sha256(folder, cache_dir))


RESIZE = {
    "pickscore": "shortest-side bicubic + center crop",
    "hpsv2": "longest-side bicubic (on the tensor) + zero pad to square, as hpsv2 image_transform(resize_longest_max=True)",
}


def details(kind: str, cfg: PreferenceConfig, weights: PreferenceWeights) -> dict[str, Any]:
    """Everything that changes the numbers. Batch size does not (scores are per image); the kind of
    device (cpu, cuda, mps; resolved from auto) may in round-off, so scores from different kinds are
    kept apart rather than mixed silently."""
    return {
        "backbone": f"{kind}/{cfg.backbone}" if weights.path is None else kind,
        "weights": weights.label,
        "weights_sha256": weights.sha256,
        "preprocess": {"image_size": 224, "resize": RESIZE[kind], "mean": OPENAI_MEAN, "std": OPENAI_STD},
        "text": "user prompt; open_clip BPE tokens, 77 context, EOT kept",
        "score": "logit_scale.exp()*cos" if kind == "pickscore" else "cos",
        "dtype": "float32",
        "device": device_kind(resolve_device(f"metrics.{kind}.device", cfg.device)),
        "versions": library_versions("open_clip_torch", "transformers", "torch", "torchvision", "pillow"),
    }


def fingerprint(kind: str, cfg: PreferenceConfig, weights: PreferenceWeights) -> str:
    return fingerprint_id(kind, details(kind, cfg, weights))


def preprocess_transform(image_size: int = 224) -> Any:
    """CLIP's eval preprocessing (PickScore's processor): shortest side to 224 (bicubic), center crop,
    OpenAI mean/std."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(image_size),
            transforms.Lambda(lambda im: im.convert("RGB")),
            transforms.ToTensor(),
            transforms.Normalize(OPENAI_MEAN, OPENAI_STD),
        ]
    )


def hps_transform(image_size: int = 224) -> Any:
    """HPSv2's evaluation preprocessing, step for step as hpsv2 builds it (`create_model_and_transforms(...,
    light_augmentation=True)` -> `image_transform(224, is_train=False, resize_longest_max=True)`):
    to RGB, to a [0, 1] tensor, longest side to 224 by bicubic resize *of the tensor* (torchvision's
    default antialias), the short side padded with 0 (black, before normalising) centred with the odd
    pixel at the bottom/right, then OpenAI mean/std. tests/test_metrics_preference.py compares it with
    hpsv2's own transform on non-square images.

    Two deliberate differences, both where hpsv2's transform gives a tensor its model cannot take:
    an RGBA image loses its alpha here (hpsv2 passes 4 channels on), and an image whose longest
    side is already 224 but is not square is padded here (hpsv2 skips the padding when no resize is
    needed).
    """
    import torch
    from torchvision import transforms
    from torchvision.transforms import functional as tf

    def longest_side_and_pad(tensor: torch.Tensor) -> torch.Tensor:
        height, width = tensor.shape[1:]
        scale = image_size / float(max(height, width))
        if scale != 1.0:
            new_h, new_w = round(height * scale), round(width * scale)
            tensor = tf.resize(tensor, [new_h, new_w], transforms.InterpolationMode.BICUBIC)
            height, width = new_h, new_w
        pad_h, pad_w = image_size - height, image_size - width
        if pad_h or pad_w:
            tensor = tf.pad(tensor, [pad_w // 2, pad_h // 2, pad_w - pad_w // 2, pad_h - pad_h // 2], fill=0)
        return tensor

    return transforms.Compose(
        [
            transforms.Lambda(lambda im: im.convert("RGB")),
            transforms.ToTensor(),
            transforms.Lambda(longest_side_and_pad),
            transforms.Normalize(OPENAI_MEAN, OPENAI_STD),
        ]
    )


def _features(out: Any) -> Any:
    """transformers 4 returns the projected embedding; transformers 5 a ModelOutput holding it."""
    return out if hasattr(out, "norm") else out.pooler_output


@dataclass
class PreferenceModel:
    kind: str
    cfg: PreferenceConfig
    model: Any
    preprocess: Any
    tokenizer: Any
    scale: float  # PickScore: logit_scale.exp(); HPSv2: 1

    def encode_images(self, images: Sequence[Any]) -> F32:
        import torch

        out: list[F32] = []
        with torch.inference_mode(), float32_math(self.cfg.device):
            for start in range(0, len(images), self.cfg.batch_size):
                batch = torch.stack(
                    [self.preprocess(im) for im in images[start : start + self.cfg.batch_size]]
                )
                batch = batch.to(self.cfg.device)
                if self.kind == "pickscore":
                    emb = _features(self.model.get_image_features(pixel_values=batch))
                else:
                    emb = self.model.encode_image(batch)
                out.append((emb / emb.norm(dim=-1, keepdim=True)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def encode_texts(self, prompts: Sequence[str]) -> F32:
        import torch

        out: list[F32] = []
        with torch.inference_mode(), float32_math(self.cfg.device):
            for start in range(0, len(prompts), self.cfg.batch_size):
                tokens = self.tokenizer(list(prompts[start : start + self.cfg.batch_size])).to(
                    self.cfg.device
                )
                if self.kind == "pickscore":
                    emb = _features(self.model.get_text_features(input_ids=tokens))
                else:
                    emb = self.model.encode_text(tokens)
                out.append((emb / emb.norm(dim=-1, keepdim=True)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)

    def scores(self, image_emb: F32, text_emb: F32) -> npt.NDArray[np.float64]:
        cos = (np.asarray(image_emb, np.float64) * np.asarray(text_emb, np.float64)).sum(-1)
        return np.asarray(self.scale * cos, dtype=np.float64)


def _pickscore_model(cfg: PreferenceConfig, weights: PreferenceWeights) -> Any:
    import torch
    from transformers import CLIPConfig, CLIPModel

    if weights.path is not None:
        try:
            return CLIPModel.from_pretrained(str(weights.path), local_files_only=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(
                f"PickScore weights {weights.path} do not load: {exc}. {HOW_TO_PROVIDE['pickscore']}"
            ) from exc
    dims = PICKSCORE_DIMS.get(cfg.backbone)
    if dims is None:
        raise WeightsError(
            f"metrics.pickscore.backbone={cfg.backbone!r}: random init knows {', '.join(PICKSCORE_DIMS)}"
        )
    config = CLIPConfig(
        text_config={
            **dims["text"],
            "max_position_embeddings": 77,
            "vocab_size": 49408,
            "eos_token_id": 49407,
        },
        vision_config={**dims["vision"], "image_size": 224},
        projection_dim=dims["projection_dim"],
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.random_init_seed)
        return CLIPModel(config)


def _hpsv2_model(cfg: PreferenceConfig, weights: PreferenceWeights) -> Any:
    import open_clip

    quiet_open_clip()
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.random_init_seed)
        model = open_clip.create_model(cfg.backbone, pretrained=None)
    if weights.path is not None:
        try:
            checkpoint = torch.load(weights.path, map_location="cpu", weights_only=True)
            state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, dict) else checkpoint
            model.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        except (RuntimeError, OSError, ValueError, KeyError, AttributeError) as exc:
            raise WeightsError(
                f"HPSv2 weights {weights.path} do not load into {cfg.backbone}: {exc}"
            ) from exc
    return model


def load_model(kind: str, cfg: PreferenceConfig, weights: PreferenceWeights) -> PreferenceModel:
    import open_clip

    quiet_open_clip()

    cfg = replace(cfg, device=resolve_device(f"metrics.{kind}.device", cfg.device))
    model = (_pickscore_model if kind == "pickscore" else _hpsv2_model)(cfg, weights).to(cfg.device).eval()
    # Both models use CLIP's BPE vocabulary; open_clip ships it (transformers' tokenizer needs a download).
    tokenizer = open_clip.get_tokenizer("ViT-H-14")
    scale = float(model.logit_scale.exp().item()) if kind == "pickscore" else 1.0
    preprocess = hps_transform() if kind == "hpsv2" else preprocess_transform()
    return PreferenceModel(kind, cfg, model, preprocess, tokenizer, scale)

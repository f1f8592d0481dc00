"""CLIP score: torchmetrics' formula on the same model outputs, truncation, fingerprints (random-init model)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

import bench  # noqa: F401  (torchvision import fix before open_clip)
from bench.metrics import clip as clipmod
from bench.metrics.config import ClipConfig
from bench.metrics.errors import FingerprintMismatch, WeightsError
from bench.metrics.fingerprint import is_random_init, require_same
from bench.metrics.synthetic import synthetic_image

CFG = ClipConfig(pretrained=None, batch_size=4, allow_download=False)


@pytest.fixture(scope="module")
def model() -> clipmod.ClipModel:
    return clipmod.load_clip_model(CFG, clipmod.resolve_clip_weights(CFG, None))


class _HFLikeAdapter(torch.nn.Module):
    """The interface torchmetrics' clip_score expects (get_image_features / get_text_features)."""

    def __init__(self, m: clipmod.ClipModel) -> None:
        super().__init__()
        self.m = m
        self.config = SimpleNamespace()

    def get_image_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.m.model.encode_image(pixel_values)

    def get_text_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.m.model.encode_text(input_ids)


def _processor(m: clipmod.ClipModel) -> Any:
    from torchvision.transforms.functional import to_pil_image

    def process(images: Any = None, text: Any = None, **_: Any) -> dict[str, torch.Tensor]:
        if images is not None:
            return {"pixel_values": torch.stack([m.preprocess(to_pil_image(im)) for im in images])}
        ids = m.tokenizer(list(text))
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    return process


def test_scores_equal_torchmetrics_clip_score_formula(model: clipmod.ClipModel) -> None:
    from torchmetrics.functional.multimodal.clip_score import _clip_score_update

    rng = np.random.default_rng(0)
    images = [synthetic_image(rng, 80, i % 3) for i in range(6)]
    prompts = ["a red square", "a cat", "a lighthouse at dusk", "green", "a cat", "a dog on a sofa"]
    ours = clipmod.clip_score_from_embeddings(model.encode_images(images), model.encode_texts(prompts))
    tensors = [torch.from_numpy(np.asarray(im)).permute(2, 0, 1) for im in images]
    with torch.inference_mode():
        raw, n = _clip_score_update(tensors, prompts, _HFLikeAdapter(model), _processor(model))
    assert n == 6
    expected = torch.clamp(raw.double(), min=0).numpy()  # per image: 100 * max(cos, 0)
    assert np.abs(ours - expected).max() < 1e-3
    # The random model gives negative cosines for most pairs; check the unclamped values agree too.
    cos = (model.encode_images(images) * model.encode_texts(prompts)).sum(-1) * 100
    assert np.abs(cos - raw.numpy()).max() < 1e-3


def test_clamp_at_zero_and_scale() -> None:
    a = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    b = np.array([[2.0, 0.0], [-1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    assert clipmod.clip_score_from_embeddings(a, b) == pytest.approx([100.0, 0.0, 80.0])


def test_long_prompt_is_truncated_keeping_end_of_text(model: clipmod.ClipModel) -> None:
    long_prompt = " ".join(["a very detailed photograph of a red fox"] * 20)
    assert clipmod.is_truncated(model.tokenizer, long_prompt)
    assert not clipmod.is_truncated(model.tokenizer, "a red fox")
    tokens = model.tokenizer([long_prompt])[0]
    assert tokens.shape[0] == 77 and int(tokens[-1]) == model.tokenizer.eot_token_id
    # The text tower reads the EOT position (argmax token id): truncation must keep it.
    assert int(tokens.argmax()) == 76


def test_random_init_fingerprint_is_marked_and_stable() -> None:
    w = clipmod.resolve_clip_weights(CFG, None)
    fp = clipmod.clip_fingerprint(CFG, w)
    assert is_random_init(fp) and "ViT-B-32" in fp
    assert fp == clipmod.clip_fingerprint(CFG, clipmod.resolve_clip_weights(CFG, None))
    other = ClipConfig(pretrained=None, random_init_seed=1)
    assert clipmod.clip_fingerprint(other, clipmod.resolve_clip_weights(other, None)) != fp


def test_batch_size_changes_no_score_so_it_is_not_in_the_fingerprint(model: clipmod.ClipModel) -> None:
    rng = np.random.default_rng(5)
    images = [synthetic_image(rng, 64 + 8 * i, i % 3) for i in range(7)]
    prompts = ["a red square", "a cat", "two dogs", "green", "a blue circle", "a fox", "a ship"]
    scores = {}
    for batch in (1, 3, 32):
        m = replace(model, cfg=replace(CFG, batch_size=batch))
        scores[batch] = clipmod.clip_score_from_embeddings(m.encode_images(images), m.encode_texts(prompts))
    np.testing.assert_allclose(scores[1], scores[32], atol=1e-4, rtol=0)
    np.testing.assert_allclose(scores[3], scores[32], atol=1e-4, rtol=0)
    w = clipmod.resolve_clip_weights(CFG, None)
    assert clipmod.clip_fingerprint(replace(CFG, batch_size=1), w) == clipmod.clip_fingerprint(CFG, w)


def test_require_same_refuses_mixed_fingerprints_and_names_random_init() -> None:
    assert require_same(["clip:a:1", "clip:a:1", None], "CLIP mean") == "clip:a:1"
    with pytest.raises(FingerprintMismatch, match="RANDOM-INIT"):
        require_same(["clip:ViT-B-32:openai:abc", "clip:ViT-B-32:random-init:def"], "CLIP mean")
    with pytest.raises(FingerprintMismatch, match="no scored values"):
        require_same([None], "CLIP mean")


def test_unavailable_weights_fail_fast_with_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clipmod, "_cached_pretrained_file", lambda pcfg: None)
    with pytest.raises(WeightsError, match=r"metrics\.clip\.pretrained=/path/to/file"):
        clipmod.resolve_clip_weights(ClipConfig(pretrained="openai", allow_download=False), None)
    with pytest.raises(WeightsError, match="neither an open_clip tag"):
        clipmod.resolve_clip_weights(ClipConfig(pretrained="/no/such/file.pt"), None)

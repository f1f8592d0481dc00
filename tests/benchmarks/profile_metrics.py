"""Where the metrics' time goes: torch.profiler op shares and counted FLOPs, ours beside the references.

    .venv/bin/python tests/benchmarks/profile_metrics.py [--images 16] [--size 512] [--layout-ab 4]

CLIP (random-init ViT-B-32): our batched image path vs per-image open_clip (image + text per
image, on a quarter of the images). Inception: our extractor vs torch-fidelity's
FeatureExtractorInceptionV3 with the same weights (on half of the images). Prints the top
operators by self CPU time; shares, not times, are the point (the machine may be shared).
--layout-ab N: N interleaved timings of the Inception network alone on `--images` 299x299
inputs, default layout against channels_last (as load_extractor sets it up).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

import bench  # noqa: F401  (torchvision import fix)
from bench.metrics import clip as clipmod
from bench.metrics import inception
from bench.metrics.config import ClipConfig
from bench.metrics.synthetic import PROMPTS, synthetic_image


def _top(prof: Any, label: str, per: int, n: int = 8) -> None:
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    flops = sum(e.flops for e in events)
    print(f"== {label}: self CPU {total / 1e6:.2f} s, {flops / 1e9 / per:.1f} GFLOP counted per image")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:n]:
        print(f"  {e.key:48s} {100 * e.self_cpu_time_total / total:5.1f}%")


def _layout_ab(n_images: int, rounds: int) -> None:
    plain = torch.jit.load(str(inception.fid_helper_weights_path()), map_location="cpu").eval()  # type: ignore[no-untyped-call]
    ours = inception.load_extractor(device="cpu").module
    x = (torch.rand(n_images, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 255 - 128) / 128
    inputs = {
        "default layout": (plain, x),
        "channels_last": (ours, x.contiguous(memory_format=torch.channels_last)),
    }
    times: dict[str, list[float]] = {k: [] for k in inputs}
    with torch.inference_mode(), torch.jit.optimized_execution(False):  # type: ignore[attr-defined]
        for module, inp in inputs.values():
            module(inp)  # warm-up
        for _ in range(rounds):
            for label, (module, inp) in inputs.items():
                start = time.perf_counter()
                module(inp)
                times[label].append(time.perf_counter() - start)
    for label, values in times.items():
        print(f"{label:>15}: median {np.median(values):.2f} s  ({', '.join(f'{v:.2f}' for v in values)})")
    ratio = float(np.median(times["default layout"]) / np.median(times["channels_last"]))
    print(f"channels_last speed-up on the network alone: {ratio:.2f}x ({n_images} images)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--layout-ab", type=int, default=0)
    args = ap.parse_args()
    if args.layout_ab:
        _layout_ab(args.images, args.layout_ab)
        return
    rng = np.random.default_rng(0)
    images = [synthetic_image(rng, args.size, i % 3) for i in range(args.images)]

    cfg = ClipConfig(pretrained=None, batch_size=args.images, device="cpu")
    m = clipmod.load_clip_model(cfg, clipmod.resolve_clip_weights(cfg, None))
    m.encode_images(images[:2])  # warm-up
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        m.encode_images(images)
    _top(prof, f"CLIP ours, batched ({len(images)} images)", len(images))
    few = images[: max(1, args.images // 4)]
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof, torch.no_grad():
        for i, image in enumerate(few):
            m.model.encode_image(m.preprocess(image).unsqueeze(0))
            m.model.encode_text(m.tokenizer([PROMPTS[i % len(PROMPTS)]]))
    _top(prof, f"CLIP per-image open_clip, image + text ({len(few)} images)", len(few))

    ex = inception.load_extractor(batch_size=args.images, device="cpu")
    half = [inception.to_uint8_chw(im) for im in images[: max(1, args.images // 2)]]
    ex.features(half[:1])  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        ex.features(half)
    _top(prof, f"Inception ours ({len(half)} images)", len(half))
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.pth"
        torch.save(inception.to_torch_fidelity_state_dict(ex.module), path)
        ref = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
        )
    with torch.no_grad():
        ref(torch.stack(half[:1]))  # warm-up
        with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
            ref(torch.stack(half))
    _top(prof, f"Inception torch-fidelity ({len(half)} images)", len(half))


if __name__ == "__main__":
    main()

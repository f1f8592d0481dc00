"""Throughput of the metrics stage on CPU, each beside the naive path measured in the same run.

    .venv/bin/python tests/benchmarks/bench_metrics.py [--images 48] [--size 512] [--fid-formula]

CLIP: our batched path (the scorer's: images decoded in chunks with the next chunk decoded in a
background thread, preprocessed once, batches under inference_mode, one text embedding per
distinct prompt) vs per-image unbatched open_clip (image
and text encoded for every image). A random-init ViT-B-32 is used (no weights
offline); the cost is the same as with real weights.
Inception: our extractor (fid-helper TorchScript graph, channels_last, batched TF1 resize on
uint8, fed by the same chunked decoding) vs torch-fidelity's FeatureExtractorInceptionV3 with
the same weights and batch size.
--fid-formula also times our Fréchet distance against torchmetrics' _compute_fid
at d=2048 (torchmetrics takes tens of seconds per call here).
Prints ratios, asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import bench  # noqa: F401  (torchvision import fix)
from bench.metrics import clip as clipmod
from bench.metrics import inception
from bench.metrics.config import ClipConfig
from bench.metrics.fid import fid_from_stats, gaussian_stats, torchmetrics_frechet_distance
from bench.metrics.images import decode_rgb, decoded_chunks
from bench.metrics.synthetic import PROMPTS, synthetic_image


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=48)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--fid-formula", action="store_true")
    args = ap.parse_args()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.images} PNGs {args.size}x{args.size}"
        f", load average {os.getloadavg()[0]:.1f} at start"
    )

    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(args.images):
            p = Path(tmp) / f"{i:04d}.png"
            synthetic_image(rng, args.size, i % 3).save(p)
            paths.append(p)
        prompts = [PROMPTS[i % len(PROMPTS)] for i in range(args.images)]

        cfg = ClipConfig(pretrained=None, batch_size=args.batch)
        m = clipmod.load_clip_model(cfg, clipmod.resolve_clip_weights(cfg, None))
        m.encode_images([decode_rgb(paths[0])])  # warm-up

        items = [(str(i), p) for i, p in enumerate(paths)]

        def ours_clip() -> None:
            img = np.concatenate(
                [m.encode_images([im for _, im in chunk]) for chunk in decoded_chunks(items, args.batch)]
            )
            distinct = list(dict.fromkeys(prompts))
            txt = dict(zip(distinct, m.encode_texts(distinct), strict=True))
            clipmod.clip_score_from_embeddings(img, np.stack([txt[p] for p in prompts]))

        def naive_clip() -> None:
            with torch.no_grad():
                for p, prompt in zip(paths, prompts, strict=True):
                    x = m.preprocess(decode_rgb(p)).unsqueeze(0)
                    a = m.model.encode_image(x)
                    b = m.model.encode_text(m.tokenizer([prompt]))
                    torch.nn.functional.cosine_similarity(a, b).clamp(min=0) * 100

        t_ours, t_naive = _timed(ours_clip), _timed(naive_clip)
        n = args.images
        print(
            f"CLIP ViT-B-32   ours {n / t_ours:6.2f} img/s | naive per-image open_clip {n / t_naive:6.2f} img/s"
            f" | ratio {t_naive / t_ours:.2f}x"
        )

        ex = inception.load_extractor(batch_size=args.batch)
        with tempfile.TemporaryDirectory() as wdir:
            wpath = Path(wdir) / "w.pth"
            torch.save(inception.to_torch_fidelity_state_dict(ex.module), wpath)
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            tf = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(wpath)
            )
        ex.features([inception.to_uint8_chw(decode_rgb(paths[0]))])  # warm-up (TorchScript profiling runs)

        def ours_inc() -> None:
            for chunk in decoded_chunks(items, args.batch):
                ex.features([inception.to_uint8_chw(im) for _, im in chunk])

        def tf_inc() -> None:
            imgs = [inception.to_uint8_chw(decode_rgb(p)) for p in paths]
            with torch.no_grad():
                for s in range(0, len(imgs), args.batch):
                    tf(torch.stack(imgs[s : s + args.batch]))

        t_ours, t_tf = _timed(ours_inc), _timed(tf_inc)
        print(
            f"Inception-v3    ours {n / t_ours:6.2f} img/s | torch-fidelity extractor {n / t_tf:6.2f} img/s"
            f" | ratio {t_tf / t_ours:.2f}x"
        )
        print(f"  -> 192-image demo: ~{192 / (n / t_ours):.0f} s of Inception features")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")

    if args.fid_formula:
        frng = np.random.default_rng(1)
        a = gaussian_stats(frng.normal(size=(200, 2048)))
        b = gaussian_stats(frng.normal(size=(200, 2048)) + 0.1)
        t_ours = _timed(lambda: fid_from_stats(a, b))
        t_tm = _timed(lambda: torchmetrics_frechet_distance(a.mu, a.sigma, b.mu, b.sigma))
        print(
            f"Frechet d=2048 n=200: ours {t_ours * 1e3:.1f} ms | torchmetrics _compute_fid {t_tm:.1f} s"
            f" | ratio {t_tm / t_ours:.0f}x (values {fid_from_stats(a, b):.6f} vs "
            f"{torchmetrics_frechet_distance(a.mu, a.sigma, b.mu, b.sigma):.6f})"
        )


if __name__ == "__main__":
    main()

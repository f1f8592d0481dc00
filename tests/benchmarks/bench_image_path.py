"""The decode check of a real-sized image, inline and on 2 worker threads, in the same run.

bench.images.check_images on a 1024x1024 PNG and JPEG: inline on one thread, and spread
over 2 worker threads as the runner does for answers over 64 KiB (Pillow and hashlib
release the GIL). The durable write of each image (bench.durable_files) is measured by
bench_runner.py with the runner itself: in isolation its cost is dominated by file
creation and swings with the disk's other users.

Run: PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_image_path.py [--decodes 10]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from bench.images import check_images


def real_sized_images() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 200, 1024)[None, :, None]
    pixels = (rng.random((1024, 1024, 3)) * 40 + gradient).astype("uint8")
    out = {}
    for fmt, kw in (("PNG", {}), ("JPEG", {"quality": 90})):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt, **kw)
        out[fmt] = buf.getvalue()
    return out


def decode_check(n: int) -> None:
    print("decode check + sha256 of one 1024x1024 image (ms per image):")
    for fmt, data in real_sized_images().items():
        t0 = time.perf_counter()
        for _ in range(n):
            check_images([data])
        inline = (time.perf_counter() - t0) / n
        with ThreadPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            list(pool.map(check_images, [[data]] * (2 * n)))
            threaded = (time.perf_counter() - t0) / (2 * n)
        print(
            f"  {fmt:<5} {len(data) / 1e6:5.2f} MB: inline {inline * 1e3:6.1f}   "
            f"2 threads {threaded * 1e3:6.1f}  ({inline / threaded:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decodes", type=int, default=10)
    args = parser.parse_args()
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    decode_check(args.decodes)


if __name__ == "__main__":
    main()

"""What each stored image costs the runner, beside its baseline in the same run.

1. The decode check (bench.images.check_images) of a real-sized image (1024x1024 PNG and
   JPEG): inline on one thread, and spread over 2 worker threads as the runner does for
   answers over 64 KiB (Pillow and hashlib release the GIL).
2. Storing a new image file durably (bench.store.write_file_durably: write, fsync, rename),
   in CPU and wall time per file: the runner's writer thread does this for every new image.

Run: PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_image_path.py [--files 2000]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from bench.images import check_images
from bench.store import write_file_durably


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


def durable_writes(n_files: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(256):
            (root / f"{i:02x}").mkdir()
        files = []
        for i in range(n_files):
            data = i.to_bytes(4, "big") + os.urandom(296)
            digest = hashlib.sha256(data).hexdigest()
            files.append((root / digest[:2] / f"{digest}.png", data))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for path, data in files:
            write_file_durably(path, data)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(f"storing {n_files} new 300-byte image files (write + fsync + rename), ms per file:")
    print(
        f"  CPU {cpu / n_files * 1e3:6.3f}   wall {wall / n_files * 1e3:6.3f}   ({n_files / wall:.0f} files/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--decodes", type=int, default=10)
    args = parser.parse_args()
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    decode_check(args.decodes)
    durable_writes(args.files)


if __name__ == "__main__":
    main()

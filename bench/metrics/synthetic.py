"""A small synthetic run directory (records.parquet + PNGs) for tests, benchmarks and smoke checks.

Images are seeded noise-and-shape pictures, different in distribution per
target, so FID between targets is clearly non-zero. No model is involved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from bench.records import COLUMNS, RECORD_SCHEMA

PROMPTS = (
    "a red square on a blue background",
    "a photograph of a cat sitting on a wooden chair",
    "an oil painting of a lighthouse at dusk",
    "a green circle",
)


def synthetic_image(rng: np.random.Generator, size: int, style: int) -> Image.Image:
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    base = np.stack([xx, yy, (xx + yy) / 2], axis=-1)[..., np.roll(np.arange(3), style)]
    noise = rng.normal(0, 0.08 + 0.06 * style, size=(size, size, 3))
    img = np.clip(base + noise, 0, 1)
    cx, cy, r = rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.25)
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
    img[mask] = rng.uniform(0, 1, size=3)
    return Image.fromarray((img * 255).astype(np.uint8))


def write_synthetic_run(
    run_dir: Path,
    *,
    targets: tuple[str, ...] = ("model-a", "model-b"),
    per_target: int = 8,
    size: int = 64,
    prompts: tuple[str, ...] = PROMPTS,
    failed: int = 1,
    seed: int = 0,
) -> Path:
    """Write `per_target` ok images per target plus `failed` error rows; return records.parquet's path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "images").mkdir(exist_ok=True)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for t_index, target in enumerate(targets):
        for i in range(per_target):
            prompt_index = i % len(prompts)
            img = synthetic_image(rng, size, t_index % 3)
            rel = f"images/{target}-{i:04d}.png"
            img.save(run_dir / rel)
            data = (run_dir / rel).read_bytes()
            rows.append(
                _row(
                    target,
                    prompts,
                    prompt_index,
                    i,
                    size,
                    status="ok",
                    path=rel,
                    sha=hashlib.sha256(data).hexdigest(),
                )
            )
    for j in range(failed):
        rows.append(_row(targets[0], prompts, 0, per_target + j, size, status="error", path=None, sha=None))
    columns = {c: [r.get(c) for r in rows] for c in COLUMNS}
    table = pa.Table.from_pydict(columns, schema=RECORD_SCHEMA)
    path = run_dir / "records.parquet"
    pq.write_table(table, path)
    return path


def _row(
    target: str,
    prompts: tuple[str, ...],
    p: int,
    i: int,
    size: int,
    *,
    status: str,
    path: str | None,
    sha: str | None,
) -> dict[str, object]:
    return {
        "run_id": "synthetic",
        "request_key": f"{target}-{i}",
        "image_index": 0,
        "target": target,
        "provider": "local",
        "model": target,
        "synthetic": True,
        "prompt_id": f"p{p}",
        "prompt": prompts[p],
        "steps": 20.0,
        "guidance": 7.5,
        "seed": float(i // len(prompts)),
        "size": f"{size}x{size}",
        "status": status,
        "attempts": 1,
        "latency_s": 0.1,
        "clip_score": float("nan"),
        "image_path": path,
        "image_sha256": sha,
    }

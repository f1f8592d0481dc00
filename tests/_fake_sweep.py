"""A made-up 36-group sweep's records (4 targets x 3 steps x 3 guidance), for plot rules checked in code.

Costs $0, $0.20, $1.64 and $40 per 1,000 images (a linear axis would crush three of them);
one target's 9 groups share a single (cost, quality) point (36 labels would stack there).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TARGETS = {
    "fal:flux-schnell": 0.0002,
    "replicate:sdxl": 0.00164,
    "openai:dall-e-3": 0.04,
    "local:shapes": 0.0,
}
RANDOM_FP = "clip:ViT-B-32:random-init:random-init:abc"


def fake_records(*, failures: bool = True, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    i = 0
    for target, cost in TARGETS.items():
        for steps in (2, 4, 8):
            for guidance in (1.0, 4.0, 7.0):
                for p in range(6):
                    i += 1
                    status = "ok"
                    if failures and rng.random() < 0.1:
                        status = str(rng.choice(["error", "refused"]))
                    ok = status == "ok"
                    local = target.startswith("local")
                    rows.append({
                        "request_key": f"k{i}", "image_index": 0, "target": target,
                        "provider": target.split(":")[0], "model": target.split(":")[1],
                        "synthetic": local, "emulated": target.startswith("fal"),
                        "prompt_id": f"p{p}", "prompt": f"prompt {p}", "category": ("animals", "text", "people")[p % 3],
                        "steps": float(steps), "guidance": guidance, "size": "512x512", "status": status,
                        "attempts": int(rng.integers(1, 3)), "started_at": T0 + dt.timedelta(seconds=i * 0.1),
                        "latency_s": 0.01 if local else float(rng.gamma(2, 0.5)),
                        "cost_usd": cost if ok else np.nan,
                        "clip_score": (30.0 if local else 25 + steps * 0.3 + rng.normal()) if ok else np.nan,
                        "clip_fingerprint": RANDOM_FP if ok else None,
                        "poll_interval_s": 0.4 if target.startswith("fal") else np.nan,
                        "run_path": "", "image_relpath": None,
                    })  # fmt: skip
    return pd.DataFrame(rows)

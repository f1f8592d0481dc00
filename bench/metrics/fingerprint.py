"""Fingerprints: exactly how a score was computed, so that different computations are never mixed.

A CLIP score from ViT-B-32/openai and one from ViT-L-14 are different quantities,
and an FID from a resize-with-antialias pipeline is not comparable to the
standard one. Every stored score carries a fingerprint id; `require_same`
refuses to combine scores whose ids differ.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.metrics.errors import FingerprintMismatch

RANDOM_INIT_MARK = "random-init"


def canonical_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint_id(kind: str, details: Mapping[str, Any]) -> str:
    """A short, readable id: kind, backbone, weights tag and a hash of every detail.

    The readable prefix is for humans; the hash is what makes two ids differ when
    any detail (batch size, library version, ...) differs.
    """
    digest = hashlib.sha256(canonical_json(details).encode()).hexdigest()[:16]
    parts = [kind, str(details.get("backbone", "")), str(details.get("weights", ""))]
    if is_random_init_details(details) and RANDOM_INIT_MARK not in parts:
        parts.append(RANDOM_INIT_MARK)
    return ":".join(p for p in parts if p) + ":" + digest


def is_random_init_details(details: Mapping[str, Any]) -> bool:
    return RANDOM_INIT_MARK in str(details.get("weights_sha256", ""))


def is_random_init(fp_id: str | None) -> bool:
    return fp_id is not None and RANDOM_INIT_MARK in fp_id


def require_same(fps: Iterable[str | None], what: str) -> str:
    """Return the one fingerprint shared by all scores, or raise FingerprintMismatch.

    Missing fingerprints (unscored rows) are ignored; if none is left, raise too,
    because there is nothing comparable to combine.
    """
    distinct = sorted({fp for fp in fps if fp})
    if not distinct:
        raise FingerprintMismatch(f"{what}: no scored values with a fingerprint; run `bench score` first")
    if len(distinct) > 1:
        marked = [f"{fp} (RANDOM-INIT WEIGHTS)" if is_random_init(fp) else fp for fp in distinct]
        raise FingerprintMismatch(
            f"{what}: refusing to average or compare scores computed differently; fingerprints: "
            + "; ".join(marked)
            + ". Re-score all runs with the same metrics config (`bench score RUN_DIR`)."
        )
    return distinct[0]


def file_sha256(path: Path, cache_dir: Path | None = None) -> str:
    """sha256 of a file, memoised on disk by (path, size, mtime) because weights files are large."""
    path = Path(path).resolve()
    st = path.stat()
    memo: Path | None = None
    if cache_dir is not None:
        key = hashlib.sha256(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:32]
        memo = cache_dir / "sha256" / key
        if memo.is_file():
            return memo.read_text().strip()
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    if memo is not None:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(digest)
        os.replace(tmp, memo)
    return digest


def library_versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out

"""Fetched schemas on disk: <cache>/catalog/<provider>/<model>.json, with fetch time and sha256.

<cache> is `catalog.cache_dir`, else $T2I_BENCH_CACHE, else ~/.cache/t2i-bench (the
metrics cache's root). One file per model: what the provider answered (`raw`),
its sha256 (over canonical JSON, so a schema change shows as a new hash), when it
was fetched, the catalog entry made from it, and the price the provider published.
Writes go through a temporary file and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

DEFAULT_ROOT = "~/.cache/t2i-bench"


def cache_root(configured: str | Path | None = None) -> Path:
    raw = configured or os.environ.get("T2I_BENCH_CACHE") or DEFAULT_ROOT
    return Path(raw).expanduser() / "catalog"


class CatalogCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def provider_dir(self, provider: str) -> Path:
        return self.root / provider

    def path(self, provider: str, model: str) -> Path:
        # Model ids hold slashes and colons (fal-ai/flux/dev, owner/name:version): quote them.
        return self.provider_dir(provider) / (urllib.parse.quote(model, safe="") + ".json")

    def read(self, provider: str, model: str) -> dict[str, Any] | None:
        path = self.path(provider, model)
        try:
            record: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged file is as good as none: it is fetched again
        return record if isinstance(record.get("entry"), Mapping) else None

    def write(self, provider: str, model: str, record: Mapping[str, Any]) -> Path:
        path = self.path(provider, model)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1, sort_keys=True, default=str)
        os.replace(tmp, path)
        return path

    def records(self, provider: str) -> Iterator[dict[str, Any]]:
        folder = self.provider_dir(provider)
        if not folder.is_dir():
            return
        for path in sorted(folder.glob("*.json")):
            model = urllib.parse.unquote(path.stem)
            record = self.read(provider, model)
            if record is not None:
                yield record

"""A cross-run response cache: a request already answered in any run is not paid for again.

Keyed by the request key (provider, model, canonical payload, repeat), so a request
counts as "the same" exactly when resume would think so. Layout under `cache.dir`
(default `results/.cache`):

    requests/ab/<request_key>-<endpoint>.json   the request's rows as first stored (ok or refused)
    images/ab/<sha256>.<ext>         content-addressed, hard-linked with the runs' images

A replayed request is written into the new run with `cached=true`, its original
latency, timings and cost kept (they describe what the provider did), and it costs
this run's budget nothing. Entries are written atomically (temp file, then rename),
so parallel jobs of a multirun can share one cache. An entry belongs to the endpoint that
answered it (the provider's base_url): an emulator's or a proxy's answers are never replayed
to a run against another endpoint. Parallel jobs; two jobs asking for the same
request at the same moment may both send it (the second write wins, both rows are
true outcomes).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.errors import ConfigError

log = logging.getLogger("bench.cache")
CacheMode = Literal["read_write", "read", "write", "off"]
MODES: tuple[str, ...] = ("read_write", "read", "write", "off")
CACHEABLE_STATUSES = frozenset({"ok", "refused"})  # final outcomes; errors and skips are retried
ENTRY_VERSION = 1


@dataclass(frozen=True)
class CacheSettings:
    mode: CacheMode = "read_write"
    dir: Path | None = None  # None: <results_dir>/.cache
    # Providers never cached: the offline `local` generator costs nothing, and replaying it
    # would only hide the latency a re-run came to measure.
    skip_providers: frozenset[str] = frozenset({"local"})

    def covers(self, provider: str) -> bool:
        return self.mode != "off" and provider not in self.skip_providers

    @property
    def reads(self) -> bool:
        return self.mode in ("read_write", "read")

    @property
    def writes(self) -> bool:
        return self.mode in ("read_write", "write")


def parse_cache(cfg: Mapping[str, Any] | None, results_dir: Path) -> CacheSettings:
    cfg = cfg or {}
    mode = cfg.get("mode", "read_write")
    if mode not in MODES:
        raise ConfigError("cache.mode", mode, f"use one of {', '.join(MODES)}")
    folder = cfg.get("dir")
    path = Path(str(folder)).expanduser() if folder else results_dir / ".cache"
    skip = cfg.get("skip_providers", ["local"])
    if not isinstance(skip, list | tuple) or not all(isinstance(p, str) for p in skip):
        raise ConfigError("cache.skip_providers", skip, "list provider names, e.g. [local]")
    return CacheSettings(mode=mode, dir=path, skip_providers=frozenset(skip))


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link where the filesystem allows (same device), else copy; never overwrite."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class ResponseCache:
    def __init__(self, settings: CacheSettings) -> None:
        assert settings.dir is not None
        self.settings = settings
        self.root = settings.dir

    def _entry_path(self, key: str, endpoint: str) -> Path:
        scope = hashlib.sha256(endpoint.encode()).hexdigest()[:12]
        return self.root / "requests" / key[:2] / f"{key}-{scope}.json"

    def lookup(self, key: str, endpoint: str) -> list[dict[str, Any]] | None:
        """The stored rows of this request, or None. A damaged entry is a miss, not a failure."""
        if not self.settings.reads:
            return None
        path = self._entry_path(key, endpoint)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("cache entry %s is unreadable (%s); the request is sent", path, exc)
            return None
        rows = entry.get("rows") if isinstance(entry, dict) else None
        if not isinstance(rows, list) or not rows:
            return None
        for row in rows:
            image = row.get("image_path")
            if image and not (self.root / image).is_file():
                return None  # its image was pruned: not a usable answer
        return [dict(row) for row in rows]

    def replay(self, key: str, endpoint: str, run_id: str, run_dir: Path) -> list[dict[str, Any]] | None:
        """The rows to write into run_dir for a cached request (images linked in first), or None."""
        rows = self.lookup(key, endpoint)
        if rows is None:
            return None
        for row in rows:
            image = row.get("image_path")
            if image:
                _link_or_copy(self.root / image, run_dir / image)
            row["run_id"] = run_id
            row["cached"] = True
        return rows

    def remember(self, rows: Sequence[Mapping[str, Any]], endpoint: str, run_dir: Path) -> None:
        """Store a live request's final rows (its images already written in run_dir)."""
        if not self.settings.writes or not rows or rows[0].get("status") not in CACHEABLE_STATUSES:
            return
        if not self.settings.covers(str(rows[0].get("provider"))):
            return
        if any(row.get("cached") for row in rows):
            return  # a replay: the entry it came from is already there
        key = str(rows[0]["request_key"])
        try:
            for row in rows:
                image = row.get("image_path")
                if image:
                    _link_or_copy(run_dir / image, self.root / image)
            path = self._entry_path(key, endpoint)
            path.parent.mkdir(parents=True, exist_ok=True)
            body = {
                "version": ENTRY_VERSION,
                "endpoint": endpoint,
                "source_run": str(run_dir),
                "rows": list(rows),
            }
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, prefix=f".{key}.", suffix=".tmp", delete=False, encoding="utf-8"
            ) as fh:
                json.dump(body, fh, default=_json_default, ensure_ascii=False)
                tmp = Path(fh.name)
            os.replace(tmp, path)
        except OSError as exc:
            # The run's own results are safe in its folder; only future reuse is lost.
            log.warning("cannot write the response cache at %s: %s", self.root, exc)

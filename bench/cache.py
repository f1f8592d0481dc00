"""A cross-run response cache: a request already answered in any run is not paid for again.

An entry is keyed by the request key (provider, model, canonical payload, repeat) and the
*scope* of whoever answered it (bench.providers.base.Provider.cache_scope): for a hosted
API its endpoint; for a local diffusers pipeline a content fingerprint of its weights, the
device's name and the library versions. Layout under `cache.dir` (default
`results/.cache`):

    requests/ab/<request_key>-<scope hash>.json   the answer's response fields (ok or refused)
    images/ab/<sha256>.<ext>                      content-addressed, hard-linked with the runs' images
    claims/ab/<request_key>-<scope hash>.claim    who is sending it right now (bench.cache_claims)

An entry holds only what the provider answered (images, timings, cost, provider ids) and
the run that paid for it; every request field of a replayed record (prompt id, category,
size, steps, ...) is the current job's. Nothing read back is trusted: an entry must carry
a matching integrity digest over its fields, the request key and scope it is filed under,
and sane values; every replayed image must hash to its sha256 and lie inside the cache.
Anything else is a miss (one warning per entry), and a damaged entry is dropped. Entries
older than `cache.max_age` are misses. Errors are never cached.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.errors import ConfigError

log = logging.getLogger("bench.cache")
CacheMode = Literal["read_write", "read", "write", "off"]
MODES: tuple[str, ...] = ("read_write", "read", "write", "off")
CACHEABLE_STATUSES = frozenset({"ok", "refused"})  # final outcomes; errors and skips are retried
ENTRY_VERSION = 2
DEFAULT_MAX_AGE = "14d"
# What a cache entry keeps of a record: the provider's answer, never the request's labels.
RESPONSE_FIELDS: tuple[str, ...] = (
    "image_index",
    "status",
    "error_type",
    "error_message",
    "http_status",
    "attempts",
    "started_at",
    "latency_s",
    "client_wait_s",
    "queue_s",
    "inference_s",
    "download_s",
    "poll_interval_s",
    "cost_usd",
    "cost_source",
    "image_path",
    "image_sha256",
    "image_format",
    "image_width",
    "image_height",
    "revised_prompt",
    "seed_used",
    "provider_request_id",
    "device",
    "peak_gpu_memory_mb",
    "warmup_s",
    "software",
    "emulated",
)
NUMBER_FIELDS = frozenset(
    {
        "http_status",
        "latency_s",
        "client_wait_s",
        "queue_s",
        "inference_s",
        "download_s",
        "poll_interval_s",
        "cost_usd",
        "image_width",
        "image_height",
        "seed_used",
        "peak_gpu_memory_mb",
        "warmup_s",
    }
)
_INT_FIELDS = frozenset({"image_index", "attempts"})
_COST_SOURCES = frozenset({"reported", "price_api", "price_table", "unknown"})
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXTENSION = re.compile(r"[a-z0-9]{1,5}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(key: str, value: Any) -> float | None:
    """'14d', '36h', '90m', '30s', '500ms', '2w' -> seconds; null/'never' -> None (no limit)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "never"):
        return None
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise ConfigError(
            key, value, "write a positive number with a unit (ms, s, m, h, d, w), e.g. 14d or 36h; or never"
        )
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class CacheSettings:
    mode: CacheMode = "read_write"
    dir: Path | None = None  # None: <results_dir>/.cache
    # Providers never cached: the offline `local` generator costs nothing, and replaying it
    # would only hide the latency a re-run came to measure.
    skip_providers: frozenset[str] = frozenset({"local"})
    max_age_s: float | None = 14 * 86400.0  # older entries are misses; None: no limit
    claim_poll_s: float = 0.5  # how often a job waiting for another's claim looks for its answer
    claim_stale_after_s: float = 120.0  # a claim unchanged this long belongs to a dead job

    def covers(self, provider: str) -> bool:
        return self.mode != "off" and provider not in self.skip_providers

    @property
    def reads(self) -> bool:
        return self.mode in ("read_write", "read")

    @property
    def writes(self) -> bool:
        return self.mode in ("read_write", "write")

    @property
    def claims(self) -> bool:
        """Claims only make sense where the claimant's answer is stored and read back."""
        return self.mode == "read_write"


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
    stale_after = parse_duration("cache.claim_stale_after", cfg.get("claim_stale_after", "2m"))
    poll = parse_duration("cache.claim_poll", cfg.get("claim_poll", "0.5s"))
    if stale_after is None or poll is None:
        raise ConfigError("cache.claim_stale_after", "never", "claims need a finite time, e.g. 2m and 0.5s")
    return CacheSettings(
        mode=mode,
        dir=path,
        skip_providers=frozenset(skip),
        max_age_s=parse_duration("cache.max_age", cfg.get("max_age", DEFAULT_MAX_AGE)),
        claim_poll_s=poll,
        claim_stale_after_s=stale_after,
    )


@dataclass(frozen=True)
class CachedAnswer:
    """A verified entry: the response fields of each of its rows, how old it is and who paid for it."""

    responses: list[dict[str, Any]]
    age_s: float
    origin_run: str
    scope: str = field(repr=False)


def link_into(source: Path, target: Path) -> None:
    """Put `source` at `target` (hard link on one device, else a copy); never overwrite.

    Content-addressed names: whoever got there first stored the same bytes. No shared temp
    name is used, so two replays of one image at once cannot trip over each other.
    """
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return
    except FileExistsError:
        return
    except OSError:
        pass  # another device or a file system without hard links: copy
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(source, name)
        os.replace(name, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def scope_hash(scope: str) -> str:
    return hashlib.sha256(scope.encode()).hexdigest()[:12]


def entry_digest(body: Mapping[str, Any]) -> str:
    """sha256 over the entry's fields (all but the digest), in a canonical JSON form."""
    fields = {k: v for k, v in body.items() if k != "digest"}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class DamagedEntry(ValueError):
    """An entry that must not be replayed (garbled, edited, or pointing at a wrong image)."""


class OutdatedEntry(DamagedEntry):
    """An entry in another version's format: a quiet miss (the next answer overwrites it)."""


class ResponseCache:
    def __init__(self, settings: CacheSettings, now: Callable[[], float] = time.time) -> None:
        assert settings.dir is not None
        self.settings = settings
        self.root = settings.dir
        self.now = now  # wall-clock seconds: entries are dated with it (their age survives restarts)
        self._warned: set[Path] = set()

    def name(self, key: str, scope: str) -> str:
        """The file name stem of a request's entry (and claim) under this scope."""
        return f"{key}-{scope_hash(scope)}"

    def _entry_path(self, key: str, scope: str) -> Path:
        return self.root / "requests" / key[:2] / f"{self.name(key, scope)}.json"

    # ---- reading -------------------------------------------------------------------------
    def lookup(self, key: str, scope: str) -> CachedAnswer | None:
        """The verified answer to this request, or None (absent, expired, damaged: a miss)."""
        if not self.settings.reads:
            return None
        path = self._entry_path(key, scope)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once(path, f"cannot be read ({exc})")
            return None
        try:
            answer = self._verify(raw, key, scope)
        except OutdatedEntry as exc:
            log.debug("cache entry %s %s: a miss", path, exc)
            return None
        except DamagedEntry as exc:
            self._warn_once(path, str(exc))
            self._drop(path)
            return None
        max_age = self.settings.max_age_s
        if max_age is not None and answer.age_s > max_age:
            log.debug("cache entry %s is %.0fs old (cache.max_age=%gs): a miss", path, answer.age_s, max_age)
            return None
        return answer

    def replay(self, key: str, scope: str, run_dir: Path) -> CachedAnswer | None:
        """lookup(), with the answer's images linked into run_dir (already verified)."""
        answer = self.lookup(key, scope)
        if answer is None:
            return None
        for response in answer.responses:
            image = response.get("image_path")
            if image:
                link_into(self.root / image, run_dir / image)
        return answer

    def _verify(self, raw: bytes, key: str, scope: str) -> CachedAnswer:
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise DamagedEntry(f"is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise DamagedEntry("is not a JSON object")
        if body.get("version") != ENTRY_VERSION:
            raise OutdatedEntry(f"is in format {body.get('version')!r}, not {ENTRY_VERSION}")
        if body.get("digest") != entry_digest(body):
            raise DamagedEntry("does not match its integrity digest (edited or damaged)")
        if body.get("request_key") != key or body.get("scope") != scope:
            raise DamagedEntry("is filed under another request or scope")
        stored_at = body.get("stored_at")
        responses = body.get("responses")
        if not isinstance(stored_at, int | float) or not math.isfinite(stored_at):
            raise DamagedEntry("has no valid stored_at")
        if not isinstance(responses, list) or not responses:
            raise DamagedEntry("holds no responses")
        statuses = {r.get("status") if isinstance(r, dict) else None for r in responses}
        if len(statuses) != 1 or not statuses <= CACHEABLE_STATUSES:
            raise DamagedEntry(f"holds statuses {sorted(map(str, statuses))}, not one final outcome")
        for response in responses:
            self._verify_response(response)
        return CachedAnswer(
            responses=[dict(r) for r in responses],
            age_s=max(0.0, self.now() - float(stored_at)),  # another machine's clock may run ahead
            origin_run=str(body.get("origin_run") or ""),
            scope=scope,
        )

    def _verify_response(self, response: dict[str, Any]) -> None:
        foreign = set(response) - set(RESPONSE_FIELDS)
        if foreign:
            raise DamagedEntry(f"holds fields that are not response fields: {sorted(foreign)}")
        for name, value in response.items():
            if value is None:
                continue
            if name in NUMBER_FIELDS:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
            elif name in _INT_FIELDS:
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            elif name == "emulated":
                ok = isinstance(value, bool)
            else:
                ok = isinstance(value, str)
            if not ok:
                raise DamagedEntry(f"has a {name} of the wrong type: {value!r}")
        try:
            dt.datetime.fromisoformat(str(response.get("started_at")))
        except ValueError:
            raise DamagedEntry(f"has an invalid started_at: {response.get('started_at')!r}") from None
        cost = response.get("cost_usd")
        if cost is not None and not (math.isnan(cost) or (math.isfinite(cost) and cost >= 0)):
            raise DamagedEntry(f"has an impossible cost_usd: {cost!r}")
        if response.get("cost_source") not in _COST_SOURCES:
            raise DamagedEntry(f"has an unknown cost_source: {response.get('cost_source')!r}")
        if response["status"] != "ok":
            if response.get("image_path") is not None:
                raise DamagedEntry("has an image on a refusal")
            return
        self._verify_image(response)

    def _verify_image(self, response: dict[str, Any]) -> None:
        sha, path = response.get("image_sha256"), response.get("image_path")
        ext = str(path).rsplit(".", 1)[-1] if isinstance(path, str) else ""
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha) or not _EXTENSION.fullmatch(ext):
            raise DamagedEntry(f"has an invalid image reference: {path!r}")
        # The only path an image may have: its content address (image_relative_path), inside the cache.
        if path != f"images/{sha[:2]}/{sha}.{ext}":
            raise DamagedEntry(f"points outside the cache's images: {path!r}")
        file = self.root / path
        try:
            inside = file.resolve(strict=True).is_relative_to(self.root.resolve())
            data = file.read_bytes() if inside else b""
        except OSError as exc:
            raise DamagedEntry(f"lost its image {path} ({exc.strerror or exc})") from None
        if not inside:
            raise DamagedEntry(f"links its image {path} outside the cache")
        if hashlib.sha256(data).hexdigest() != sha:
            # The image itself is damaged: drop it too, so the next live answer stores a good one.
            self._drop(file)
            raise DamagedEntry(f"has an image whose bytes no longer match its sha256 ({path})")

    def _warn_once(self, path: Path, why: str) -> None:
        if path not in self._warned:
            self._warned.add(path)
            log.warning("cache entry %s %s: a miss, the request is sent", path, why)

    def _drop(self, path: Path) -> None:
        if self.settings.writes:
            with contextlib.suppress(OSError):
                path.unlink()

    # ---- writing -------------------------------------------------------------------------
    def remember(self, rows: Sequence[Mapping[str, Any]], scope: str, run_dir: Path) -> None:
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
                    link_into(run_dir / image, self.root / image)
            path = self._entry_path(key, scope)
            path.parent.mkdir(parents=True, exist_ok=True)
            responses = [{name: row.get(name) for name in RESPONSE_FIELDS} for row in rows]
            body: dict[str, Any] = {
                "version": ENTRY_VERSION,
                "request_key": key,
                "scope": scope,
                "stored_at": self.now(),
                "origin_run": str(rows[0].get("run_id") or run_dir.name),
                "responses": responses,
            }
            # The digest is taken over the fields as they will read back (datetimes as text).
            body = json.loads(json.dumps(body, default=_json_default, allow_nan=True))
            body["digest"] = entry_digest(body)
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, prefix=f".{key}.", suffix=".tmp", delete=False, encoding="utf-8"
            ) as fh:
                json.dump(body, fh, ensure_ascii=False, allow_nan=True)
                tmp = Path(fh.name)
            os.replace(tmp, path)
        except OSError as exc:
            # The run's own results are safe in its folder; only future reuse is lost.
            log.warning("cannot write the response cache at %s: %s", self.root, exc)


def format_age(seconds: float) -> str:
    """A replay's age for people: '3.2 days', '5.0 hours', '12 minutes', '40 seconds'."""
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 60:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds:.0f} seconds"

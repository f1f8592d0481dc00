"""Turn the composed Hydra config (a plain dict) into typed, validated settings.

Everything a user can get wrong is checked here, before any request: each
problem is one ConfigError naming the key, the value and the fix.
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.cache import CacheSettings, parse_cache
from bench.errors import ConfigError
from bench.prices import PriceTable
from bench.providers.base import DEFAULT_MAX_DOWNLOAD_BYTES, DEFAULT_MAX_RESPONSE_BYTES, ProviderSettings
from bench.providers.transport import TRANSPORTS, default_transport

log = logging.getLogger("bench")
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")
_RATIO_RE = re.compile(r"^(\d+):(\d+)$")
PROGRESS_MODES = ("auto", "bar", "log", "off")


@dataclass(frozen=True)
class Target:
    """A provider + model (+ fixed parameters). `id` is what records and reports show."""

    id: str
    provider: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)
    # This target's own sweep values ({steps: [1, 2, 4]}), replacing the sweep's for it alone.
    sweep: Mapping[str, Any] = field(default_factory=dict)

    def axes(self, shared: SweepAxes) -> SweepAxes:
        return replace(shared, **self.sweep) if self.sweep else shared


@dataclass(frozen=True)
class Size:
    width: int | None = None
    height: int | None = None
    aspect_ratio: str | None = None

    @property
    def label(self) -> str | None:
        return f"{self.width}x{self.height}" if self.width is not None else self.aspect_ratio


@dataclass(frozen=True)
class SweepAxes:
    steps: tuple[int | None, ...] = (None,)
    guidance: tuple[float | None, ...] = (None,)
    seeds: tuple[int | None, ...] = (0,)
    sizes: tuple[Size | None, ...] = (None,)
    repeats: int = 1
    negative_prompt: str | None = None
    num_images: int = 1


@dataclass(frozen=True)
class RunnerSettings:
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_in_flight: int = 4096
    progress: str = "auto"
    # `bench run` exits 1 when more than this share of the run's requests ended in error.
    max_error_rate: float = 0.5
    # Jobs of this multirun running at the same time (set by `bench run -m` from the launcher):
    # hosted providers' concurrency and requests_per_minute are divided among them.
    parallel_jobs: int = 1
    http_transport: str = "aiohttp"  # under the providers' httpx client: aiohttp | httpx
    # Send again, on resume, requests the provider billed but whose image could not be had
    # (`bench run --retry-billed`): each is bought again, within max_cost_usd.
    retry_billed: bool = False


@dataclass(frozen=True)
class ProviderConfig:
    adapter: str
    settings: ProviderSettings


@dataclass(frozen=True)
class BenchConfig:
    targets: tuple[Target, ...]
    sweep: SweepAxes
    prompts: Mapping[str, Any]
    providers: Mapping[str, ProviderConfig]
    prices: PriceTable
    runner: RunnerSettings
    max_cost_usd: float | None
    results_dir: Path
    metrics: Mapping[str, Any]
    report: Mapping[str, Any]
    http_debug: bool = False  # bench.http_debug: the HTTP libraries' DEBUG lines (auth redacted)
    cache: CacheSettings = field(default_factory=lambda: CacheSettings(mode="off"))
    # Targets whose provider publishes its price in a unit bench cannot count ("compute seconds")
    # and that no price entry covers: target id -> that unit (set by `bench run`'s prepare).
    unpriced_units: Mapping[str, str] = field(default_factory=dict)


def parse_target(entry: Any, index: int) -> Target:
    where = f"targets[{index}]"
    if isinstance(entry, str):
        provider, sep, model = entry.partition(":")
        if not sep or not provider or not model:
            raise ConfigError(where, entry, "write a target as provider:model, e.g. local:shapes-fast")
        return Target(id=entry, provider=provider, model=model)
    if isinstance(entry, Mapping):
        base = entry.get("target")
        if not isinstance(base, str):
            raise ConfigError(f"{where}.target", base, "give the target as provider:model")
        target = parse_target(base, index)
        params = entry.get("params") or {}
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where}.params", params, "give fixed parameters as a mapping name: value")
        unknown = sorted(set(entry) - {"target", "params", "name", "sweep"})
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}",
                entry[unknown[0]],
                "a target mapping takes target, params, name, sweep",
            )
        name = entry.get("name")
        if name is None and params:
            name = base + "[" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + "]"
        return Target(
            id=str(name or base),
            provider=target.provider,
            model=target.model,
            params=dict(params),
            sweep=parse_target_sweep(entry.get("sweep"), f"{where}.sweep"),
        )
    raise ConfigError(
        where, entry, "a target is a string provider:model or a mapping with `target` and `params`"
    )


def parse_size(value: Any, where: str) -> Size | None:
    if value is None:
        return None
    text = str(value).strip()
    if m := _SIZE_RE.match(text):
        w, h = int(m.group(1)), int(m.group(2))
        if w < 16 or h < 16:
            raise ConfigError(where, value, "sizes are at least 16x16 pixels")
        return Size(width=w, height=h)
    if m := _RATIO_RE.match(text):
        if int(m.group(1)) == 0 or int(m.group(2)) == 0:
            raise ConfigError(where, value, "an aspect ratio has two positive numbers, e.g. 16:9")
        return Size(aspect_ratio=text)
    raise ConfigError(where, value, 'write a size as "WIDTHxHEIGHT" (e.g. "1024x1024") or a ratio ("16:9")')


def _as_list(value: Any, key: str) -> list[Any]:
    if value is None:
        return [None]
    if isinstance(value, list | tuple):
        if not value:
            raise ConfigError(key, value, "give at least one value (use [null] for the model's default)")
        return list(value)
    return [value]


def _ints(values: list[Any], key: str, minimum: int) -> tuple[int | None, ...]:
    out: list[int | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, bool) or not isinstance(v, int | float) or float(v) != int(v) or v < minimum:
            raise ConfigError(key, v, f"use whole numbers >= {minimum} (or null for the model's default)")
        else:
            out.append(int(v))
    return tuple(dict.fromkeys(out))  # de-duplicate, keep order


def _floats(values: list[Any], key: str) -> tuple[float | None, ...]:
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise ConfigError(key, v, "use non-negative numbers (or null for the model's default)")
        else:
            out.append(float(v))
    return tuple(dict.fromkeys(out))


def parse_sweep(cfg: Mapping[str, Any]) -> SweepAxes:
    repeats = cfg.get("repeats", 1)
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise ConfigError("sweep.repeats", repeats, "use a whole number >= 1")
    num_images = cfg.get("num_images", 1)
    if not isinstance(num_images, int) or isinstance(num_images, bool) or num_images < 1:
        raise ConfigError("sweep.num_images", num_images, "use a whole number >= 1")
    negative = cfg.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise ConfigError("sweep.negative_prompt", negative, "use a string or null")
    sizes = tuple(
        dict.fromkeys(parse_size(v, "sweep.sizes") for v in _as_list(cfg.get("sizes"), "sweep.sizes"))
    )
    return SweepAxes(
        steps=_ints(_as_list(cfg.get("steps"), "sweep.steps"), "sweep.steps", 1),
        guidance=_floats(_as_list(cfg.get("guidance"), "sweep.guidance"), "sweep.guidance"),
        seeds=_ints(_as_list(cfg.get("seeds"), "sweep.seeds"), "sweep.seeds", 0),
        sizes=sizes,
        repeats=repeats,
        negative_prompt=negative,
        num_images=num_images,
    )


TARGET_SWEEP_KEYS = ("steps", "guidance", "seeds", "sizes", "negative_prompt")


def parse_target_sweep(raw: Any, where: str) -> dict[str, Any]:
    """A target's own grid: the same keys and checks as `sweep`, for the axes it names."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(where, raw, "give the target's own sweep as a mapping, e.g. {steps: [1, 2, 4]}")
    unknown = sorted(set(raw) - set(TARGET_SWEEP_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}.{unknown[0]}", raw[unknown[0]], f"a target's sweep takes {', '.join(TARGET_SWEEP_KEYS)}"
        )
    try:
        parsed = parse_sweep(raw)
    except ConfigError as exc:
        raise ConfigError(exc.key.replace("sweep.", f"{where}.", 1), exc.value, exc.fix) from None
    return {key: getattr(parsed, key) for key in raw}


def _positive_number(value: Any, key: str, *, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not value > 0
        or not math.isfinite(value)
    ):
        raise ConfigError(key, value, "use a positive number" + (" or null" if allow_none else ""))
    return float(value)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEY_PREFIXES = ("sk-", "sk_", "r8_", "fal_", "hf_", "gsk_")  # lower case, as keys are: FAL_KEY is a name


def looks_like_a_key(value: str) -> bool:
    """Not an environment variable's name, or a name shaped like a secret (key prefix, long mixed-case)."""
    if not _ENV_NAME.fullmatch(value):
        return True
    if value.startswith(_KEY_PREFIXES):
        return True
    has_lower = any(c.islower() for c in value)
    has_digit = any(c.isdigit() for c in value)
    return len(value) >= 16 and has_lower and has_digit


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(key, value, "use a whole number of bytes >= 1, e.g. 52428800 (50 MiB)")
    return value


def parse_providers(cfg: Mapping[str, Any]) -> dict[str, ProviderConfig]:
    out: dict[str, ProviderConfig] = {}
    for name, block in cfg.items():
        key = f"providers.{name}"
        if not isinstance(block, Mapping):
            raise ConfigError(key, block, "each provider is a mapping with at least `adapter`")
        adapter = block.get("adapter")
        if not isinstance(adapter, str):
            raise ConfigError(f"{key}.adapter", adapter, "name the protocol adapter, e.g. openai_compat")
        concurrency = block.get("concurrency", 4)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ConfigError(f"{key}.concurrency", concurrency, "use a whole number >= 1")
        rpm = _positive_number(
            block.get("requests_per_minute"), f"{key}.requests_per_minute", allow_none=True
        )
        timeout = _positive_number(block.get("timeout_s", 120.0), f"{key}.timeout_s")
        poll = _positive_number(block.get("poll_interval_s", 1.0), f"{key}.poll_interval_s")
        base_url = block.get("base_url")
        if base_url is not None and not str(base_url).startswith(("http://", "https://")):
            raise ConfigError(f"{key}.base_url", base_url, "use an http:// or https:// URL")
        api_key_env = block.get("api_key_env")
        if api_key_env is not None and looks_like_a_key(str(api_key_env)):
            # Never echo it: it may be the key itself, pasted where its variable's name belongs.
            raise ConfigError(
                f"{key}.api_key_env",
                "<not shown>",
                "api_key_env must name an environment variable (e.g. FAL_KEY), not hold the key itself",
            )
        allow_private = block.get("allow_private_urls", False)
        if not isinstance(allow_private, bool):
            raise ConfigError(f"{key}.allow_private_urls", allow_private, "use true or false")
        options = block.get("options") or {}
        settings = ProviderSettings(
            name=str(name),
            base_url=str(base_url).rstrip("/") if base_url else None,
            api_key_env=str(api_key_env) if api_key_env else None,
            concurrency=concurrency,
            requests_per_minute=rpm,
            timeout_s=timeout or 120.0,
            poll_interval_s=poll or 1.0,
            max_download_bytes=_positive_int(
                block.get("max_download_bytes", DEFAULT_MAX_DOWNLOAD_BYTES), f"{key}.max_download_bytes"
            ),
            max_response_bytes=_positive_int(
                block.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES), f"{key}.max_response_bytes"
            ),
            allow_private_urls=allow_private,
            options=dict(options),
        )
        out[str(name)] = ProviderConfig(adapter=adapter, settings=settings)
    return out


def share_limits(settings: ProviderSettings, parallel_jobs: int, *, shared_account: bool) -> ProviderSettings:
    """This job's share of a provider's limits when `parallel_jobs` jobs of a sweep use it at once.

    Hosted APIs limit the account, which every job shares: each job gets concurrency / n
    (at least 1) and requests_per_minute / n. An in-process generator's limit is the device
    its job runs on, so it is not divided.
    """
    if parallel_jobs <= 1 or not shared_account:
        return settings
    concurrency = max(settings.concurrency // parallel_jobs, 1)
    if concurrency * parallel_jobs > settings.concurrency:
        log.warning(
            "providers.%s.concurrency=%d is less than the %d jobs running at once: each job keeps 1 "
            "request in flight, %d in all",
            settings.name,
            settings.concurrency,
            parallel_jobs,
            parallel_jobs,
        )
    rpm = settings.requests_per_minute
    return replace(
        settings,
        concurrency=concurrency,
        requests_per_minute=rpm / parallel_jobs if rpm is not None else None,
    )


def parse_runner(cfg: Mapping[str, Any]) -> RunnerSettings:
    attempts = cfg.get("max_attempts", 4)
    if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
        raise ConfigError("runner.max_attempts", attempts, "use a whole number >= 1 (1 = no retries)")
    in_flight = cfg.get("max_in_flight", 4096)
    if not isinstance(in_flight, int) or isinstance(in_flight, bool) or in_flight < 1:
        raise ConfigError("runner.max_in_flight", in_flight, "use a whole number >= 1")
    progress = cfg.get("progress", "auto")
    if progress not in PROGRESS_MODES:
        raise ConfigError("runner.progress", progress, f"use one of {', '.join(PROGRESS_MODES)}")
    base = cfg.get("backoff_base_s", 1.0)
    if isinstance(base, bool) or not isinstance(base, int | float) or base < 0:
        raise ConfigError("runner.backoff_base_s", base, "use a number of seconds >= 0")
    max_error_rate = cfg.get("max_error_rate", 0.5)
    if (
        isinstance(max_error_rate, bool)
        or not isinstance(max_error_rate, int | float)
        or not 0 <= max_error_rate <= 1
    ):
        raise ConfigError(
            "runner.max_error_rate", max_error_rate, "use a share between 0 and 1 (e.g. 0.5; 1 = never fail)"
        )
    parallel = cfg.get("parallel_jobs", 1)
    if not isinstance(parallel, int) or isinstance(parallel, bool) or parallel < 1:
        raise ConfigError("runner.parallel_jobs", parallel, "use a whole number >= 1 (jobs running at once)")
    transport = cfg.get("http_transport") or default_transport()
    if transport not in TRANSPORTS:
        raise ConfigError("runner.http_transport", transport, f"use one of {', '.join(TRANSPORTS)}")
    retry_billed = cfg.get("retry_billed", False)
    if not isinstance(retry_billed, bool):
        raise ConfigError(
            "runner.retry_billed", retry_billed, "use true or false (or `bench run --retry-billed`)"
        )
    return RunnerSettings(
        retry_billed=retry_billed,
        http_transport=str(transport),
        max_attempts=attempts,
        backoff_base_s=float(base),
        backoff_max_s=_positive_number(cfg.get("backoff_max_s", 60.0), "runner.backoff_max_s") or 60.0,
        max_in_flight=in_flight,
        progress=str(progress),
        max_error_rate=float(max_error_rate),
        parallel_jobs=parallel,
    )


def check_writable(results_dir: Path) -> None:
    """Fail early, with the fix, rather than after money was spent on images we cannot save."""
    probe_dir = results_dir
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise ConfigError(
            "results_dir", str(results_dir), f"{probe_dir} is a file, not a folder; choose another path"
        )
    try:
        with tempfile.NamedTemporaryFile(dir=probe_dir, prefix=".t2i-bench-write-test-"):
            pass
    except OSError as exc:
        raise ConfigError(
            "results_dir", str(results_dir), f"cannot write there ({exc.strerror}); choose a writable folder"
        ) from None


def parse_config(cfg: Mapping[str, Any]) -> BenchConfig:
    targets_raw = cfg.get("targets")
    if not isinstance(targets_raw, list) or not targets_raw:
        raise ConfigError(
            "targets", targets_raw, "list at least one target, e.g. targets=[local:shapes-fast]"
        )
    targets = tuple(parse_target(t, i) for i, t in enumerate(targets_raw))
    ids = [t.id for t in targets]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError("targets", dup, "a target appears twice; give each a distinct `name`")
    providers = parse_providers(cfg.get("providers") or {})
    for i, t in enumerate(targets):
        if t.provider not in providers:
            known = ", ".join(sorted(providers))
            raise ConfigError(f"targets[{i}]", t.id, f"unknown provider {t.provider!r}; configured: {known}")
    max_cost = cfg.get("max_cost_usd")
    if max_cost is not None:
        max_cost = _positive_number(max_cost, "max_cost_usd", allow_none=True)
    prices_cfg = cfg.get("prices") or {}
    results_dir = Path(str(cfg.get("results_dir", "results"))).expanduser()
    return BenchConfig(
        targets=targets,
        sweep=parse_sweep(cfg.get("sweep") or {}),
        prompts=dict(cfg.get("prompts") or {}),
        providers=providers,
        prices=PriceTable.from_prices_config(prices_cfg),
        runner=parse_runner(cfg.get("runner") or {}),
        max_cost_usd=max_cost,
        results_dir=results_dir,
        metrics=dict(cfg.get("metrics") or {}),
        report=dict(cfg.get("report") or {}),
        http_debug=parse_http_debug(cfg.get("bench") or {}),
        cache=parse_cache(cfg.get("cache"), results_dir),
    )


def parse_http_debug(block: Any) -> bool:
    """`bench.http_debug`: the HTTP libraries' DEBUG lines, for `bench run` and catalog fetches alike."""
    value = block.get("http_debug", False) if isinstance(block, Mapping) else block
    if not isinstance(value, bool):
        raise ConfigError("bench.http_debug", value, "use true or false")
    return value

"""The `metrics.judge` config block: which chat model judges, where it is served, limits and prices."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bench.errors import ConfigError

MODES = ("adherence", "rubric")
# In a judge fingerprint id, after the target: the answers came from `bench emulate chat`
# (the built-in chat emulator, a pixel-measuring stand-in for a VLM), not from a model.
EMULATED_MARK = "emulated"
EMULATED_LABEL = "emulated judge"


def endpoint_id(base_url: str | None) -> str:
    """scheme://host[:port]/path of the judge's base URL: what the cache key and fingerprint carry.

    Credentials in the URL and its query string are left out (they may hold a key); the port
    stays in, because two servers on one host are two judges.
    """
    from urllib.parse import urlsplit

    parts = urlsplit((base_url or "").strip())
    host = (parts.hostname or "").lower()
    if parts.port is not None:
        host += f":{parts.port}"
    return f"{parts.scheme.lower()}://{host}{parts.path.rstrip('/')}"


def is_emulated(fingerprint: str | None) -> bool:
    """True when a judge fingerprint id says its answers came from the built-in chat emulator."""
    return (
        bool(fingerprint)
        and f":{EMULATED_MARK}:" in str(fingerprint)
        and str(fingerprint).startswith("judge:")
    )


@dataclass(frozen=True)
class JudgePrice:
    """USD per million tokens, from the provider's price page (data in configs/metrics/default.yaml)."""

    input_usd_per_million: float
    output_usd_per_million: float
    effective_date: str = ""
    source_url: str = ""
    note: str = ""

    def cost_usd(self, prompt_tokens: Any, completion_tokens: Any) -> float:
        if not isinstance(prompt_tokens, int | float) or not isinstance(completion_tokens, int | float):
            return math.nan
        return (
            self.input_usd_per_million * float(prompt_tokens)
            + self.output_usd_per_million * float(completion_tokens)
        ) / 1e6


@dataclass(frozen=True)
class JudgeConfig:
    enabled: bool = False
    target: str | None = None  # provider:model, e.g. openai:gpt-4.1-mini
    modes: tuple[str, ...] = MODES
    base_url: str | None = None  # null: providers.<provider>.base_url
    # What the cache key and the fingerprint call the endpoint (null: its base URL). The in-process
    # emulator (base_url: emulator) serves on a new port each time: it is named, not addressed.
    endpoint_name: str | None = None
    api_key_env: str | None = None  # null: providers.<provider>.api_key_env; "" for keyless local servers
    concurrency: int = 4
    requests_per_minute: float | None = None
    timeout_s: float = 60.0
    max_attempts: int = 4
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_cost_usd: float | None = None  # this pass's cap; the run folder's max_cost_usd holds as well
    max_questions: int = 8
    image_detail: str = "low"  # OpenAI's image detail: low (85 tokens) | high | auto
    max_image_side: int = 512  # images are sent as PNG data URIs no larger than this
    temperature: float = 0.0
    prices: Mapping[str, JudgePrice] = field(default_factory=dict)  # target -> price

    @property
    def provider(self) -> str:
        return (self.target or "").split(":", 1)[0]

    @property
    def model(self) -> str:
        return (self.target or "").split(":", 1)[1] if ":" in (self.target or "") else ""

    @property
    def price(self) -> JudgePrice | None:
        return self.prices.get(self.target or "")

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None

    @property
    def endpoint(self) -> str:
        return self.endpoint_name or endpoint_id(self.base_url)

    def chat_url(self) -> str:
        base = (self.base_url or "").rstrip("/")
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def _plain(value: Any) -> Any:
    if type(value).__module__.startswith("omegaconf"):
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value, resolve=True)
    return value


def _provider_setting(providers: Mapping[str, Any] | None, name: str, key: str) -> Any:
    """providers.<name>.<key>, from raw config dicts or parsed ProviderConfig objects."""
    entry = (providers or {}).get(name)
    if entry is None:
        return None
    settings = getattr(entry, "settings", None)
    if settings is not None:
        return getattr(settings, key, None)
    return entry.get(key) if isinstance(entry, Mapping) else None


def parse_judge_config(raw: Any, providers: Mapping[str, Any] | None = None) -> JudgeConfig:
    """Parse and check `metrics.judge`; endpoint and key variable default to the provider's block."""
    raw = dict(_plain(raw) or {})
    allowed = {f.name for f in fields(JudgeConfig)}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(
            f"metrics.judge.{unknown[0]}", raw[unknown[0]], f"unknown key; known: {sorted(allowed)}"
        )
    prices: dict[str, JudgePrice] = {}
    for target, entry in dict(raw.pop("prices", None) or {}).items():
        try:
            prices[str(target)] = JudgePrice(**dict(entry))
        except TypeError as exc:
            raise ConfigError(
                f"metrics.judge.prices.{target}",
                entry,
                f"use input_usd_per_million, output_usd_per_million, effective_date, source_url ({exc})",
            ) from None
    modes = raw.pop("modes", MODES)
    if isinstance(modes, str):
        modes = [modes]
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ConfigError("metrics.judge.modes", modes, f"use a list of {list(MODES)}")
    cfg = JudgeConfig(**raw, modes=tuple(modes), prices=prices)
    if not cfg.enabled:
        return cfg
    if not cfg.target or ":" not in cfg.target:
        raise ConfigError("metrics.judge.target", cfg.target, "use provider:model, e.g. openai:gpt-4.1-mini")
    base_url = cfg.base_url or _provider_setting(providers, cfg.provider, "base_url")
    if not base_url:
        raise ConfigError(
            "metrics.judge.base_url",
            cfg.base_url,
            f"set the chat endpoint (no providers.{cfg.provider}.base_url to use)",
        )
    key_env = (
        cfg.api_key_env
        if cfg.api_key_env is not None
        else _provider_setting(providers, cfg.provider, "api_key_env")
    )
    cfg = JudgeConfig(
        **{
            **{f.name: getattr(cfg, f.name) for f in fields(cfg)},
            "base_url": str(base_url),
            "api_key_env": key_env or "",
        }
    )
    if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        raise ConfigError(
            "metrics.judge.api_key_env",
            cfg.api_key_env,
            f"the environment variable is not set: export {cfg.api_key_env}=...",
        )
    for key in ("concurrency", "max_attempts", "max_questions", "max_image_side"):
        if int(getattr(cfg, key)) < 1:
            raise ConfigError(f"metrics.judge.{key}", getattr(cfg, key), "must be >= 1")
    if cfg.image_detail not in ("low", "high", "auto"):
        raise ConfigError("metrics.judge.image_detail", cfg.image_detail, "use low, high or auto")
    if cfg.max_cost_usd is not None and cfg.max_cost_usd < 0:
        raise ConfigError("metrics.judge.max_cost_usd", cfg.max_cost_usd, "use a non-negative number or null")
    return cfg

"""The provider interface: a normalized request in; a result or a typed error out.

Adapters know nothing of sweeps, runners or metrics. The runner owns one
instance per provider, which owns one shared httpx.AsyncClient, so connection
pooling works across thousands of requests in flight.
"""

from __future__ import annotations

import abc
import base64
import binascii
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from bench.catalog.mapping import MappedRequest, map_request
from bench.catalog.spec import ModelSpec
from bench.errors import (
    AuthError,
    ConfigError,
    InvalidRequestError,
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    ServerError,
)
from bench.providers.transport import default_transport, make_client
from bench.request import ImageRequest

NAN = math.nan
DEFAULT_MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024
# Four 1536x1024 PNGs as base64 fit with room to spare; a 300 MB "answer" does not.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class ProviderSettings:
    """Per-provider settings from the `providers.<name>` config block."""

    name: str
    base_url: str | None = None
    api_key_env: str | None = None  # the *name* of the environment variable; the key never enters config
    concurrency: int = 4
    requests_per_minute: float | None = None
    timeout_s: float = 120.0
    poll_interval_s: float = 1.0
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # JSON answers; read streamed, refused past it
    # Image URLs on loopback/private/link-local addresses are refused unless base_url is itself
    # such an address (an emulator, a proxy) or this is set.
    allow_private_urls: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # adapter-specific knobs (profile, ...)
    http_transport: str = field(default_factory=default_transport)  # runner.http_transport


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime: str | None = None
    source_url: str | None = None  # where it came from (may expire: the bytes are what is stored)


@dataclass(frozen=True)
class Timings:
    """Seconds. NaN where the API does not tell. End-to-end latency is measured by the runner."""

    queue_s: float = NAN
    inference_s: float = NAN
    download_s: float = NAN


@dataclass(frozen=True)
class ComputeInfo:
    """What ran a self-hosted generation (the diffusers provider); hosted APIs leave it None."""

    device: str  # e.g. "NVIDIA H100 80GB HBM3" or "cpu (x86_64)"
    peak_gpu_memory_mb: float = NAN  # NaN off CUDA
    warmup_s: float = NAN  # the excluded warm-up call of this pipeline instance; NaN if none ran
    versions: Mapping[str, str] = field(default_factory=dict)  # library -> version
    batch_size: int = 1  # requests that shared the device call


@dataclass(frozen=True)
class GenerationResult:
    images: tuple[GeneratedImage, ...]
    timings: Timings = Timings()
    cost_usd: float = NAN  # provider-reported cost of the whole request; NaN if not reported
    usage: Mapping[str, Any] = field(default_factory=dict)  # token counts etc., for price tables
    revised_prompt: str | None = None
    seed_used: int | None = None
    http_status: int | None = None
    provider_request_id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)  # the provider's answer, minus image payloads
    compute: ComputeInfo | None = None


def read_api_key(settings: ProviderSettings) -> str | None:
    """The key from the environment, without the whitespace a paste or a file adds around it."""
    env = settings.api_key_env
    raw = os.environ.get(env) if env else None
    return raw.strip() if raw is not None else None


def key_problem(settings: ProviderSettings) -> str | None:
    """Why the key cannot go into a request (a control character inside it), never showing it."""
    key = read_api_key(settings)
    if key and _CONTROL_CHARS.search(key):
        # A header value with a line break is refused by the HTTP library, whose error
        # (and debug log) would then show the key; say so without showing it.
        return (
            f"the key in {settings.api_key_env} contains a control character (a pasted line break "
            "or tab?); export it again without one"
        )
    return None


def key_forms(settings: ProviderSettings) -> list[str]:
    """Every form of the key that could appear in a message: as set, stripped, and URL-encoded
    (AKI.IO's discovery sends it as `?key=`, and URLs appear in logs and errors)."""
    env = settings.api_key_env
    raw = os.environ.get(env) if env else None
    if not raw:
        return []
    stripped = raw.strip()
    forms = (raw, stripped, quote(stripped, safe=""), quote_plus(stripped), quote(stripped))
    return [k for k in dict.fromkeys(forms) if k]


class Provider(abc.ABC):
    """Base class for adapters. Subclasses implement `models()` and `generate()`."""

    name: str = ""
    needs_api_key: bool = True
    # True for hosted APIs: concurrency and requests_per_minute limit an account that parallel
    # jobs of a sweep share (bench.config.share_limits divides them). In-process generators
    # are limited by their own device instead.
    account_limits: bool = True
    # Which catalog (shipped snapshot and discovery protocol) this adapter's models come from;
    # None: the adapter knows its models itself (local) and has nothing to fetch.
    catalog_name: str | None = None

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    # ---- catalog -------------------------------------------------------------------
    @abc.abstractmethod
    def models(self) -> Sequence[ModelSpec]:
        """Every model this provider knows, with its parameter schema."""

    def model_spec(self, model: str) -> ModelSpec:
        for spec in self.models():
            if spec.model == model:
                return spec
        known = ", ".join(s.model for s in self.models())
        raise ConfigError("targets", f"{self.name}:{model}", f"unknown model; {self.name} has: {known}")

    def map_request(self, spec: ModelSpec, request: ImageRequest) -> MappedRequest:
        return map_request(spec, request)

    # ---- credentials and client ----------------------------------------------------
    def api_key(self) -> str | None:
        """The key from the environment, without the whitespace a paste or a file adds around it."""
        return read_api_key(self.settings)

    def check_ready(self) -> None:
        """Raise ConfigError if this provider cannot be used (called before any request)."""
        if not self.needs_api_key:
            return
        env = self.settings.api_key_env
        if not env:
            raise ConfigError(
                f"providers.{self.name}.api_key_env", env, "name the environment variable that holds the key"
            )
        key = self.api_key()
        if not key:
            raise ConfigError(
                f"providers.{self.name}.api_key_env",
                env,
                f"environment variable {env} is not set; export {env}=<your key> (or use `bench emulate`)",
            )
        problem = key_problem(self.settings)
        if problem:
            raise ConfigError(f"providers.{self.name}.api_key_env", env, problem)

    def secrets(self) -> list[str]:
        """Every form of the key that could appear in a message (bench.providers.base.key_forms)."""
        return key_forms(self.settings)

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_client(
                self.settings.http_transport, self.settings.concurrency, self.settings.timeout_s
            )
        return self._client

    def prepare_transport(self) -> None:  # noqa: B027 (an optional hook: only HTTP adapters have one)
        """Called before the run, outside the event loop: HTTP adapters build their client here."""

    async def warm_up(self) -> None:  # noqa: B027 (an optional hook: most providers need nothing)
        """Called once before a run's first request, inside the event loop."""

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---- generation ----------------------------------------------------------------
    @abc.abstractmethod
    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        """Run one request. Raise a ProviderError subclass on failure; never return partial junk."""

    def cache_scope(self, spec: ModelSpec) -> str | None:
        """Whose answers a response-cache entry holds (bench.cache): answers are replayed only within
        the scope that gave them. A hosted API's is its endpoint, so an emulator's or a proxy's
        answers never stand in for another's. None: this model's answers cannot be cached now."""
        return f"{self.settings.name}@{self.settings.base_url or 'in-process'}"

    def estimate_cost_usd(self, spec: ModelSpec, request: ImageRequest) -> float | None:
        """A cost a request is expected to have before it is sent, if the adapter knows one."""
        return None


def decode_data_uri(uri: str) -> GeneratedImage:
    header, sep, body = uri.partition(",")
    if not sep or ";base64" not in header.lower():
        raise MalformedResponseError(f"not a base64 data URI: {uri[:48]!r}")
    return GeneratedImage(decode_base64(body), mime=header[5:].split(";")[0] or None)


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponseError(f"image is not valid base64: {exc}") from exc


def error_from_status(status: int, message: str, retry_after_s: float | None = None) -> ProviderError:
    """The typed error for an HTTP status, for adapters whose API has no finer error codes."""
    if status in (401, 403):
        return AuthError(message, http_status=status)
    if status == 429:
        return RateLimitedError(message, http_status=status, retry_after_s=retry_after_s)
    if status in (408, 504):
        return ProviderTimeoutError(message, http_status=status, retry_after_s=retry_after_s)
    if status >= 500:
        return ServerError(message, http_status=status, retry_after_s=retry_after_s)
    return InvalidRequestError(message, http_status=status)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)

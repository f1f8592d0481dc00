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
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    TransportError,
)
from bench.providers import observe
from bench.request import ImageRequest

NAN = math.nan
DEFAULT_MAX_DOWNLOAD_BYTES = 50 * 1024 * 1024


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
    options: Mapping[str, Any] = field(default_factory=dict)  # adapter-specific knobs (profile, ...)


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


class Provider(abc.ABC):
    """Base class for adapters. Subclasses implement `models()` and `generate()`."""

    name: str = ""
    needs_api_key: bool = True
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
        env = self.settings.api_key_env
        return os.environ.get(env) if env else None

    def check_ready(self) -> None:
        """Raise ConfigError if this provider cannot be used (called before any request)."""
        if not self.needs_api_key:
            return
        env = self.settings.api_key_env
        if not env:
            raise ConfigError(
                f"providers.{self.name}.api_key_env", env, "name the environment variable that holds the key"
            )
        if not os.environ.get(env):
            raise ConfigError(
                f"providers.{self.name}.api_key_env",
                env,
                f"environment variable {env} is not set; export {env}=<your key> (or use `bench emulate`)",
            )

    def secrets(self) -> list[str]:
        key = self.api_key()
        return [key] if key else []

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            limits = httpx.Limits(
                max_connections=max(self.settings.concurrency, 1) * 2,
                max_keepalive_connections=max(self.settings.concurrency, 1),
            )
            self._client = httpx.AsyncClient(timeout=httpx.Timeout(self.settings.timeout_s), limits=limits)
        return self._client

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

    def estimate_cost_usd(self, spec: ModelSpec, request: ImageRequest) -> float | None:
        """A cost a request is expected to have before it is sent, if the adapter knows one."""
        return None

    # ---- helpers for HTTP adapters ---------------------------------------------------
    async def download(self, url: str) -> tuple[GeneratedImage, float]:
        """Fetch an image URL (or decode a data URI) now, with a size cap; returns (image, seconds)."""
        started = time.perf_counter()
        if url.startswith("data:"):
            return decode_data_uri(url), time.perf_counter() - started
        chunks: list[bytes] = []
        total = 0
        try:
            async with self.client.stream("GET", url) as response:
                observe.note_headers(response.headers)
                if response.status_code in (403, 404, 410):
                    raise MalformedResponseError(
                        f"image URL answered HTTP {response.status_code} (expired or missing): {url}",
                        http_status=response.status_code,
                    )
                if response.status_code >= 400:
                    raise ServerError(
                        f"image download answered HTTP {response.status_code}: {url}",
                        http_status=response.status_code,
                    )
                async for chunk in response.aiter_bytes():
                    total += len(chunk)
                    if total > self.settings.max_download_bytes:
                        raise MalformedResponseError(
                            f"image at {url} is larger than max_download_bytes={self.settings.max_download_bytes}"
                        )
                    chunks.append(chunk)
                mime = response.headers.get("content-type")
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(f"image download timed out: {url}") from exc
        except httpx.TransportError as exc:
            raise TransportError(f"image download failed: {type(exc).__name__}: {url}") from exc
        return GeneratedImage(b"".join(chunks), mime=mime, source_url=url), time.perf_counter() - started


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

"""What every HTTP adapter shares: sending, JSON parsing, error mapping, polling, cancelling.

An adapter makes one attempt. It never retries or sleeps for backoff (the
runner does, honouring `retry_after_s`); it does poll an async job until
`settings.timeout_s`, and cancels the remote job when it gives up or when the
run is interrupted, so an abandoned job stops costing money.

Every message built here goes through `redact()` with the provider's secrets:
AKI.IO carries the key in the JSON body and some APIs echo the request back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from bench.catalog.mapping import map_request
from bench.catalog.spec import ModelSpec
from bench.errors import (
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    TransportError,
)
from bench.prices import PriceTable, estimate_cost
from bench.providers import observe
from bench.providers.base import (
    GeneratedImage,
    Provider,
    ProviderSettings,
    decode_base64,
    error_from_status,
    parse_retry_after,
)
from bench.redact import redact
from bench.request import ImageRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

EXCERPT_CHARS = 400  # enough to read an error body, short enough for a log line
CANCEL_TIMEOUT_S = 5.0  # a cancel that takes longer than this is abandoned


def nan_if_none(value: Any, scale: float = 1.0) -> float:
    """A finite float from a JSON number (times `scale`), else NaN: unknown is never 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                return math.nan
        else:
            return math.nan
    number = float(value) * scale
    return number if math.isfinite(number) else math.nan


def dig(obj: Any, *path: str | int) -> Any:
    """obj[path[0]][path[1]]..., or None where any step is missing or of the wrong kind."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(obj, list) or not -len(obj) <= step < len(obj):
                return None
        elif not isinstance(obj, Mapping) or step not in obj:
            return None
        obj = obj[step]
    return obj


def strip_images(value: Any) -> Any:
    """The answer with image payloads (base64, data URIs) cut short, for GenerationResult.metadata."""
    if isinstance(value, str):
        if value.startswith("data:") or len(value) > 2000:
            return f"<{len(value)} chars>"
        return value
    if isinstance(value, Mapping):
        return {str(k): strip_images(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_images(v) for v in value]
    return value


class HttpProvider(Provider):
    """Base for adapters that talk JSON over HTTP."""

    default_base_url: str = ""

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        # The configured name, not the protocol's: two fal accounts can be two providers.
        self.name = settings.name

    # ---- configuration -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return (self.settings.base_url or self.default_base_url).rstrip("/")

    @property
    def key(self) -> str:
        """The API key; check_ready() has made sure it is set before any request."""
        return self.api_key() or ""

    def option(self, name: str, default: T) -> T:
        value = self.settings.options.get(name, default)
        return default if value is None else value  # type: ignore[no-any-return]

    # ---- messages ------------------------------------------------------------------
    def safe(self, text: str) -> str:
        return redact(text, self.secrets())

    def excerpt(self, body: Any) -> str:
        """A short, redacted rendering of a response body for an error message."""
        if isinstance(body, bytes):
            text = body.decode("utf-8", errors="replace")
        elif isinstance(body, str):
            text = body
        else:
            text = json.dumps(strip_images(body), ensure_ascii=False, default=str)
        text = self.safe(text)
        return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + f"... ({len(text)} chars)"

    def malformed(
        self, expected: str, got: Any, response: httpx.Response | None = None
    ) -> MalformedResponseError:
        """The error for an answer that is not in the documented shape: what was expected, what came."""
        return MalformedResponseError(
            f"{self.name}: expected {expected}; got: {self.excerpt(got)}",
            http_status=response.status_code if response is not None else None,
        )

    # ---- HTTP ----------------------------------------------------------------------
    async def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """One HTTP exchange; network failures become typed errors that never show the request."""
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        try:
            response = await self.client.request(
                method, url, json=json_body, headers=headers, timeout=timeout
            )
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"{self.name}: {method} {self.safe(url)} timed out ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise TransportError(
                f"{self.name}: {method} {self.safe(url)} failed: {type(exc).__name__}"
            ) from None
        observe.note_headers(response.headers)
        return response

    def parse_json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self.malformed(f"a JSON {what}", response.content, response) from None

    async def call_json(
        self,
        method: str,
        url: str,
        *,
        what: str,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> tuple[httpx.Response, Any]:
        """Send, raise the typed error for an HTTP error status, else return the parsed JSON body."""
        response = await self.send(method, url, json_body=json_body, headers=headers, timeout_s=timeout_s)
        if response.status_code >= 400:
            try:
                body: Any = response.json()
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = response.text
            raise self.error_for(response, body)
        return response, self.parse_json(response, what)

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        """The typed error for an HTTP error answer. Adapters override to read their error codes."""
        return self.status_error(response, self.error_message(body))

    def error_message(self, body: Any) -> str:
        """The human part of an error body; adapters know where their API puts it."""
        return self.excerpt(body)

    def status_error(self, response: httpx.Response, message: str) -> ProviderError:
        error = error_from_status(
            response.status_code,
            f"{self.name}: HTTP {response.status_code}: {self.safe(message)}",
            parse_retry_after(response.headers.get("retry-after")),
        )
        error.provider_request_id = self.request_id_of(response)
        return error

    def request_id_of(self, response: httpx.Response) -> str | None:
        request_id: str | None = response.headers.get("x-request-id")
        return request_id

    # ---- images --------------------------------------------------------------------
    async def fetch_images(self, refs: Sequence[str]) -> tuple[tuple[GeneratedImage, ...], float]:
        """Download URLs (or decode data URIs) now: hosted URLs expire. Returns (images, seconds)."""
        if not refs:
            raise self.malformed("at least one image", list(refs))
        results = await asyncio.gather(*(self.download(ref) for ref in refs))
        return tuple(image for image, _ in results), sum(seconds for _, seconds in results)

    @staticmethod
    def image_from_base64(text: str, mime: str | None = None) -> GeneratedImage:
        if text.startswith("data:"):
            from bench.providers.base import decode_data_uri

            return decode_data_uri(text)
        return GeneratedImage(decode_base64(text), mime=mime)

    # ---- async jobs ----------------------------------------------------------------
    def deadline_from(self, started: float) -> float:
        return started + self.settings.timeout_s

    async def poll_until(
        self,
        fetch: Callable[[], Awaitable[T]],
        finished: Callable[[T], bool],
        *,
        interval_s: float | None = None,
    ) -> T:
        """Fetch until `finished(answer)`, sleeping 0.1 s, 0.2 s, ... up to the poll interval between
        fetches (observe.poll_delays); the deadline is enforced by `follow_job`. The longest sleep is
        recorded as the request's poll_interval_s: its latency is late by up to that much."""
        interval = self.settings.poll_interval_s if interval_s is None else interval_s
        for delay in observe.poll_delays(interval):
            answer = await fetch()
            if finished(answer):
                return answer
            observe.note_poll(delay)
            await asyncio.sleep(delay)
        raise AssertionError("poll_delays never ends")

    async def follow_job(
        self,
        work: Coroutine[Any, Any, T],
        *,
        job: str,
        deadline: float,
        cancel: Callable[[], Awaitable[object]] | None,
    ) -> T:
        """Run `work` (the polling of a remote job) until `deadline`; cancel the job if we give up.

        Gives up on the deadline, on a request that timed out, and on CancelledError
        (the user pressed Ctrl-C): in each case the job would otherwise keep running,
        and billing, on the provider's side.
        """
        remaining = max(deadline - time.perf_counter(), 0.0)
        try:
            async with asyncio.timeout(remaining):
                return await work
        except TimeoutError:
            cancelled = await self.cancel_quietly(cancel, job)
            raise ProviderTimeoutError(
                f"{self.name}: job {job} did not finish within timeout_s={self.settings.timeout_s:g}"
                + ("; cancel requested" if cancelled else "; the protocol has no cancel")
            ) from None
        except ProviderTimeoutError:
            await self.cancel_quietly(cancel, job)
            raise
        except asyncio.CancelledError:
            await self.cancel_quietly(cancel, job)
            raise

    async def cancel_quietly(self, cancel: Callable[[], Awaitable[object]] | None, job: str) -> bool:
        """Best-effort remote cancel, shielded from our own cancellation, with a short timeout."""
        if cancel is None:
            return False
        attempt = asyncio.ensure_future(asyncio.wait_for(cancel(), timeout=CANCEL_TIMEOUT_S))
        try:
            await asyncio.shield(attempt)
        except (ProviderError, TimeoutError) as exc:
            log.warning("%s: cancelling job %s failed: %s", self.name, job, self.safe(str(exc)))
            return False
        return True

    # ---- cost ----------------------------------------------------------------------
    def estimate_cost_usd(self, spec: ModelSpec, request: ImageRequest) -> float | None:
        """Expected cost from the price table the runner passes as options['price_table'], if any."""
        table = self.settings.options.get("price_table")
        if not isinstance(table, PriceTable):
            return None
        payload = map_request(spec, request).payload
        megapixels = request.width * request.height / 1e6 if request.width and request.height else None
        cost = estimate_cost(
            table, self.name, spec.model, payload=payload, n_images=request.num_images, megapixels=megapixels
        )
        return None if cost is None or math.isnan(cost) else cost


REFUSAL_WORDS = re.compile(
    r"content[ _-]?policy|moderation|nsfw|safety (?:filter|checker|system)|unsafe content", re.I
)


def looks_like_refusal(text: str) -> bool:
    """For APIs without a refusal code: does the error text say the content was refused?"""
    return bool(REFUSAL_WORDS.search(text))


def all_flagged_nsfw(body: Any) -> bool:
    """fal-style `has_nsfw_concepts: [true, ...]`: every image was blanked by the safety checker."""
    flags = dig(body, "has_nsfw_concepts")
    return isinstance(flags, list) and bool(flags) and all(flag is True for flag in flags)


def first_present(mapping: Any, keys: Iterable[str]) -> Any:
    """The first of `keys` that `mapping` has with a non-null value."""
    if not isinstance(mapping, Mapping):
        return None
    for key in keys:
        value = mapping.get(key)
        if value is not None:
            return value
    return None

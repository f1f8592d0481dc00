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
import functools
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
    DownloadError,
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
    decode_data_uri,
    error_from_status,
    parse_retry_after,
)
from bench.providers.url_safety import host_is_private, origin, resolves_to_private, same_origin
from bench.redact import redact
from bench.request import ImageRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

EXCERPT_CHARS = 400  # enough to read an error body, short enough for a log line
CANCEL_TIMEOUT_S = 5.0  # a cancel that takes longer than this is abandoned
# Image fetches: the generation is paid for, so a failed fetch is tried again (options.download_*).
DOWNLOAD_ATTEMPTS = 4
DOWNLOAD_BACKOFF_S = 0.5  # doubles after each failed fetch
DOWNLOAD_TIMEOUT_S = 60.0  # per fetch, whole body included (capped by timeout_s)
RETRIED_DOWNLOAD_STATUSES = frozenset({408, 425, 429})  # and 5xx; 403/404/410 mean expired or gone
_WIRE_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


@functools.lru_cache(maxsize=1024)
def parsed_url(url: str) -> httpx.URL:
    """httpx.URL(url), parsed once per URL: a provider sends every generation to the same few URLs,
    and httpx's parser took ~7% of the event loop's CPU at concurrency 1000. (httpx.URL is immutable.)"""
    return httpx.URL(url)


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


def response_cap_message(where: str, what: str, provider: str, cap: int) -> str:
    """The one line for an answer past max_response_bytes: who, which request, the cap, the setting."""
    return (
        f"{where}: the answer to {what} is larger than providers.{provider}.max_response_bytes={cap}; "
        "raise it if the API really answers that much"
    )


class CappedBody:
    """A streamed answer's bytes, refused with `too_big` past `cap` (declared by Content-Length or
    counted as it arrives), so a hostile answer of hundreds of MB costs at most `cap` of memory.
    Fed by the async adapters (HttpProvider.send) and the sync catalog fetcher (read_capped) alike."""

    def __init__(self, cap: int, headers: httpx.Headers, too_big: Callable[[], Exception]) -> None:
        # `too_big` makes the error only when needed: its message is redacted, which costs more
        # than reading a small answer.
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_big()
        self.cap, self.too_big = cap, too_big
        self.chunks: list[bytes] = []
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        if self.total > self.cap:
            raise self.too_big()
        self.chunks.append(chunk)

    def content(self) -> bytes:
        return b"".join(self.chunks)


def read_capped(response: httpx.Response, cap: int, too_big: Callable[[], Exception]) -> bytes:
    """The body of a streamed (sync) response, refused past `cap` bytes."""
    body = CappedBody(cap, response.headers, too_big)
    for chunk in response.iter_bytes():
        body.add(chunk)
    return body.content()


class _DownloadProblem(Exception):
    """One image fetch failed in a way another fetch of the same URL may not."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class _FinalDownloadProblem(_DownloadProblem):
    """One image fetch failed in a way fetching again cannot fix (too large, gone, forbidden)."""


class HttpProvider(Provider):
    """Base for adapters that talk JSON over HTTP."""

    default_base_url: str = ""
    # Other origins the provider documents for follow-up calls (which carry the key).
    documented_hosts: tuple[str, ...] = ()

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        # The configured name, not the protocol's: two fal accounts can be two providers.
        self.name = settings.name
        self._public_hosts: set[str] = set()  # image hosts already resolved to public addresses

    def prepare_transport(self) -> None:
        # Building the client imports the transport's library and loads the TLS trust store
        # (0.15 s here, about a second on a loaded machine): done lazily, that would stall the
        # event loop while the run's first requests hold their slots, and count as their client
        # wait. `bench run` calls this before it starts the event loop.
        _ = self.client

    async def warm_up(self) -> None:
        self.prepare_transport()  # a no-op when `bench run` has built the client already

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
        """One HTTP exchange; network failures become typed errors that never show the request.

        The answer is read streamed and refused past max_response_bytes, so a hostile or broken
        answer of hundreds of MB costs at most that much memory.
        """
        timeout = httpx.Timeout(timeout_s) if timeout_s is not None else httpx.USE_CLIENT_DEFAULT
        request = self.client.build_request(
            method, parsed_url(url), json=json_body, headers=headers, timeout=timeout
        )
        try:
            streamed = await self.client.send(request, stream=True)
            try:
                observe.note_headers(streamed.headers)
                body = await self._read_capped(streamed, method, url)
            finally:
                await streamed.aclose()
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(
                f"{self.name}: {method} {self.safe(url)} timed out ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise TransportError(
                f"{self.name}: {method} {self.safe(url)} failed: {type(exc).__name__}"
            ) from None
        # The body is already decoded: drop the headers that describe its encoding on the wire.
        kept = [(k, v) for k, v in streamed.headers.multi_items() if k.lower() not in _WIRE_ENCODING_HEADERS]
        return httpx.Response(streamed.status_code, headers=kept, content=body, request=request)

    async def _read_capped(self, response: httpx.Response, method: str, url: str) -> bytes:
        cap = self.settings.max_response_bytes

        def too_big() -> Exception:
            return MalformedResponseError(
                response_cap_message(self.name, f"{method} {self.safe(url)}", self.name, cap),
                http_status=response.status_code,
            )

        body = CappedBody(cap, response.headers, too_big)
        async for chunk in response.aiter_bytes():
            body.add(chunk)
        return body.content()

    def follow_up_url(self, named: Any, rebuilt: str, what: str) -> str:
        """A URL an answer names for the next call (which carries the key), if it points at the provider.

        Accepted when its scheme, host and port are those of base_url or of a host the provider
        documents (`documented_hosts`); otherwise the URL rebuilt from the documented pattern is used.
        """
        if not isinstance(named, str) or not named:
            return rebuilt
        if same_origin(named, (self.base_url, self.default_base_url, *self.documented_hosts)):
            return named
        log.warning(
            "%s: the answer's %s points at %s, not at the provider; using %s instead",
            self.name,
            what,
            self.safe(named)[:200],
            rebuilt,
        )
        return rebuilt

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
    async def fetch_images(
        self, refs: Sequence[str], *, billed_cost_usd: float = math.nan
    ) -> tuple[tuple[GeneratedImage, ...], float]:
        """Download URLs (or decode data URIs) now: hosted URLs expire. Returns (images, seconds).

        The generation is done (and billed, `billed_cost_usd` if the answer said how much) by the
        time this runs: a failed fetch is retried here and ends in DownloadError, which the runner
        never answers by sending the request again.
        """
        if not refs:
            raise self.malformed("at least one image", list(refs))
        try:
            results = await asyncio.gather(*(self.download(ref) for ref in refs))
        except DownloadError as exc:
            exc.billed_cost_usd = billed_cost_usd
            raise
        return tuple(image for image, _ in results), sum(seconds for _, seconds in results)

    async def download(self, url: str) -> tuple[GeneratedImage, float]:
        """Fetch one image URL (or decode a data URI), retrying the fetch only; returns (image, seconds)."""
        started = time.perf_counter()
        if url.startswith("data:"):
            return decode_data_uri(url), time.perf_counter() - started
        await self.check_image_url(url)
        attempts = max(int(self.option("download_attempts", DOWNLOAD_ATTEMPTS)), 1)
        backoff_s = float(self.option("download_backoff_s", DOWNLOAD_BACKOFF_S))
        per_try_s = float(self.option("download_timeout_s", min(self.settings.timeout_s, DOWNLOAD_TIMEOUT_S)))
        problem, http_status = "", None
        for attempt in range(1, attempts + 1):
            try:
                # A whole-fetch deadline: a body that trickles in never trips the read timeout.
                async with asyncio.timeout(per_try_s):
                    data, mime = await self._fetch_once(url)
                return GeneratedImage(data, mime=mime, source_url=url), time.perf_counter() - started
            except _DownloadProblem as exc:
                problem, http_status = str(exc), exc.http_status
                if isinstance(exc, _FinalDownloadProblem):
                    break
            except TimeoutError:
                problem, http_status = f"not complete within {per_try_s:g}s", None
            except httpx.TimeoutException as exc:
                problem, http_status = f"timed out ({type(exc).__name__})", None
            except httpx.TransportError as exc:  # includes a body shorter than its Content-Length
                problem, http_status = f"failed: {type(exc).__name__}", None
            if attempt < attempts:
                log.debug(
                    "%s: image fetch %d/%d failed (%s); retrying", self.name, attempt, attempts, problem
                )
                await asyncio.sleep(backoff_s * 2 ** (attempt - 1))
        raise DownloadError(
            f"{self.name}: the image could not be fetched after {attempt} tries ({problem}): "
            f"{self.safe(url)}; the generation was not sent again",
            http_status=http_status,
        )

    async def _fetch_once(self, url: str) -> tuple[bytes, str | None]:
        cap = self.settings.max_download_bytes
        # No auth header is set here: the client has no default headers, so image hosts never see the key.
        async with self.client.stream("GET", url) as response:
            observe.note_headers(response.headers)
            status = response.status_code
            if status >= 400:
                if status in RETRIED_DOWNLOAD_STATUSES or status >= 500:
                    raise _DownloadProblem(f"HTTP {status}", status)
                gone = " (expired or missing)" if status in (403, 404, 410) else ""
                raise _FinalDownloadProblem(f"HTTP {status}{gone}", status)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise _FinalDownloadProblem(f"Content-Length {declared} > max_download_bytes={cap}")
            chunks: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > cap:
                    raise _FinalDownloadProblem(f"larger than max_download_bytes={cap}")
                chunks.append(chunk)
            if not total:
                raise _DownloadProblem("empty body")
            return b"".join(chunks), response.headers.get("content-type")

    async def check_image_url(self, url: str) -> None:
        """Refuse (typed, never retried) image URLs that are not http(s) or point into a private network."""
        where = origin(url)
        if where is None:
            scheme = url.split(":", 1)[0][:20] if ":" in url else "none"
            raise DownloadError(
                f"{self.name}: image URL refused: scheme {scheme!r} is not http or https: {self.safe(url)[:200]}"
            )
        if self.private_urls_allowed:
            return
        _, host, port = where
        private = host_is_private(host)
        if not private and host not in self._public_hosts:
            private = await asyncio.to_thread(resolves_to_private, host, port)
            if not private:
                self._public_hosts.add(host)
        if private:
            raise DownloadError(
                f"{self.name}: image URL refused: {host} is a loopback, private or link-local address "
                f"and base_url is not; set providers.{self.name}.allow_private_urls=true if this is "
                f"intended: {self.safe(url)[:200]}"
            )

    @property
    def private_urls_allowed(self) -> bool:
        """Private image hosts are fine when the provider itself is one (an emulator, a proxy) or allowed."""
        if self.settings.allow_private_urls:
            return True
        base = origin(self.base_url)
        return base is not None and host_is_private(base[1])

    @staticmethod
    def image_from_base64(text: str, mime: str | None = None) -> GeneratedImage:
        if text.startswith("data:"):
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

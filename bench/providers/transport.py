"""The providers' shared httpx.AsyncClient, over aiohttp (default) or httpx's own transport.

httpx stays the client API (adapters, timeouts, streaming, redirect policy, error
types), but its own connection pool (httpcore) tops out far below a provider that
takes hundreds of requests at once; aiohttp's does not. `runner.http_transport`
(or $T2I_BENCH_HTTP_TRANSPORT for code that builds providers directly, like the
tests) picks `aiohttp` or `httpx`.

Both transports report when a request actually left (aiohttp: it got its pooled or new
connection, and its headers are written next; httpx: its headers started to be written),
into the attempt's observation, so the runner can separate the provider's latency from
time spent waiting inside our own client.

The client keeps no cookies between requests (see _StatelessClient).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from bench.providers import observe

TRANSPORTS = ("aiohttp", "httpx")
DEFAULT_TRANSPORT = "aiohttp"
TRANSPORT_ENV = "T2I_BENCH_HTTP_TRANSPORT"
_KEEPALIVE_S = 5.0  # httpx's default keep-alive expiry, for both pools


def default_transport() -> str:
    return os.environ.get(TRANSPORT_ENV) or DEFAULT_TRANSPORT


def pool_limits(concurrency: int) -> httpx.Limits:
    """Connections for `concurrency` requests at once, plus as many again for image downloads."""
    n = max(concurrency, 1)
    return httpx.Limits(max_connections=n * 2, max_keepalive_connections=n, keepalive_expiry=_KEEPALIVE_S)


def make_client(transport: str, concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    limits = pool_limits(concurrency)
    if transport == "httpx":
        chosen: httpx.AsyncBaseTransport = _HttpxTransport(limits=limits)
    elif transport == "aiohttp":
        chosen = _aiohttp_transport(limits)
    else:
        raise ValueError(f"http transport {transport!r}: use one of {', '.join(TRANSPORTS)}")
    return _StatelessClient(timeout=httpx.Timeout(timeout_s), limits=limits, transport=chosen)


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        pass


class _StatelessClient(httpx.AsyncClient):
    """httpx's client, keeping no cookies between requests.

    Every request to an API stands alone (the key authenticates it): a load balancer's
    sticky-session cookie replayed on later requests would pin a benchmark to one backend. And
    httpx extracts cookies by building urllib request and response adapters for every answer,
    measured at ~5% of the event loop's CPU at concurrency 1000.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._none_kept = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._none_kept

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        raise TypeError("the providers' HTTP client keeps no cookies")


# ---- httpx's own transport (httpcore) ----------------------------------------------------
TraceFn = Callable[[str, Mapping[str, Any]], Awaitable[None] | None]


class _HttpxTransport(httpx.AsyncHTTPTransport):
    """httpcore's pool, with its trace hook marking the moment the request headers are written."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        outer: TraceFn | None = request.extensions.get("trace")

        async def trace(event: str, info: Mapping[str, Any]) -> None:
            if event.endswith("send_request_headers.started"):
                observe.note_left()
            if outer is not None:
                result = outer(event, info)
                if result is not None:
                    await result

        request.extensions = {**request.extensions, "trace": trace}
        return await super().handle_async_request(request)


# ---- aiohttp, through httpx-aiohttp ------------------------------------------------------
def _aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    class MarkingConnector(aiohttp.TCPConnector):
        """Notes when a request got its connection (pooled or new): its headers are written next.

        (aiohttp's TraceConfig would tell the same, but any trace config makes aiohttp build and
        dispatch a dozen signal objects per request: measured at ~5% of the event loop's CPU at
        concurrency 1000.)
        """

        async def connect(
            self, req: aiohttp.ClientRequest, traces: list[Any], timeout: aiohttp.ClientTimeout
        ) -> Any:
            connection = await super().connect(req, traces, timeout)
            observe.note_left()
            return connection

    def session() -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop, as aiohttp requires.
        connector = MarkingConnector(
            limit=limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=limits.keepalive_expiry or _KEEPALIVE_S,
        )
        return aiohttp.ClientSession(connector=connector)

    class Transport(AiohttpTransport):
        """httpx-aiohttp's transport with aiohttp's errors typed as httpx's own transport types them."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            try:
                response = await super().handle_async_request(request)
            except httpx.TransportError as exc:
                raise _retyped(exc) from exc.__cause__
            except aiohttp.ClientError as exc:  # not in httpx-aiohttp's map: a malformed answer
                raise httpx.RemoteProtocolError(str(exc)) from exc
            response.stream = _RetypingStream(response.stream)  # type: ignore[arg-type]
            return response

    return Transport(limits=limits, client=session)


def _retyped(exc: httpx.TransportError) -> httpx.TransportError:
    """httpx-aiohttp maps every aiohttp ClientConnectionError (refused, reset, disconnected) to
    ConnectTimeout; httpx's transport calls those ConnectError / RemoteProtocolError / ReadError,
    and a refused connection must not be recorded as a timeout."""
    import aiohttp

    cause = exc.__cause__
    if not isinstance(exc, httpx.ConnectTimeout) or cause is None or isinstance(cause, TimeoutError):
        return exc
    if isinstance(cause, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc))
    if isinstance(cause, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(str(exc))
    return httpx.ReadError(str(exc))


class _RetypingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> Any:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.TransportError as exc:
            raise _retyped(exc) from exc.__cause__
        except Exception as exc:
            import aiohttp

            if isinstance(exc, aiohttp.ClientError):  # not in httpx-aiohttp's map
                raise httpx.RemoteProtocolError(str(exc)) from exc
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

"""Both transports under the providers' httpx client behave the same, against a raw server on 127.0.0.1.

Timeouts, refused and dropped connections, redirects (never followed), the download
size cap, and the moment a request left (for client_wait_s) are checked under
aiohttp and httpx alike. The provider suites run under either with
`pytest --http-transport=httpx|aiohttp`.
"""

from __future__ import annotations

import asyncio
import math
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench.errors import DownloadError, ProviderError, ProviderTimeoutError, TransportError
from bench.providers import observe
from bench.providers.base import ProviderSettings
from bench.providers.http_common import HttpProvider
from bench.providers.registry import create_provider
from bench.providers.transport import TRANSPORTS

BIG = 256 * 1024


class _Handler(socketserver.BaseRequestHandler):
    """One request per connection, each answer saying `Connection: close` (without it a client
    may reuse the connection this handler has just closed, and fail by chance)."""

    def handle(self) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(65536)
            if not chunk:
                return
            data += chunk
        path = data.split(b" ", 2)[1].decode()
        send = self.request.sendall
        if path == "/slow":
            time.sleep(1.5)
            send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
        elif path == "/redirect":
            send(b"HTTP/1.1 302 Found\r\nConnection: close\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n")
        elif path == "/big":
            send(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n"
                % BIG
            )
            send(b"\0" * BIG)
        elif path == "/set-cookie":
            send(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nSet-Cookie: backend=7; Path=/\r\n"
                b"Content-Length: 2\r\n\r\n{}"
            )
        elif path == "/echo-cookie":
            sent = b"\r\ncookie:" in data.lower()
            body = b'{"cookie": %s}' % (b"true" if sent else b"false")
            send(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        elif path == "/drop":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
            self.request.shutdown(socket.SHUT_RDWR)
        else:
            send(
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
                b'Content-Length: 12\r\n\r\n{"ok": true}'
            )


@contextmanager
def raw_server() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provider(transport: str, url: str, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> HttpProvider:
    monkeypatch.setenv("X_TRANSPORT_KEY", "sk-transport-test")
    settings = ProviderSettings(
        name="t",
        base_url=url,
        api_key_env="X_TRANSPORT_KEY",
        http_transport=transport,
        options={"profile": "openai"},
        **kw,
    )
    made = create_provider("openai_compat", settings)
    assert isinstance(made, HttpProvider)
    return made


async def outcome(p: HttpProvider, method: str, url: str) -> Any:
    try:
        response = await p.send(method, url)
        return response.status_code
    except ProviderError as exc:
        return type(exc)
    finally:
        await p.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_errors_are_typed_alike(transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with raw_server() as url:
        assert asyncio.run(outcome(provider(transport, url, monkeypatch), "GET", f"{url}/ok")) == 200
        # Redirects are never followed (a 302 is the adapter's to judge, under either transport).
        assert asyncio.run(outcome(provider(transport, url, monkeypatch), "GET", f"{url}/redirect")) == 302
        slow = provider(transport, url, monkeypatch, timeout_s=0.3)
        assert asyncio.run(outcome(slow, "GET", f"{url}/slow")) is ProviderTimeoutError
    refused = f"http://127.0.0.1:{closed_port()}/ok"
    # A refused connection is a transport error, not a timeout (httpx-aiohttp alone calls it ConnectTimeout).
    assert asyncio.run(outcome(provider(transport, url, monkeypatch), "GET", refused)) is TransportError


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_no_cookie_is_kept_between_requests(transport: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each API request stands alone: a sticky-session cookie is not replayed on the next one."""

    async def exchange(p: HttpProvider, url: str) -> Any:
        try:
            first = await p.send("GET", f"{url}/set-cookie")
            assert first.headers["set-cookie"].startswith("backend=7")
            return (await p.send("GET", f"{url}/echo-cookie")).json()
        finally:
            await p.aclose()

    with raw_server() as url:
        assert asyncio.run(exchange(provider(transport, url, monkeypatch), url)) == {"cookie": False}
        # Control: httpx's own client keeps the cookie and sends it back to the same server.
        plain = make_client_with_one_connection(transport)

        async def plain_exchange() -> Any:
            try:
                await plain.get(f"{url}/set-cookie")
                return (await plain.get(f"{url}/echo-cookie")).json()
            finally:
                await plain.aclose()

        assert asyncio.run(plain_exchange()) == {"cookie": True}


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_downloads_stream_under_the_size_cap_and_dropped_bodies_are_download_errors(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fetch(p: HttpProvider, url: str) -> Any:
        try:
            image, _ = await p.download(url)
            return len(image.data)
        except ProviderError as exc:
            return exc
        finally:
            await p.aclose()

    with raw_server() as url:
        assert asyncio.run(fetch(provider(transport, url, monkeypatch), f"{url}/big")) == BIG
        capped = asyncio.run(
            fetch(provider(transport, url, monkeypatch, max_download_bytes=BIG // 2), f"{url}/big")
        )
        assert isinstance(capped, ProviderError) and "max_download_bytes" in str(capped)
        dropped = asyncio.run(fetch(provider(transport, url, monkeypatch), f"{url}/drop"))
        # A body cut short is retried, then typed as a download failure under either transport.
        assert isinstance(dropped, DownloadError) and dropped.error_type == "download", dropped


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_the_moment_a_request_left_excludes_waiting_for_a_connection(transport: str) -> None:
    """With one connection and two requests, the second waits for the first: that wait is the
    client's (slot -> left), and what follows is the server's."""

    async def one(client: Any, url: str) -> observe.Observation:
        seen = observe.start(slot_at=time.perf_counter())
        response = await client.get(url)
        assert response.status_code == 200
        return seen

    async def main(url: str) -> list[observe.Observation]:
        client = make_client_with_one_connection(transport)
        try:
            return list(await asyncio.gather(one(client, url), one(client, url)))
        finally:
            await client.aclose()

    with raw_server() as url:
        first, second = asyncio.run(main(f"{url}/slow"))
    waits = sorted([first.client_wait_s, second.client_wait_s])
    assert all(math.isfinite(w) and w >= 0 for w in waits)
    # The second waited out the first's 1.5 s answer inside the client; the first did not wait for
    # it. (A bound the server's sleep sets: a loaded machine can only make the difference larger.)
    assert waits[1] - waits[0] >= 1.2


def make_client_with_one_connection(transport: str) -> Any:
    import httpx

    from bench.providers import transport as tr

    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    inner = tr._HttpxTransport(limits=limits) if transport == "httpx" else tr._aiohttp_transport(limits)
    return httpx.AsyncClient(timeout=httpx.Timeout(10), limits=limits, transport=inner)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_runs_record_client_wait_under_either_transport(
    transport: str, bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd
    from scripted_server import paid_config, scripted

    from bench.cli.run import execute_run

    monkeypatch.setenv("T2I_TEST_PAID_KEY", "sk-paid-test")
    with scripted([]) as (url, _):
        cfg = paid_config(bench_cfg, url, "prompts.n=3", f"runner.http_transport={transport}")
        assert execute_run(cfg, tmp_path / "run") == 0
    df = pd.read_parquet(tmp_path / "run" / "records.parquet")
    assert (df.status == "ok").all() and len(df) == 3
    assert df.client_wait_s.between(0, 5).all() and df.latency_s.gt(0).all()

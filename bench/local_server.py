"""What `bench rate` and `bench view` share: loopback only, their own origin only, small bodies,
files only from inside their folders.

Both servers listen on 127.0.0.1, but a listening socket on loopback is still reachable from any
web page the user opens: a page on another site can POST to it (a forged vote), and a page whose
DNS name was re-pointed at 127.0.0.1 (DNS rebinding) can even read its answers (prompts, images).
The guard below refuses both, before the app sees the request:

- Host must name this server: `127.0.0.1:PORT` or `localhost:PORT`, PORT being the port the
  request arrived on, or a name the user allowed (`--host`). Anything else: 421 Misdirected Request.
  A rebinding page's requests carry its own host name, so this is what stops them.
- A request that changes state (any method but GET/HEAD/OPTIONS) must carry `Origin` equal to
  `http://` + its Host, i.e. come from the server's own page; a request of any method that carries
  another Origin (a cross-site fetch) is refused too. Both: 403.
- Bodies stop at MAX_BODY_BYTES: a larger Content-Length is refused before a byte of the body is
  read, and a body without a length (chunked) is read only until it passes the cap. Both: 413.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.errors import BenchError

MAX_BODY_BYTES = 16 * 1024  # a vote is < 1 KiB; nothing else posts a body
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
_HOST_RE = re.compile(r"^(?P<name>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(?P<port>[0-9]{1,5}))?$")


HOST_HELP = (
    "also answer requests addressed to this host name, e.g. localhost:9000 behind `ssh -L 9000:127.0.0.1:PORT` "
    "(repeatable; without :PORT, the server's own port). The server still listens on 127.0.0.1 only."
)


class BadHostOption(BenchError):
    """A `--host` value that is not NAME or NAME:PORT."""


@dataclass(frozen=True)
class AllowedHost:
    """A Host header value the user allowed besides the loopback names; port None: the server's own."""

    name: str
    port: int | None

    @classmethod
    def parse(cls, value: str, option: str = "--host") -> AllowedHost:
        match = _HOST_RE.match(value.strip().lower())
        port = int(match["port"]) if match and match["port"] else None
        if match is None or (port is not None and not 0 < port < 65536):
            raise BadHostOption(
                f"{option} {value!r}: give a host name as the browser sends it, NAME or NAME:PORT "
                "(e.g. localhost:9000 for an SSH tunnel); no scheme, no path"
            )
        return cls(match["name"], port)


def _split_host(value: str) -> tuple[str, int] | None:
    """('name', port) of a Host header; the port defaults to 80 as in an http:// URL."""
    match = _HOST_RE.match(value.strip().lower())
    if match is None:
        return None
    return match["name"], int(match["port"]) if match["port"] else 80


def confined_file(root: Path, rel: str | Path) -> Path | None:
    """root/rel resolved (symlinks followed), if it is a file inside root; else None.

    Every file a local server sends goes through here: no ../, no absolute path, no symlink
    pointing out of the folder (a link to /etc/passwd inside a run folder stays unserved).
    """
    base = root.resolve()
    try:
        path = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a NUL byte
        return None
    return path if path.is_relative_to(base) and path.is_file() else None


class _ClientGone(Exception):
    """The client disconnected while sending its body: nobody is left to answer."""


class LocalOnly:
    """ASGI middleware enforcing the rules in the module docstring around `app`."""

    def __init__(
        self, app: ASGIApp, extra_hosts: Iterable[AllowedHost] = (), max_body_bytes: int = MAX_BODY_BYTES
    ) -> None:
        self.app = app
        self.extra_hosts = tuple(extra_hosts)
        self.max_body_bytes = max_body_bytes

    def host_allowed(self, host: str, server_port: int | None) -> bool:
        parsed = _split_host(host)
        if parsed is None:
            return False
        name, port = parsed
        if name in LOOPBACK_NAMES and port == server_port:
            return True
        return any(name == h.name and port == (h.port or server_port) for h in self.extra_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no websockets here; lifespan passes through
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        server = scope.get("server")
        host = headers.get("host", "")
        if not self.host_allowed(host, server[1] if server else None):
            names = " or ".join(f"{n}:PORT" for n in LOOPBACK_NAMES)
            await _refuse(421, f"misdirected request: Host {host!r}; this server answers to {names}")(
                scope, receive, send
            )
            return
        origin = headers.get("origin")
        if (origin is not None or scope["method"] not in SAFE_METHODS) and (
            origin or ""
        ).lower() != f"http://{host.strip().lower()}":
            why = "no Origin" if origin is None else f"Origin {origin!r}"
            await _refuse(403, f"forbidden: {why}; only this server's own page may send this")(
                scope, receive, send
            )
            return
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _too_large(self.max_body_bytes)(scope, receive, send)
            return
        try:
            body = await self._read_capped(receive)
        except _ClientGone:
            return
        if body is None:
            await _too_large(self.max_body_bytes)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_capped(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the cap (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the app the body already read, then the real channel (disconnects)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _refuse(status: int, text: str) -> PlainTextResponse:
    # Connection: close, so the server does not keep reading a body it has refused.
    return PlainTextResponse(text + "\n", status_code=status, headers={"connection": "close"})


def _too_large(cap: int) -> PlainTextResponse:
    return _refuse(413, f"request body too large: this server takes at most {cap} bytes")


def bind_loopback(port: int) -> socket.socket:
    """A socket bound to 127.0.0.1:port (0: any free port); OSError if the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return sock

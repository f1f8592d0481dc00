"""The HTTP side every emulator shares: routes that count each call, check the key and find the job.

An emulator describes its API once in a `Protocol` (where the key travels, how the API answers a
bad key, an unknown job id, a rate limit and a server error); `Routes` then builds routes that do
those steps the same way for every API, so each emulator's handlers hold only what its API does
differently: paths, request and answer shapes, status words.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.emulators.common import EmulatorState
from bench.emulators.jobs import Job
from bench.emulators.knobs import Knobs
from bench.providers.observe import EMULATOR_HEADER

Handler = Callable[[Request], Awaitable[Response]]
JobHandler = Callable[[Request, Job], Awaitable[Response]]


@dataclass(frozen=True)
class Protocol:
    """How one API answers what every emulator checks the same way."""

    name: str  # sent in the emulator header (observe.EMULATOR_HEADER)
    key: Callable[[Request], str | None]  # where a request carries its key
    unauthorized: Callable[[str | None], Response]  # a missing or wrong key (given the key sent)
    rate_limited: Callable[[dict[str, str]], Response]  # 429, given the Retry-After header to send
    server_failed: Callable[[int], Response]  # 500 or 503
    unknown_job: Callable[[], Response] | None = None  # a job id the API never issued (async APIs)
    job_param: str = "request_id"  # the path parameter that names a job


def fault_answer(protocol: Protocol, knobs: Knobs, fault: str | None) -> Response | None:
    """The API's answer to a transient fault (rate limit, server error), None for no fault."""
    if fault == "rate_limit":
        return protocol.rate_limited({"Retry-After": f"{knobs.retry_after_s:g}"})
    if fault in ("server_error", "unavailable"):
        return protocol.server_failed(500 if fault == "server_error" else 503)
    return None


class Routes:
    """Routes of one emulator app. Every call is logged in `emu.calls` ("METHOD /path") first."""

    def __init__(self, emu: EmulatorState, protocol: Protocol) -> None:
        self.emu, self.protocol = emu, protocol

    def _counted(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            self.emu.calls.append(f"{request.method} {request.url.path}")
            return await handler(request)

        return endpoint

    def _keyed(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            key = self.protocol.key(request)
            if not self.emu.key_ok(key):
                return self.protocol.unauthorized(key)
            return await handler(request)

        return endpoint

    def open(self, path: str, handler: Handler, method: str = "GET") -> Route:
        """A route that asks for no key (discovery documents, image files)."""
        return Route(path, self._counted(handler), methods=[method])

    def keyed(self, path: str, handler: Handler, method: str = "GET") -> Route:
        """A route that refuses a missing or wrong key before the handler runs."""
        return Route(path, self._counted(self._keyed(handler)), methods=[method])

    def job(
        self,
        path: str,
        handler: JobHandler,
        method: str = "GET",
        unknown: Callable[[], Response] | None = None,
    ) -> Route:
        """A keyed route about one job (status, result, cancel): the handler gets the job, and an
        id the machine never issued gets the API's not-found answer (`unknown` where one route
        of the API words it differently)."""
        not_found = unknown or self.protocol.unknown_job
        if not_found is None:
            raise ValueError(f"{self.protocol.name}: a job route needs the API's answer to an unknown job id")

        async def with_job(request: Request) -> Response:
            job = self.emu.job(request.path_params[self.protocol.job_param])
            return not_found() if job is None else await handler(request, job)

        return self.keyed(path, with_job, method)

    def fault_answer(self, job: Job) -> Response | None:
        """The answer a submission gets when its job carries a rate limit or a server error."""
        return fault_answer(self.protocol, self.emu.knobs, job.transient_fault)

    def app(self, routes: Sequence[BaseRoute]) -> Starlette:
        """The app: the image files, then `routes`; its state is the emulator's, every answer marked."""
        app = Starlette(routes=[self.open("/files/{file_id}", self._serve_file), *routes])
        app.state.emu = self.emu
        app.add_middleware(_EmulatorHeader, protocol=self.protocol.name)
        return app

    async def _serve_file(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.emu.files or file_id in self.emu.expired:
            return Response(
                b"<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml"
            )
        data, mime = self.emu.file_bytes(file_id)
        return Response(data, media_type=mime)


class _EmulatorHeader:
    """Every response says it came from an emulator (observe.EMULATOR_HEADER), so runs against it
    are recorded as emulated and synthetic: the images come from the local generator.

    Pure ASGI (cheaper than BaseHTTPMiddleware, and safe for held-open hang responses)."""

    def __init__(self, app: ASGIApp, protocol: str) -> None:
        self.app, self.value = app, protocol.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (EMULATOR_HEADER.encode(), self.value)]
            await send(message)

        await self.app(scope, receive, send_marked)

"""Shared by the provider/emulator tests: build an adapter against an emulator and run one request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.catalog.mapping import map_request
from bench.emulators.common import EmulatorState, Knobs
from bench.emulators.serve import running
from bench.errors import ProviderError
from bench.images import inspect_image
from bench.providers.base import GenerationResult, Provider, ProviderSettings
from bench.providers.registry import create_provider
from bench.request import ImageRequest

KEY_ENV = "X_TEST_KEY"
KEY = "sk-test-SECRET-9f8e7d6c5b4a"
SMALL = Knobs(max_side_px=64)


def knobs(**kw: Any) -> Knobs:
    return Knobs(**{"max_side_px": 64, **kw})


@contextmanager
def emulator(app: Any) -> Iterator[tuple[str, EmulatorState]]:
    with running(app) as url:
        yield url, app.state.emu


def make_provider(
    adapter: str,
    name: str,
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    *,
    options: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
    key: str = KEY,
) -> Provider:
    monkeypatch.setenv(KEY_ENV, key)
    settings = ProviderSettings(
        name=name,
        base_url=url,
        api_key_env=KEY_ENV,
        timeout_s=timeout_s,
        poll_interval_s=0.01,
        options=dict(options or {}),
    )
    provider = create_provider(adapter, settings)
    provider.check_ready()
    return provider


def generate(provider: Provider, model: str, request: ImageRequest) -> GenerationResult:
    async def go() -> GenerationResult:
        try:
            spec = provider.model_spec(model)
            return await provider.generate(spec, map_request(spec, request).payload, request)
        finally:
            await provider.aclose()

    return asyncio.run(go())


def generate_error(
    provider: Provider, model: str, request: ImageRequest, error: type[ProviderError]
) -> ProviderError:
    with pytest.raises(error) as info:
        generate(provider, model, request)
    assert KEY not in str(info.value), "the API key leaked into an error message"
    return info.value


def assert_images(result: GenerationResult, count: int = 1) -> None:
    assert len(result.images) == count
    for image in result.images:
        info = inspect_image(image.data)
        assert info.width > 0 and info.height > 0


def interrupt_while_polling(
    provider: Provider, model: str, request: ImageRequest, polling: Callable[[], bool]
) -> None:
    """Start a request, cancel its task (as Ctrl-C does) once `polling()` is true; it must re-raise."""

    async def go() -> None:
        spec = provider.model_spec(model)
        task = asyncio.create_task(provider.generate(spec, map_request(spec, request).payload, request))
        try:
            while not polling():
                assert not task.done(), "the request ended before it was polled"
                await asyncio.sleep(0.005)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            await provider.aclose()

    asyncio.run(go())


def huge_json_route(
    path: str, method: str, head: bytes, tail: bytes, size: int, *, declare_length: bool
) -> Route:
    """A route answering `head` + `size` bytes of "A" + `tail` as JSON, streamed in 64 KiB chunks
    (so the server itself holds little), with or without a Content-Length."""
    chunk = b"A" * 65536

    async def answer(request: Request) -> Response:
        await request.body()

        async def stream() -> Any:
            yield head
            for _ in range(size // len(chunk)):
                yield chunk
            yield tail

        length = len(head) + size // len(chunk) * len(chunk) + len(tail)
        headers = {"content-length": str(length)} if declare_length else {}
        return StreamingResponse(stream(), media_type="application/json", headers=headers)

    return Route(path, answer, methods=[method])

"""Keys only to the provider: hostile follow-up URLs, oversized answers, key hygiene, HTTP logs.

The emulators run on 127.0.0.1; a "capture" server on another 127.0.0.1 port stands for
a foreign host and records every request (and every key) it receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _provider_harness import (
    KEY,
    KEY_ENV,
    assert_images,
    emulator,
    generate,
    huge_json_route,
    knobs,
    make_provider,
)
from scripted_server import paid_config, scripted
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.catalog.mapping import map_request
from bench.cli import main
from bench.cli.run import execute_run
from bench.emulators import fal, replicate
from bench.emulators.serve import running
from bench.errors import ConfigError, MalformedResponseError
from bench.http_logging import configure_http_logging, redact_auth_headers
from bench.providers.base import ProviderSettings
from bench.providers.registry import create_provider
from bench.request import ImageRequest

REQ = ImageRequest(prompt="a red circle", seed=1, width=512, height=512, steps=4)
FOLLOW_UP_KEYS = ("status_url", "response_url", "cancel_url", "get", "cancel")


# ---- a foreign host, and an answer that points at it ----------------------------------------
class Capture:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []  # (path, authorization header)

    def app(self) -> Starlette:
        async def anything(request: Request) -> Response:
            self.requests.append((request.url.path, request.headers.get("authorization", "")))
            return JSONResponse({"status": "COMPLETED", "id": "x"})

        return Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST", "PUT"])])

    def keys_received(self) -> int:
        return sum(KEY in auth for _, auth in self.requests)


class PointElsewhere:
    """ASGI wrapper: every follow-up URL in the wrapped emulator's JSON answers names another host."""

    def __init__(self, app: Any, foreign: str) -> None:
        self.app, self.foreign = app, foreign
        self.state = app.state  # tests read app.state.emu

    def rewrite(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (
                    self.foreign + "/steal" if k in FOLLOW_UP_KEYS and isinstance(v, str) else self.rewrite(v)
                )
                for k, v in value.items()
            }
        return value

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def buffer(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            else:
                body.extend(message.get("body", b""))

        await self.app(scope, receive, buffer)
        data = bytes(body)
        with contextlib.suppress(ValueError):  # images and non-JSON bodies pass through
            data = json.dumps(self.rewrite(json.loads(data))).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": data})


@contextmanager
def hostile(app: Any) -> Iterator[tuple[str, Any, Capture]]:
    capture = Capture()
    with running(capture.app()) as foreign, emulator(PointElsewhere(app, foreign)) as (url, emu):
        yield url, emu, capture


def test_fal_never_sends_the_key_to_a_status_or_response_url_on_another_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with hostile(fal.create_app(knobs(queue_s=(0.02, 0.02), inference_s=(0.02, 0.02)))) as (
        url,
        emu,
        capture,
    ):
        result = generate(make_provider("fal", "fal", url, monkeypatch), "fal-ai/flux/schnell", REQ)
    assert_images(result)  # the documented URLs on base_url were used instead
    assert capture.requests == [] and capture.keys_received() == 0
    assert any(c.endswith("/status") for c in emu.calls)


def test_replicate_never_sends_the_key_to_urls_get_or_cancel_on_another_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with hostile(replicate.create_app(knobs(queue_s=(0.05, 0.05)))) as (url, emu, capture):
        provider = make_provider("replicate", "replicate", url, monkeypatch, options={"prefer_wait_s": 0})
        result = generate(provider, "black-forest-labs/flux-schnell", REQ)
    assert_images(result)
    assert any(c.startswith("GET /v1/predictions/") for c in emu.calls)  # it polled, on base_url
    assert capture.requests == []

    with hostile(replicate.create_app(knobs(fault="hang"))) as (url, emu, capture):
        provider = make_provider(
            "replicate", "replicate", url, monkeypatch, options={"prefer_wait_s": 0}, timeout_s=0.3
        )
        with pytest.raises(Exception, match="did not finish"):
            generate(provider, "black-forest-labs/flux-schnell", REQ)
    assert len(emu.cancels) == 1  # the cancel went to Replicate (base_url), not to the other host
    assert capture.keys_received() == 0 and capture.requests == []


def test_follow_up_urls_on_the_provider_or_a_documented_host_are_used() -> None:
    provider: Any = create_provider(
        "fal", ProviderSettings(name="fal", base_url="https://proxy.example:8443")
    )
    rebuilt = "https://proxy.example:8443/fal-ai/flux/requests/1/status"
    named = "https://queue.fal.run/fal-ai/flux/requests/1/status"  # fal's own queue host
    assert provider.follow_up_url(named, rebuilt, "status_url") == named
    same = "https://PROXY.example:8443/other/path"
    assert provider.follow_up_url(same, rebuilt, "status_url") == same
    for foreign in (
        "http://proxy.example:8443/x",  # scheme differs
        "https://proxy.example/x",  # port differs
        "https://queue.fal.run.evil.example/x",
        "file:///etc/passwd",
    ):
        assert provider.follow_up_url(foreign, rebuilt, "status_url") == rebuilt


# ---- answer size cap --------------------------------------------------------------------------
def huge_answer_app(size: int, *, declare_length: bool) -> Starlette:
    """An OpenAI images answer of `size` bytes, streamed."""
    head, tail = b'{"created": 0, "data": [{"b64_json": "', b'"}]}'
    route = huge_json_route("/v1/images/generations", "POST", head, tail, size, declare_length=declare_length)
    return Starlette(routes=[route])


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_json_answer_is_refused_without_holding_it(
    declare_length: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    size = 32 * 1024 * 1024  # stands in for 300 MB
    cap = 256 * 1024
    with running(huge_answer_app(size, declare_length=declare_length)) as url:
        provider: Any = create_provider(
            "openai_compat",
            ProviderSettings(
                name="openai",
                base_url=url,
                api_key_env=KEY_ENV,
                max_response_bytes=cap,
                options={"profile": "openai"},
            ),
        )
        spec = provider.model_spec("dall-e-3")

        async def go() -> None:
            try:
                await provider.generate(spec, map_request(spec, REQ).payload, REQ)
            finally:
                await provider.aclose()

        tracemalloc.start()
        try:
            with pytest.raises(MalformedResponseError) as info:
                asyncio.run(go())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert f"providers.openai.max_response_bytes={cap}" in info.value.message
    assert peak < size / 4, f"peak {peak} bytes while refusing a {size}-byte answer"


def test_max_response_bytes_is_validated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", f"results_dir={tmp_path}", "+providers.local.max_response_bytes=0"]) == 2
    assert "providers.local.max_response_bytes=0" in capsys.readouterr().err


# ---- key hygiene -----------------------------------------------------------------------------
def test_whitespace_around_a_key_is_stripped(
    bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T2I_TEST_PAID_KEY", f"  {KEY}\r\n")
    with scripted([]) as (url, script):
        assert execute_run(paid_config(bench_cfg, url), tmp_path / "run") == 0
    assert script.auth_headers == [f"Bearer {KEY}"]


def test_a_key_with_a_control_character_is_refused_without_showing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY[:8] + "\x1b" + KEY[8:])
    provider = create_provider("fal", ProviderSettings(name="fal", api_key_env=KEY_ENV))
    with pytest.raises(ConfigError) as info:
        provider.check_ready()
    assert "control character" in str(info.value)
    assert KEY[:8] not in str(info.value) and KEY[8:] not in str(info.value)


@pytest.mark.parametrize("value", [KEY, "sk_live_0123456789abcdefABCDEF", "r8_abcdefghij0123456789"])
def test_a_key_given_as_api_key_env_is_never_echoed(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", f"results_dir={tmp_path}", "models=fal", f"providers.fal.api_key_env={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "api_key_env must name an environment variable" in err
    assert value not in err and value[3:] not in err
    assert len(err.strip().splitlines()) == 1


# ---- HTTP library logs -----------------------------------------------------------------------
@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Root logger at DEBUG (as hydra.verbose=true sets it); yields a function listing HTTP log records."""
    monkeypatch.setenv("T2I_TEST_PAID_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    yield lambda: [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    configure_http_logging(debug=False, secrets=[])


def test_http_loggers_stay_quiet_even_when_everything_else_is_debug(
    bench_cfg: Any, tmp_path: Path, debug_logs: Any
) -> None:
    with scripted([]) as (url, _):
        assert execute_run(paid_config(bench_cfg, url), tmp_path / "run") == 0
    assert debug_logs() == []


def test_http_debug_shows_the_http_log_with_keys_and_auth_headers_redacted(
    bench_cfg: Any, tmp_path: Path, debug_logs: Any
) -> None:
    with scripted([]) as (url, _):
        cfg = paid_config(bench_cfg, url, "bench.http_debug=true")
        assert execute_run(cfg, tmp_path / "run") == 0
        # What httpcore would print for a header the HTTP library refused:
        logging.getLogger("httpcore.http11").debug(
            "send_request_headers.failed exception=%r", ValueError(f"Illegal header value b'Bearer {KEY}\\r'")
        )
    records = debug_logs()
    assert any(r.name.startswith("httpcore") for r in records)  # debug lines do come through
    assert all(KEY not in r.getMessage() for r in records)
    assert any("***" in r.getMessage() for r in records)


def test_auth_header_values_are_redacted_in_any_rendering() -> None:
    assert redact_auth_headers("Authorization: Bearer abc.def") == "Authorization: Bearer ***"
    assert redact_auth_headers("(b'authorization', b'Key fal-123:456')") == "(b'authorization', b'Key ***')"
    assert redact_auth_headers("{'x-api-key': 'abcd'}") == "{'x-api-key': '***'}"

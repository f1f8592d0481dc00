"""The catalog fetcher (bench/catalog/discovery.py) under the adapters' rules.

JSON answers are read streamed and refused past max_response_bytes, the key is read
(stripped, checked) as the adapters read it, the HTTP loggers keep their policy during
catalog fetches (which happen while a run is planned, before its own logging setup), and
no part of the key reaches an error line or the cached answer. Every server here is on
127.0.0.1, started by the test.
"""

from __future__ import annotations

import json
import logging
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from _provider_harness import KEY, KEY_ENV, huge_json_route, knobs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bench.cli.main import main
from bench.emulators import akiio, replicate
from bench.emulators.serve import running
from bench.http_logging import configure_http_logging

# A key whose URL-encoded form differs from itself (AKI.IO's discovery sends it as ?key=).
ODD_KEY = "sk-test+SECRET/9f8e=7d6c5b4a"


def pull(target: str, provider: str, url: str, cache: Path, *extra: str) -> int:
    return main(
        [
            "catalog",
            "pull",
            target,
            f"catalog.cache_dir={cache}",
            f"providers.{provider}.base_url={url}",
            f"providers.{provider}.api_key_env={KEY_ENV}",
            *extra,
        ]
    )


def key_forms(key: str) -> list[str]:
    return [key, quote(key, safe=""), quote_plus(key), key[:8]]


# ---- answer size cap --------------------------------------------------------------------------
# An Eachlabs-shaped model answer, its schema's description `size` bytes long.
MODEL_HEAD, MODEL_TAIL = b'{"slug": "big", "request_schema": {"description": "', b'"}}'


@pytest.mark.parametrize("declare_length", [True, False])
def test_an_oversized_catalog_answer_is_one_line_without_holding_it(
    declare_length: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    size = 32 * 1024 * 1024  # stands in for a 300 MB answer
    cap = 256 * 1024
    route = huge_json_route("/v1/model", "GET", MODEL_HEAD, MODEL_TAIL, size, declare_length=declare_length)
    with running(Starlette(routes=[route])) as url:
        tracemalloc.start()
        try:
            code = pull(
                "eachlabs:big",
                "eachlabs",
                url,
                tmp_path / "c",
                f"+providers.eachlabs.max_response_bytes={cap}",
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1, err
    assert "eachlabs:big" in err[0] and f"providers.eachlabs.max_response_bytes={cap}" in err[0]
    assert "raise it" in err[0]
    assert peak < size / 4, f"peak {peak} bytes while refusing a {size}-byte answer"
    assert not (tmp_path / "c" / "catalog" / "eachlabs").exists()


# ---- keys -------------------------------------------------------------------------------------
def test_the_catalog_sends_the_key_stripped_like_the_adapters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, f"  {KEY}\r\n")
    app = replicate.create_app(knobs(api_key=KEY))  # accepts exactly KEY, nothing around it
    with running(app) as url:
        code = pull("replicate:google/imagen-4", "replicate", url, tmp_path / "c")
    err = capsys.readouterr().err
    assert code == 0, err
    assert "GET /v1/models/google/imagen-4" in app.state.emu.calls


def test_a_key_with_a_control_character_is_refused_by_the_catalog_without_showing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY[:8] + "\x1b" + KEY[8:])
    app = replicate.create_app(knobs())
    with running(app) as url:
        code = pull("replicate:google/imagen-4", "replicate", url, tmp_path / "c")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "control character" in err[0] and KEY_ENV in err[0]
    assert KEY[:8] not in err[0] and KEY[8:] not in err[0]
    assert app.state.emu.calls == []  # nothing was sent


def error_app(body: str) -> Starlette:
    async def model(request: Request) -> Response:
        return PlainTextResponse(body, status_code=500)

    return Starlette(routes=[Route("/v1/model", model, methods=["GET"])])  # Eachlabs' model API


def test_an_error_answer_never_shows_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    # The key straddles the 200th character, where the error line is cut.
    with running(error_app("upstream failed; request was: " + "x" * 160 + KEY + " end")) as url:
        code = pull("eachlabs:m", "eachlabs", url, tmp_path / "c")
    err = capsys.readouterr().err
    assert code == 2 and "HTTP 500" in err and "***" in err
    assert all(form not in err for form in key_forms(KEY)), err


def echoing_akiio_app() -> Starlette:
    """An AKI.IO endpoint answer that echoes the request, key included."""

    async def endpoint(request: Request) -> Response:
        name = request.path_params["endpoint"]
        echoed = {"key": request.query_params.get("key"), "url": str(request.url)}
        return JSONResponse({"success": True, "endpoint_name": name, "title": name, "request": echoed})

    return Starlette(routes=[Route("/api/endpoints/{endpoint}", endpoint, methods=["GET"])])


def test_a_cached_answer_that_echoes_the_key_keeps_no_form_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, ODD_KEY)
    with running(echoing_akiio_app()) as url:
        assert pull("akiio:flux_schnell", "akiio", url, tmp_path / "c") == 0
    cached = (tmp_path / "c" / "catalog" / "akiio" / "flux_schnell.json").read_text(encoding="utf-8")
    assert json.loads(cached)["raw"]["request"]["key"] == "***"
    assert all(form not in cached for form in key_forms(ODD_KEY)), cached


# ---- HTTP loggers -----------------------------------------------------------------------------
@pytest.fixture
def debug_root(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Root logger at DEBUG, as hydra.verbose=true sets it; the HTTP loggers are reset afterwards."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    configure_http_logging(debug=False, secrets=[])


@pytest.mark.parametrize("http_debug", [False, True])
def test_catalog_fetches_follow_the_http_loggers_policy(
    http_debug: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, debug_root: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(KEY_ENV, ODD_KEY)
    with running(akiio.create_app(knobs(api_key=ODD_KEY))) as url:
        code = pull(
            "akiio:flux_schnell", "akiio", url, tmp_path / "c", f"bench.http_debug={str(http_debug).lower()}"
        )
    assert code == 0
    messages = [r.getMessage() for r in debug_root.records]
    assert all(form not in m for m in messages for form in key_forms(ODD_KEY))
    http = [r for r in debug_root.records if r.name.startswith(("httpx", "httpcore"))]
    if http_debug:  # asked for: the lines come, the key in the URL's query redacted
        assert any(
            r.name == "httpx" and "/api/endpoints/flux_schnell?key=***" in r.getMessage() for r in http
        )
    else:
        assert http == []

"""A failed image download is fetched again, never bought again.

The generation server (scripted, OpenAI-shaped, on 127.0.0.1) counts every paid
generation; the image host (another 127.0.0.1 port) fails in the ways hosted CDNs do:
5xx, a body shorter than its Content-Length, a body that trickles in forever.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scripted_server import Answer, paid_config, scripted, tiny_png

from bench.cli.run import execute_run
from bench.emulators.serve import running
from bench.errors import DownloadError
from bench.providers.base import ProviderSettings
from bench.providers.registry import create_provider

KEY = "sk-test-0123456789abcdef"
PNG = __import__("base64").b64decode(tiny_png())
FAST_RETRIES = {"download_attempts": 3, "download_backoff_s": 0.01, "download_timeout_s": 2.0}


class ImageHost:
    """Raw ASGI, so it can lie about Content-Length and trickle. The first path segment is the mode."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.auth: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.hits[path] += 1
        headers = dict(scope["headers"])
        if b"authorization" in headers:
            self.auth.append(headers[b"authorization"].decode())
        mode = path.split("/")[1]
        if (mode == "flaky" and self.hits[path] <= 2) or mode == "broken":
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        declared = len(PNG) + (100 if mode == "lie" else 0)
        start = {"content-type": "image/png", "content-length": str(declared)}
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(k.encode(), v.encode()) for k, v in start.items()],
            }
        )
        if mode == "trickle":
            for i in range(len(PNG)):  # a byte every 0.2 s: never a read timeout, never done in time
                await send({"type": "http.response.body", "body": PNG[i : i + 1], "more_body": True})
                await asyncio.sleep(0.2)
        body = PNG[:50] if mode == "lie" else PNG
        await send({"type": "http.response.body", "body": body})


@contextmanager
def image_host() -> Iterator[tuple[str, ImageHost]]:
    host = ImageHost()
    with running(host) as url:
        yield url, host


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2I_TEST_PAID_KEY", KEY)


def url_answers(urls: list[str]) -> list[Answer]:
    return [Answer(200, body={"created": 0, "data": [{"url": u}]}) for u in urls]


def run_four(bench_cfg: Any, tmp_path: Path, urls: list[str]) -> tuple[int, int, pd.DataFrame]:
    """4 requests whose answers name these image URLs: (exit code, generations billed, records)."""
    with scripted(url_answers(urls)) as (url, script):
        cfg = paid_config(bench_cfg, url, "prompts.n=4")
        cfg["providers"]["paid"]["options"].update(FAST_RETRIES)
        code = execute_run(cfg, tmp_path / "run")
    return code, len(script.hits), pd.read_parquet(tmp_path / "run" / "records.parquet")


def test_a_flaky_image_url_is_fetched_again_and_the_generation_bought_once(
    bench_cfg: Any, tmp_path: Path
) -> None:
    with image_host() as (host_url, host):
        code, generations, df = run_four(bench_cfg, tmp_path, [f"{host_url}/flaky/{i}" for i in range(4)])
    assert code == 0
    assert generations == 4  # 4 requests -> 4 paid generations
    assert (df.status == "ok").all() and (df.attempts == 1).all()
    assert dict(host.hits) == {f"/flaky/{i}": 3 for i in range(4)}  # 503, 503, then the image
    assert host.auth == []  # the image host never sees the key


@pytest.mark.parametrize("mode", ["broken", "lie", "trickle"])
def test_an_image_that_cannot_be_had_is_a_download_error_with_one_generation(
    mode: str, bench_cfg: Any, tmp_path: Path
) -> None:
    with image_host() as (host_url, host):
        code, generations, df = run_four(bench_cfg, tmp_path, [f"{host_url}/{mode}/{i}" for i in range(4)])
    assert code == 1  # nothing succeeded
    assert generations == 4  # the runner never re-submitted a paid generation
    assert (df.status == "error").all() and (df.error_type == "download").all()
    assert (df.attempts == 1).all()
    assert df.error_message.str.contains("the generation was not sent again").all()
    assert dict(host.hits) == {f"/{mode}/{i}": 3 for i in range(4)}  # download_attempts fetches each


@pytest.mark.parametrize("ref", ["file:///etc/passwd", "ftp://127.0.0.1/x.png", "gopher://x/1"])
def test_a_non_http_image_url_is_refused_without_a_fetch_or_a_retry(
    ref: str, bench_cfg: Any, tmp_path: Path
) -> None:
    code, generations, df = run_four(bench_cfg, tmp_path, [ref] * 4)
    assert code == 1 and generations == 4
    assert (df.error_type == "download").all() and (df.attempts == 1).all()
    assert df.error_message.str.contains("is not http or https").all()


def provider_at(base_url: str, **settings: Any) -> Any:
    return create_provider(
        "openai_compat",
        ProviderSettings(
            name="paid",
            base_url=base_url,
            api_key_env="T2I_TEST_PAID_KEY",
            options={"profile": "openai", **FAST_RETRIES},
            **settings,
        ),
    )


async def fetch(provider: Any, url: str) -> bytes:
    try:
        images, _ = await provider.fetch_images([url], billed_cost_usd=0.04)
        return bytes(images[0].data)
    finally:
        await provider.aclose()


@pytest.mark.parametrize(
    "path_or_url",
    [
        "/ok/1",  # the host itself: 127.0.0.1
        "http://localhost:9/x.png",
        "http://[::1]:9/x.png",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.8/x.png",
        "http://192.168.1.1/x.png",
    ],
)
def test_private_image_hosts_are_refused_when_the_provider_is_public(path_or_url: str) -> None:
    with image_host() as (host_url, host):
        url = host_url + path_or_url if path_or_url.startswith("/") else path_or_url
        provider = provider_at("https://api.openai.com")  # never contacted: the refusal comes first
        with pytest.raises(DownloadError) as info:
            asyncio.run(fetch(provider, url))
    assert "loopback, private or link-local" in info.value.message
    assert "allow_private_urls=true" in info.value.message
    assert info.value.billed_cost_usd == 0.04  # what the answer said the generation cost
    assert sum(host.hits.values()) == 0


def test_private_image_hosts_are_fine_for_a_private_provider_or_when_allowed() -> None:
    with image_host() as (host_url, host):
        assert asyncio.run(fetch(provider_at(host_url), f"{host_url}/ok/1")) == PNG  # an emulator
        allowed = provider_at("https://api.openai.com", allow_private_urls=True)
        assert asyncio.run(fetch(allowed, f"{host_url}/ok/2")) == PNG
    assert host.hits == Counter({"/ok/1": 1, "/ok/2": 1})

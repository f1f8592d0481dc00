"""A scripted OpenAI-images server on 127.0.0.1: each request takes the next scripted answer.

Used by the runner tests, which need exact control of the sequence (429 then 200,
400, 503...) rather than the emulators' random fault injection.
"""

from __future__ import annotations

import base64
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.emulators.serve import running


def tiny_png(colour: tuple[int, int, int] = (200, 30, 30)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: Any = None
    body: Any = None
    delay_s: float = 0.0


OK = Answer(200, body={"created": 0, "data": [{"b64_json": tiny_png(), "revised_prompt": "revised"}]})


@dataclass
class Script:
    answers: list[Answer]
    default: Answer = OK
    hits: list[float] = field(default_factory=list)  # arrival times on `clock`
    clock: Callable[[], float] = time.monotonic  # a test's fake clock, to assert without wall time
    auth_headers: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, auth: str) -> Answer:
        with self.lock:
            self.hits.append(self.clock())
            self.auth_headers.append(auth)
            return self.answers.pop(0) if self.answers else self.default


def app_for(script: Script) -> Starlette:
    async def generate(request: Request) -> JSONResponse:
        await request.json()
        answer = script.next(request.headers.get("authorization", ""))
        if answer.delay_s:
            import asyncio

            await asyncio.sleep(answer.delay_s)
        return JSONResponse(
            answer.body if answer.body is not None else {}, answer.status, headers=answer.headers or {}
        )

    return Starlette(routes=[Route("/v1/images/generations", generate, methods=["POST"])])


@contextmanager
def scripted(answers: list[Answer], default: Answer = OK) -> Iterator[tuple[str, Script]]:
    script = Script(list(answers), default)
    with running(app_for(script)) as url:
        yield url, script


def paid_config(compose: Any, url: str, *extra: str) -> dict[str, Any]:
    """A one-target config against the scripted server (OpenAI profile, dall-e-3)."""
    cfg: dict[str, Any] = compose(
        ["sweep=quick", "prompts.n=1", "runner.progress=off", "metrics=off", *extra]
    )
    cfg["providers"]["paid"] = {
        "adapter": "openai_compat",
        "base_url": url,
        "api_key_env": "T2I_TEST_PAID_KEY",
        "concurrency": 2,
        "timeout_s": 10,
        "options": {"profile": "openai"},
    }
    cfg["targets"] = ["paid:dall-e-3"]
    cfg["runner"].update(backoff_base_s=0.05, backoff_max_s=0.2)
    # The results_dir is the working directory's `results`, so the response cache would be shared
    # by every test using this config; a scripted server on a reused port then replayed another
    # test's answer (a cached refusal where a 401 was scripted). Each test sends its own requests.
    cfg["cache"]["mode"] = "off"
    return cfg


# ---- a scripted chat-completions server (the VLM judge's endpoint) --------------------------------


@dataclass
class ChatScript:
    """`reply(text, index)` gives each request's message content; None: the chat emulator's own
    (measured, valid) answer. Every request is counted in `texts`, at the server."""

    reply: Callable[[str, int], str | None]
    texts: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def chat_app_for(script: ChatScript) -> Starlette:
    import json

    from bench.emulators.chat import _content_for, _parts

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        parsed = _parts(body)
        assert parsed is not None, body
        text, images = parsed
        with script.lock:
            index = len(script.texts)
            script.texts.append(text)
        content = script.reply(text, index)
        if content is None:
            content = json.dumps(_content_for(text, images))
        return JSONResponse(
            {
                "id": f"chatcmpl-{index}",
                "object": "chat.completion",
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 100 + 85 * len(images), "completion_tokens": 10},
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


@contextmanager
def scripted_chat(reply: Callable[[str, int], str | None]) -> Iterator[tuple[str, ChatScript]]:
    script = ChatScript(reply)
    with running(chat_app_for(script)) as url:
        yield url, script

"""Emulator of OpenAI's POST /v1/chat/completions with image input: the judge's test server.

Follows the documented API: Bearer auth, `messages` whose user content mixes
`{"type": "text"}` and `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`
parts, `response_format: {"type": "json_object"}`, an answer in
`choices[0].message.content` (a JSON string) or a refusal in `choices[0].message.refusal`,
`usage` token counts, and OpenAI's error body with Retry-After on 429.

It is a crude stand-in for a VLM (see chat_vision.py): it answers the judge's colour,
count, presence and position questions by measuring the image it was sent, and says so in
its `model` field. Every request is counted in `app.state.emu.calls`, so tests can prove
that a re-score from cache sends none.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.emulators.chat_vision import answer_question, measure_of, questions_for_prompt
from bench.emulators.common import EmulatorState, Knobs, json_body
from bench.emulators.openai_compat import openai_protocol
from bench.emulators.routes import Routes

PATH = "/v1/chat/completions"
EMULATOR_MODEL_NOTE = "chat-emulator (crude stand-in for a VLM: measures colours and blobs)"
IMAGE_TOKENS_LOW = 85  # OpenAI's fixed cost of one image at detail=low
IMAGE_TOKENS_PER_TILE = 170  # plus 85, per 512px tile at detail=high
REFUSAL = "I'm sorry, but I can't help with that request."


def _error(
    status: int, message: str, code: str | None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def _parts(body: Mapping[str, Any]) -> tuple[str, list[tuple[bytes, str]]] | None:
    """(all text of the user messages, [(image bytes, detail)]), or None if the messages are malformed."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    texts: list[str] = []
    images: list[tuple[bytes, str]] = []
    for message in messages:
        if not isinstance(message, Mapping) or "role" not in message:
            return None
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list):
            return None
        for part in content:
            if not isinstance(part, Mapping):
                return None
            if part.get("type") == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") == "image_url" and isinstance(part.get("image_url"), Mapping):
                url = str(part["image_url"].get("url", ""))
                match = re.match(r"data:image/[a-z+]+;base64,(.*)$", url, re.S)
                if not match:
                    raise ValueError("only data: URIs are served by this emulator")
                images.append(
                    (
                        base64.b64decode(match.group(1), validate=True),
                        str(part["image_url"].get("detail", "auto")),
                    )
                )
            else:
                return None
    return "\n".join(texts), images


def _image_tokens(png: bytes, detail: str) -> int:
    if detail == "low":
        return IMAGE_TOKENS_LOW
    import io

    from PIL import Image

    w, h = Image.open(io.BytesIO(png)).size
    return IMAGE_TOKENS_LOW + IMAGE_TOKENS_PER_TILE * math.ceil(w / 512) * math.ceil(h / 512)


def _after(label: str, text: str) -> str:
    match = re.search(rf"^{label}:\s*(.+)$", text, re.M)
    return match.group(1).strip() if match else ""


def _content_for(text: str, images: list[tuple[bytes, str]]) -> dict[str, Any]:
    """The JSON answer for one of the judge's three tasks, measured on the (first) image."""
    if "Question:" in text:
        if not images:
            return {"answer": "no", "note": "no image was sent"}
        measured = answer_question(measure_of(images[0][0]), _after("Question", text))
        return {"answer": "yes" if measured.answer else "no"}
    prompt = _after("Prompt", text)
    if "yes/no questions" in text:
        return {"questions": questions_for_prompt(prompt)}
    if "Rate how well" in text:
        questions = questions_for_prompt(prompt)
        if not images or not questions:
            return {"score": 1, "reason": "nothing this emulator can measure"}
        measure = measure_of(images[0][0])
        held = sum(bool(answer_question(measure, q).answer) for q in questions)
        score = 1 + round(9 * held / len(questions))
        return {
            "score": score,
            "reason": f"{held} of {len(questions)} measured checks hold (colour shares, blob counts)",
        }
    return {"note": "not a t2i-bench judge request"}


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())
    routes = Routes(emu, openai_protocol("chat", _error))

    async def completions(request: Request) -> Response:
        body = await json_body(request)
        if body is None or not isinstance(body.get("model"), str):
            return _error(400, "you must provide a model parameter", "invalid_request")
        try:
            parsed = _parts(body)
        except (ValueError, binascii.Error) as exc:
            return _error(400, f"Invalid image: {exc}", "invalid_image_url")
        if parsed is None:
            return _error(400, "Invalid 'messages': expected role/content objects", "invalid_value")
        text, images = parsed
        job = emu.new_job(text, width=1, height=1)  # one completion; carries the injected fault
        if (failure := routes.fault_answer(job)) is not None:
            return failure
        await emu.wait_sync(job)
        if job.fault == "malformed_json":
            return Response(b'{"choices": [{"mess', media_type="application/json")
        refused = job.refused
        content = None if refused else json.dumps(_content_for(text, images))
        prompt_tokens = max(1, len(text) // 4) + sum(_image_tokens(png, d) for png, d in images)
        completion_tokens = 0 if content is None else max(1, len(content) // 4)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": f"{body['model']} [{EMULATOR_MODEL_NOTE}]",
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": content if not refused else None,
                            "refusal": REFUSAL if refused else None,
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
                "system_fingerprint": "fp_t2i_bench_emulator",
            },
            headers={"x-request-id": f"req_{job.id}"},
        )

    return routes.app([routes.keyed(PATH, completions, "POST")])

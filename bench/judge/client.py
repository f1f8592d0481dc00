"""One judge request = one chat completion with an image, through the runner's machinery.

Concurrency and requests per minute go through bench.limits.ProviderLane, spend through
bench.limits.Budget (a cap the judge never passes), retries through the runner's
backoff (Retry-After honoured), and HTTP failures become the same typed errors the
image adapters raise. The key is sent only as a Bearer header and redacted from every
message.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.config import RunnerSettings
from bench.errors import (
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    RefusedError,
    TransportError,
)
from bench.judge.config import JudgeConfig
from bench.limits import Budget, CostKey, ProviderLane
from bench.providers.base import error_from_status, parse_retry_after
from bench.providers.observe import EMULATOR_HEADER
from bench.redact import redact
from bench.runner import backoff_delay_s

EXCERPT_CHARS = 300


@dataclass(frozen=True)
class ChatAnswer:
    content: dict[str, Any]
    answered_by: str  # the model name the endpoint reports
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float  # NaN when neither reported nor priced
    cost_source: str  # reported | price_table | unknown
    attempts: int


@dataclass
class ClientStats:
    requests: int = 0  # HTTP requests sent (retries included)
    cost_usd: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)


def png_data_uri(png: bytes, max_side: int) -> str:
    """The image as a PNG data URI, downscaled (never upscaled) so its longer side is <= max_side."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as opened:
        if max(opened.size) > max_side or opened.format != "PNG":
            image = opened.convert("RGB")
            image.thumbnail((max_side, max_side))
            out = io.BytesIO()
            image.save(out, format="PNG")
            png = out.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode()


class ChatJudgeClient:
    def __init__(self, cfg: JudgeConfig, budget: Budget, client: httpx.AsyncClient) -> None:
        self.cfg = cfg
        self.budget = budget
        self.client = client
        self.lane = ProviderLane(cfg.concurrency, cfg.requests_per_minute)
        self.retry = RunnerSettings(
            max_attempts=cfg.max_attempts, backoff_base_s=cfg.backoff_base_s, backoff_max_s=cfg.backoff_max_s
        )
        self.stats = ClientStats()
        self._key = cfg.api_key() or ""

    def _safe(self, text: str) -> str:
        return redact(text, [self._key])

    def _body(self, text: str, image_uri: str | None) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if image_uri is not None:
            content.append(
                {"type": "image_url", "image_url": {"url": image_uri, "detail": self.cfg.image_detail}}
            )
        return {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": content}],
            "temperature": self.cfg.temperature,
            "response_format": {"type": "json_object"},
            "max_tokens": 400,
        }

    async def ask(self, text: str, image_uri: str | None) -> ChatAnswer:
        """Send with retries; raises the last typed ProviderError, or BudgetStop when the cap is reached."""
        body = self._body(text, image_uri)
        attempt = 0
        while True:
            attempt += 1
            target = self.cfg.target or ""
            key = CostKey(target, "{}", "{}", None)  # one price per judge call, whatever the image
            # Unknown until the first answer's cost is known (probed one at a time), then the latest.
            estimate = self.budget.estimate(key, None)
            ok, why = self.budget.try_reserve(target, estimate)
            while not ok and why == "wait":  # another request is probing the cost per request
                await asyncio.sleep(0.01)
                estimate = self.budget.estimate(key, None)
                ok, why = self.budget.try_reserve(target, estimate)
            if not ok:
                raise BudgetStop(why)
            answer: ChatAnswer | None = None
            try:
                async with self.lane.slot():
                    await self.lane.pace()
                    answer = await self._once(body, attempt)
            except ProviderError as exc:
                self.stats.failures[exc.error_type] = self.stats.failures.get(exc.error_type, 0) + 1
                if not exc.retryable or attempt >= self.cfg.max_attempts:
                    raise
                await asyncio.sleep(backoff_delay_s(attempt, self.retry, exc.retry_after_s))
            finally:
                if answer is not None:
                    self.budget.charge(key, estimate, answer.cost_usd, reported=True)
                else:
                    self.budget.release(target, estimate)
            if answer is not None:
                if math.isfinite(answer.cost_usd):
                    self.stats.cost_usd += answer.cost_usd
                return answer

    async def _once(self, body: dict[str, Any], attempt: int) -> ChatAnswer:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        self.stats.requests += 1
        url = self.cfg.chat_url()
        try:
            response = await self.client.post(url, json=body, headers=headers, timeout=self.cfg.timeout_s)
        except httpx.TimeoutException as exc:
            raise ProviderTimeoutError(f"judge: POST {url} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransportError(f"judge: POST {url} failed: {type(exc).__name__}") from None
        if response.status_code >= 400:
            message = self._safe(response.text[:EXCERPT_CHARS])
            raise error_from_status(
                response.status_code,
                f"judge: HTTP {response.status_code}: {message}",
                parse_retry_after(response.headers.get("retry-after")),
            )
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise MalformedResponseError(
                f"judge: expected a chat.completion with choices[0].message; got: {self._safe(response.text[:EXCERPT_CHARS])}",
                http_status=response.status_code,
            ) from None
        usage = data.get("usage") or {}
        prompt_tokens = usage.get("prompt_tokens")
        completion_tokens = usage.get("completion_tokens")
        reported = usage.get("cost")  # OpenRouter / APIpie style: the provider states the charge
        if isinstance(reported, int | float) and not isinstance(reported, bool):
            cost, source = float(reported), "reported"
        elif self.cfg.price is not None:
            cost = self.cfg.price.cost_usd(prompt_tokens, completion_tokens)
            source = "price_table" if math.isfinite(cost) else "unknown"
        else:
            cost, source = math.nan, "unknown"
        if message.get("refusal") or choice.get("finish_reason") == "content_filter":
            # A refusal is billed like an answer; record what it cost, never retry it.
            if math.isfinite(cost):
                self.stats.cost_usd += cost
            raise RefusedError(
                f"judge refused: {self._safe(str(message.get('refusal') or 'content_filter'))[:EXCERPT_CHARS]}"
            )
        try:
            content = json.loads(message.get("content") or "")
            if not isinstance(content, dict):
                raise ValueError("not an object")
        except ValueError:
            raise MalformedResponseError(
                f"judge: expected a JSON object in message.content; got: {self._safe(str(message.get('content')))[:EXCERPT_CHARS]}"
            ) from None
        answered_by = str(data.get("model") or self.cfg.model)
        if response.headers.get(EMULATOR_HEADER):
            answered_by += " (emulated)"
        return ChatAnswer(
            content=content,
            answered_by=answered_by,
            prompt_tokens=float(prompt_tokens) if isinstance(prompt_tokens, int | float) else math.nan,
            completion_tokens=float(completion_tokens)
            if isinstance(completion_tokens, int | float)
            else math.nan,
            cost_usd=cost,
            cost_source=source,
            attempts=attempt,
        )


class BudgetStop(Exception):
    """The judge's spend cap is reached: no more requests are sent."""

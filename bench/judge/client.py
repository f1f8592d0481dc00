"""One judge request = one chat completion with an image, through the runner's machinery.

Concurrency and requests per minute go through bench.limits.ProviderLane, spend through
bench.limits.Budget, retries through the runner's backoff (Retry-After honoured), and
HTTP failures become the same typed errors the image adapters raise. The key is sent
only as a Bearer header and redacted from every message.

Money: every call reserves its cost before it is sent, against the run folder's
max_cost_usd (generation and earlier judge passes already counted) and against
metrics.judge.max_cost_usd (this pass). With a price entry the reservation is an upper
bound: input tokens by OpenAI's counting rule (or the most this endpoint has reported for
the same task, if more) and output at the call's max_tokens. Every answer the endpoint
billed (readable, unreadable or a refusal) is charged and written to the run folder's
judge journal (bench/judge/journal.py) before it is used.
"""

from __future__ import annotations

import asyncio
import base64
import io
import math
from collections.abc import Callable
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
from bench.judge.answers import READERS, UnreadableAnswerError
from bench.judge.config import JudgeConfig
from bench.limits import Budget, CostKey, ProviderLane
from bench.providers.base import error_from_status, parse_retry_after
from bench.providers.observe import EMULATOR_HEADER
from bench.redact import redact
from bench.runner import backoff_delay_s

EXCERPT_CHARS = 300


# Output tokens each task may use (sent as max_tokens, and the most a call is reserved for):
# a yes/no JSON is ~6 tokens, a score with a one-line reason ~40, eight questions ~120.
MAX_TOKENS = {"questions": 400, "answer": 50, "rubric": 200}
IMAGE_TOKENS_LOW = 85  # OpenAI: an image at detail=low
IMAGE_TOKENS_PER_TILE = 170  # OpenAI: plus 85, per 512 px tile at detail=high
CHARS_PER_TOKEN = 3  # fewer than English's ~4: the text estimate errs on the side of more tokens
MESSAGE_OVERHEAD_TOKENS = 16


@dataclass(frozen=True)
class ChatAnswer:
    content: dict[str, Any]  # normalised by bench/judge/answers.py
    answered_by: str  # the model name the endpoint reports (+ " (emulated)" from the chat emulator)
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float  # NaN when neither reported nor priced
    cost_source: str  # reported | price_table | unknown
    attempts: int


@dataclass(frozen=True)
class _Billed:
    """An HTTP 200 chat completion: billed whatever its content says."""

    raw: str | None
    refusal: str
    answered_by: str
    prompt_tokens: float
    completion_tokens: float
    cost_usd: float
    cost_source: str


@dataclass
class ClientStats:
    requests: int = 0  # HTTP requests sent (retries included)
    cost_usd: float = 0.0  # what the billed calls of this pass cost (known costs)
    failures: dict[str, int] = field(default_factory=dict)  # per attempt, by error type


def png_data_uri(png: bytes, max_side: int) -> tuple[str, tuple[int, int]]:
    """(the image as a PNG data URI, its size), downscaled (never upscaled) so its longer side is <= max_side."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as opened:
        size = opened.size
        if max(opened.size) > max_side or opened.format != "PNG":
            image = opened.convert("RGB")
            image.thumbnail((max_side, max_side))
            size = image.size
            out = io.BytesIO()
            image.save(out, format="PNG")
            png = out.getvalue()
    return "data:image/png;base64," + base64.b64encode(png).decode(), size


def image_tokens(size: tuple[int, int] | None, detail: str) -> int:
    """Input tokens of one image by OpenAI's published rule (low: 85; high/auto: 85 + 170 per tile)."""
    if size is None:
        return 0
    if detail == "low":
        return IMAGE_TOKENS_LOW
    w, h = (float(v) for v in size)
    if max(w, h) > 2048:  # fit in 2048 x 2048, then the shorter side to 768
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return IMAGE_TOKENS_LOW + IMAGE_TOKENS_PER_TILE * math.ceil(w / 512) * math.ceil(h / 512)


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS


class JudgeBudget:
    """The two caps a judge call must fit: the run folder's (max_cost_usd, counting generation and
    earlier judge passes) and this pass's (metrics.judge.max_cost_usd). Either may be None."""

    def __init__(
        self, folder_cap_usd: float | None, folder_spent_usd: float, pass_cap_usd: float | None
    ) -> None:
        self.folder = Budget(folder_cap_usd, folder_spent_usd)
        self.own = Budget(pass_cap_usd)

    def try_reserve(self, target: str, estimate: float | None) -> tuple[bool, str]:
        for name, budget in (("metrics.judge.max_cost_usd", self.own), ("max_cost_usd", self.folder)):
            if budget.enabled and budget.remaining_usd <= 0:
                # Nothing left: not even a probe of an unknown cost goes out.
                self.release_all(target, estimate, upto=budget)
                return False, f"{name}={budget.max_cost_usd:g} reached (${budget.spent_usd:.4f} spent)"
            ok, why = budget.try_reserve(target, estimate)
            if not ok:
                self.release_all(target, estimate, upto=budget)
                if why != "wait" and name.startswith("metrics.judge"):
                    why = "metrics.judge." + why
                elif why != "wait":
                    why += " (generation and judge calls together)"
                return False, why
        return True, ""

    def release_all(self, target: str, estimate: float | None, upto: Budget | None = None) -> None:
        for budget in (self.own, self.folder):
            if budget is upto:
                return
            budget.release(target, estimate)

    def charge(self, key: CostKey, estimate: float | None, actual_usd: float) -> None:
        for budget in (self.own, self.folder):
            budget.charge(key, estimate, actual_usd, reported=False)


class ChatJudgeClient:
    def __init__(
        self,
        cfg: JudgeConfig,
        budget: JudgeBudget,
        client: httpx.AsyncClient,
        on_billed: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.budget = budget
        self.client = client
        self.on_billed = on_billed  # the run folder's judge journal: called before the answer is used
        self.lane = ProviderLane(cfg.concurrency, cfg.requests_per_minute)
        self.retry = RunnerSettings(
            max_attempts=cfg.max_attempts, backoff_base_s=cfg.backoff_base_s, backoff_max_s=cfg.backoff_max_s
        )
        self.stats = ClientStats()
        self._key = cfg.api_key() or ""
        self._endpoint = cfg.endpoint
        self._seen_prompt_tokens: dict[str, float] = {}  # task -> most input tokens reported
        self._seen_cost: dict[str, float] = {}  # task -> largest reported cost

    def _safe(self, text: str) -> str:
        return redact(text, [self._key])

    def _body(self, task: str, text: str, image_uri: str | None) -> dict[str, Any]:
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
            "max_tokens": MAX_TOKENS[task],
        }

    def estimate_usd(self, task: str, text: str, image_size: tuple[int, int] | None) -> float | None:
        """What to reserve for one call: an upper bound with a price entry, else the largest cost the
        endpoint reported for this task (or any task), else None (probed one call at a time)."""
        price = self.cfg.price
        if price is not None:
            tokens = max(
                float(text_tokens(text) + image_tokens(image_size, self.cfg.image_detail)),
                self._seen_prompt_tokens.get(task, 0.0),
            )
            cost = price.cost_usd(tokens, MAX_TOKENS[task])
            seen = self._seen_cost.get(task, 0.0)
            return max(cost, seen)
        if task in self._seen_cost:
            return self._seen_cost[task]
        return max(self._seen_cost.values()) if self._seen_cost else None

    def _learn(self, task: str, billed: _Billed) -> None:
        if math.isfinite(billed.prompt_tokens):
            self._seen_prompt_tokens[task] = max(
                self._seen_prompt_tokens.get(task, 0.0), billed.prompt_tokens
            )
        if math.isfinite(billed.cost_usd):
            self._seen_cost[task] = max(self._seen_cost.get(task, 0.0), billed.cost_usd)

    async def _reserve(self, task: str, text: str, image_size: tuple[int, int] | None) -> float | None:
        target = self.cfg.target or ""
        while True:
            estimate = self.estimate_usd(task, text, image_size)
            ok, why = self.budget.try_reserve(target, estimate)
            if ok:
                return estimate
            if why != "wait":
                raise BudgetStop(why)
            await asyncio.sleep(0.01)  # in-flight calls may cost less than reserved, or fail unbilled

    async def ask(
        self, task: str, text: str, image_uri: str | None, image_size: tuple[int, int] | None = None
    ) -> ChatAnswer:
        """Send with retries; raises the last typed ProviderError, or BudgetStop when a cap is reached.

        An unreadable answer (bench/judge/answers.py) is billed, charged and retried like a
        server error; after the last attempt it raises UnreadableAnswerError.
        """
        body = self._body(task, text, image_uri)
        read = READERS[task]
        target = self.cfg.target or ""
        key = CostKey(target, task, task, None)
        attempt = 0
        while True:
            attempt += 1
            estimate = await self._reserve(task, text, image_size)
            billed: _Billed | None = None
            try:
                async with self.lane.slot():
                    await self.lane.pace()
                    billed = await self._once(body)
            except ProviderError as exc:
                self._failed(exc)
                if not exc.retryable or attempt >= self.cfg.max_attempts:
                    raise
                await asyncio.sleep(backoff_delay_s(attempt, self.retry, exc.retry_after_s))
                continue
            finally:
                if billed is None:
                    self.budget.release_all(target, estimate)
            self._settle(task, key, estimate, billed)
            try:
                if billed.refusal:
                    # A refusal is billed like an answer; it is recorded, never retried.
                    raise RefusedError(f"judge refused: {self._safe(billed.refusal)[:EXCERPT_CHARS]}")
                content = read(billed.raw)
            except UnreadableAnswerError as exc:
                self._failed(exc)
                if attempt >= self.cfg.max_attempts:
                    raise UnreadableAnswerError(self._safe(exc.message)) from None
                await asyncio.sleep(backoff_delay_s(attempt, self.retry, None))
                continue
            return ChatAnswer(
                content=content,
                answered_by=billed.answered_by,
                prompt_tokens=billed.prompt_tokens,
                completion_tokens=billed.completion_tokens,
                cost_usd=billed.cost_usd,
                cost_source=billed.cost_source,
                attempts=attempt,
            )

    def _failed(self, exc: ProviderError) -> None:
        self.stats.failures[exc.error_type] = self.stats.failures.get(exc.error_type, 0) + 1

    def _settle(self, task: str, key: CostKey, estimate: float | None, billed: _Billed) -> None:
        """Charge a billed call to both caps and journal it, before its answer is read or used."""
        self.budget.charge(key, estimate, billed.cost_usd)
        self._learn(task, billed)
        if math.isfinite(billed.cost_usd):
            self.stats.cost_usd += billed.cost_usd
        if self.on_billed is not None:
            self.on_billed(
                {
                    "target": key.target,
                    "endpoint": self._endpoint,
                    "task": task,
                    "status": "refused" if billed.refusal else "answered",
                    "cost_usd": billed.cost_usd,
                    "cost_source": billed.cost_source,
                    "reserved_usd": estimate,
                    "prompt_tokens": None if math.isnan(billed.prompt_tokens) else billed.prompt_tokens,
                    "completion_tokens": None
                    if math.isnan(billed.completion_tokens)
                    else billed.completion_tokens,
                }
            )

    async def _once(self, body: dict[str, Any]) -> _Billed:
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
            if not isinstance(message, dict):
                raise TypeError("message is not an object")
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
        refusal = ""
        if message.get("refusal") or choice.get("finish_reason") == "content_filter":
            refusal = str(message.get("refusal") or "content_filter")
        answered_by = str(data.get("model") or self.cfg.model)
        if response.headers.get(EMULATOR_HEADER):
            answered_by += EMULATED_SUFFIX
        content = message.get("content")

        def number(v: Any) -> float:
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan

        return _Billed(
            raw=content if isinstance(content, str) else None,
            refusal=refusal,
            answered_by=answered_by,
            prompt_tokens=number(prompt_tokens),
            completion_tokens=number(completion_tokens),
            cost_usd=cost,
            cost_source=source,
        )


EMULATED_SUFFIX = " (emulated)"


class BudgetStop(Exception):
    """The judge's spend cap is reached: no more requests are sent."""

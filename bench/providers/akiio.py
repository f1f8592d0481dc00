"""AKI.IO (AIME API server protocol): POST /api/call/{endpoint}, optional /api/progress polling.

The key travels in the JSON body, not a header, so no request body may ever
appear in a message. Errors are {"success": false, "error": "msg" | ["msg", ...]}
and some arrive with HTTP 200, so every answer is checked for success:false.
Images are always data URIs. AKI.IO reports compute and pending durations but no cost.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bench.catalog.entries import renamed
from bench.catalog.shipped import shipped_specs
from bench.catalog.spec import ModelSpec
from bench.errors import (
    AuthError,
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.providers.base import GenerationResult, Timings
from bench.providers.http_common import HttpProvider, dig, looks_like_refusal, nan_if_none, strip_images
from bench.request import ImageRequest

DEFAULT_ENDPOINTS = ("z_image_turbo",)
RUNNING_STATES = frozenset({"queued", "processing"})
PROGRESS_POLL_S = 0.3  # the aki-io client's interval
# The AIME API server answers HTTP 400 "Job queue reached max length {n}!" when its queue is
# full, and 400 "Endpoint disabled!" while an endpoint is switched off: both pass, so both are
# retried, not reported as invalid requests (aime-api-server api_server/api_endpoint.py).
QUEUE_FULL = re.compile(r"queue (?:is )?full|job queue reached max length", re.I)
ENDPOINT_DISABLED = re.compile(r"endpoint disabled", re.I)
BAD_KEY = re.compile(r"api key|invalid key|\bkey\b.*(?:invalid|unknown|missing)", re.I)


class AkiioProvider(HttpProvider):
    default_base_url = "https://aki.io"
    catalog_name = "akiio"

    def models(self) -> Sequence[ModelSpec]:
        # Every AKI.IO image endpoint takes the same standard parameters (seed 003): the
        # shipped snapshot holds them once, under its first endpoint.
        endpoints = [str(e) for e in self.option("endpoints", list(DEFAULT_ENDPOINTS))]
        known = {s.model: s for s in shipped_specs("akiio", self.name)}
        template = next(iter(known.values()))
        return [known.get(e) or renamed(template, e) for e in endpoints]

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        started = time.perf_counter()
        wait = bool(self.option("wait_for_result", True))
        body = {**payload, "key": self.key, "wait_for_result": wait}
        response, answer = await self._call(f"{self.base_url}/api/call/{spec.model}", body, "call answer")
        job_id = str(answer.get("job_id") or "")
        if not wait:
            if not job_id:
                raise self.malformed("a job_id for wait_for_result=false", answer, response)
            answer = await self._follow(spec.model, job_id, started)
        return await self._finish(answer, job_id)

    async def _call(
        self, url: str, body: Mapping[str, Any], what: str
    ) -> tuple[httpx.Response, Mapping[str, Any]]:
        response, answer = await self.call_json("POST", url, what=what, json_body=body)
        if not isinstance(answer, Mapping):
            raise self.malformed(f"a JSON object ({what})", answer, response)
        if answer.get("success") is not True:  # errors may come with HTTP 200
            raise self.error_for(response, answer)
        return response, answer

    async def _follow(self, endpoint: str, job_id: str, started: float) -> Mapping[str, Any]:
        url = f"{self.base_url}/api/progress/{endpoint}"

        async def fetch() -> Mapping[str, Any]:
            _, progress = await self._call(url, {"key": self.key, "job_id": job_id}, "progress answer")
            return progress

        async def cancel() -> None:
            await self.send(
                "POST", url, json_body={"key": self.key, "job_id": job_id, "cancel": True}, timeout_s=5.0
            )

        interval = min(self.settings.poll_interval_s, PROGRESS_POLL_S)
        progress = await self.follow_job(
            self.poll_until(fetch, lambda p: p.get("job_state") not in RUNNING_STATES, interval_s=interval),
            job=job_id,
            deadline=self.deadline_from(started),
            cancel=cancel,
        )
        state = progress.get("job_state")
        if state == "lapsed":
            raise ProviderTimeoutError(
                f"{self.name}: job {job_id} lapsed in the queue", provider_request_id=job_id
            )
        if state != "done":
            raise ServerError(
                f"{self.name}: job {job_id} ended as {self.excerpt(state)}", provider_request_id=job_id
            )
        result = progress.get("job_result")
        if not isinstance(result, Mapping):
            raise self.malformed("job_result with the final answer once job_state is done", progress)
        if result.get("success") is False:
            raise self.classify(self.error_message(result), None, job_id)
        return result

    async def _finish(self, answer: Mapping[str, Any], job_id: str) -> GenerationResult:
        refs = answer.get("images")
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise self.malformed("images as a list of data URIs", answer)
        images, download_s = await self.fetch_images(refs)
        return GenerationResult(
            images=images,
            timings=Timings(
                queue_s=nan_if_none(answer.get("pending_duration")),
                inference_s=nan_if_none(answer.get("compute_duration")),
                download_s=download_s,
            ),
            seed_used=answer.get("seed") if isinstance(answer.get("seed"), int) else None,
            provider_request_id=job_id or None,
            metadata=strip_images({k: v for k, v in answer.items() if k not in ("images", "auth", "key")}),
        )

    # ---- errors --------------------------------------------------------------------
    def error_message(self, body: Any) -> str:
        error = dig(body, "error")
        if isinstance(error, list):
            error = "; ".join(str(e) for e in error)
        return self.excerpt(error if isinstance(error, str) and error else body)

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        return self.classify(self.error_message(body), response.status_code, None)

    def classify(self, message: str, status: int | None, job_id: str | None) -> ProviderError:
        text = f"{self.name}: " + (f"HTTP {status}: " if status else "") + message
        kw: dict[str, Any] = {"http_status": status, "provider_request_id": job_id}
        if status == 401 or BAD_KEY.search(message):
            return AuthError(text, **kw)
        if looks_like_refusal(message):
            return RefusedError(text, **kw)
        if QUEUE_FULL.search(message):
            # AKI.IO's way of saying "too many requests": no Retry-After is sent.
            return RateLimitedError(text, **kw)
        if "lapsed" in message.lower():
            return ProviderTimeoutError(text, **kw)
        if ENDPOINT_DISABLED.search(message):
            return ServerError(text, **kw)
        if status is not None and (status >= 500 or status == 404):
            return ServerError(text, **kw)  # 404: "endpoint disabled or no free queue slot"
        return InvalidRequestError(text, **kw)

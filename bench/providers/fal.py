"""fal.ai queue API: submit, poll status, fetch the result, cancel (docs/provider-protocols.md §7).

Auth is `Authorization: Key <FAL_KEY>`. The submit answer names the status,
response and cancel URLs; when an answer lacks them they are rebuilt the way fal
documents them, on the app path without the endpoint's subpath
(fal-ai/flux/schnell -> fal-ai/flux/requests/{id}/status).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bench.catalog.shipped import shipped_specs
from bench.catalog.spec import ModelSpec
from bench.errors import (
    InvalidRequestError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
    RefusedError,
    ServerError,
)
from bench.providers.base import GenerationResult, Timings
from bench.providers.http_common import HttpProvider, all_flagged_nsfw, dig, nan_if_none, strip_images
from bench.request import ImageRequest

TIMEOUT_ERROR_TYPES = frozenset({"request_timeout", "startup_timeout"})
REFUSAL_ERROR_TYPES = frozenset({"content_policy_violation"})


def app_path(model_id: str) -> str:
    """owner/app of an endpoint id: the queue's follow-up URLs live there."""
    return "/".join(model_id.split("/")[:2])


class FalProvider(HttpProvider):
    default_base_url = "https://queue.fal.run"
    catalog_name = "fal"

    def models(self) -> Sequence[ModelSpec]:
        return shipped_specs("fal", self.name)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self.key}"}

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        started = time.perf_counter()
        headers = self._headers()
        _, submitted = await self.call_json(
            "POST",
            f"{self.base_url}/{spec.model}",
            what="queue submission",
            json_body=payload,
            headers=headers,
        )
        request_id = dig(submitted, "request_id")
        if not isinstance(request_id, str) or not request_id:
            raise self.malformed("a submission answer with request_id", submitted)
        follow = f"{self.base_url}/{app_path(spec.model)}/requests/{quote(request_id, safe='')}"
        # These calls carry the key: an answer's URLs are used only if they point at fal (or base_url).
        status_url = self.follow_up_url(dig(submitted, "status_url"), f"{follow}/status", "status_url")
        response_url = self.follow_up_url(dig(submitted, "response_url"), follow, "response_url")
        cancel_url = self.follow_up_url(dig(submitted, "cancel_url"), f"{follow}/cancel", "cancel_url")

        deadline = self.deadline_from(started)

        async def fetch_status() -> Mapping[str, Any]:
            response, status = await self._follow_up(status_url, "queue status", headers, deadline)
            if not isinstance(status, Mapping) or status.get("status") not in (
                "IN_QUEUE",
                "IN_PROGRESS",
                "COMPLETED",
            ):
                raise self.malformed("a status of IN_QUEUE, IN_PROGRESS or COMPLETED", status, response)
            return status

        async def cancel() -> None:
            await self.send("PUT", cancel_url, headers=headers, timeout_s=5.0)

        status = await self.follow_job(
            self.poll_until(fetch_status, lambda s: s.get("status") == "COMPLETED"),
            job=request_id,
            deadline=deadline,
            cancel=cancel,
        )
        if status.get("error"):
            raise self._run_error(status, request_id)
        response, result = await self._follow_up(response_url, "result", headers, deadline)
        if not isinstance(result, Mapping):
            raise self.malformed("a result object with images[]", result, response)
        if all_flagged_nsfw(result):
            raise RefusedError(
                f"{self.name}: the safety checker flagged every image (has_nsfw_concepts)",
                provider_request_id=request_id,
            )
        images = result.get("images")
        refs = (
            [str(i["url"]) for i in images if isinstance(i, Mapping) and i.get("url")]
            if isinstance(images, list)
            else []
        )
        if not refs:
            raise self.malformed("images[] with url (or data URI with sync_mode)", result, response)
        fetched, download_s = await self.fetch_images(refs)
        inference_s = nan_if_none(dig(status, "metrics", "inference_time"))
        if inference_s != inference_s:
            inference_s = nan_if_none(dig(result, "timings", "inference"))
        return GenerationResult(
            images=fetched,
            # fal reports inference time only; time spent queued is not published.
            timings=Timings(inference_s=inference_s, download_s=download_s),
            seed_used=result.get("seed") if isinstance(result.get("seed"), int) else None,
            http_status=response.status_code,
            provider_request_id=request_id,
            metadata=strip_images({k: v for k, v in result.items() if k != "images"}),
        )

    async def _follow_up(
        self, url: str, what: str, headers: Mapping[str, str], deadline: float
    ) -> tuple[httpx.Response, Any]:
        """GET on a job that exists. fal may answer a status or result call with 429 or 5xx
        (X-Fal-Error-Type); that is asked again after Retry-After (or the poll interval) until the
        deadline, because letting the runner retry would submit, and pay for, the job twice."""
        while True:
            try:
                return await self.call_json("GET", url, what=what, headers=dict(headers))
            except (RateLimitedError, ServerError) as exc:
                wait = exc.retry_after_s if exc.retry_after_s is not None else self.settings.poll_interval_s
                if time.perf_counter() + wait >= deadline:
                    raise
                await asyncio.sleep(wait)

    def _run_error(self, status: Mapping[str, Any], request_id: str) -> ProviderError:
        error_type = str(status.get("error_type") or "")
        text = f"{self.name}: request {request_id} failed: {self.excerpt(status.get('error'))}" + (
            f" ({error_type})" if error_type else ""
        )
        if error_type in REFUSAL_ERROR_TYPES:
            return RefusedError(text, provider_request_id=request_id)
        if error_type in TIMEOUT_ERROR_TYPES:
            return ProviderTimeoutError(text, provider_request_id=request_id)
        return ServerError(text, provider_request_id=request_id)

    # ---- errors --------------------------------------------------------------------
    def error_message(self, body: Any) -> str:
        detail = dig(body, "detail")
        if isinstance(detail, list):  # model errors: [{loc, msg, type}]
            parts = [
                f"{'.'.join(str(x) for x in item.get('loc') or [])}: {item.get('msg')}"
                if isinstance(item, Mapping)
                else str(item)
                for item in detail
            ]
            return self.excerpt("; ".join(parts))
        return self.excerpt(detail if isinstance(detail, str) else body)

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        message = self.error_message(body)
        detail = dig(body, "detail")
        types = (
            {str(item.get("type")) for item in detail if isinstance(item, Mapping)}
            if isinstance(detail, list)
            else set()
        )
        error_type = str(response.headers.get("x-fal-error-type") or dig(body, "error_type") or "")
        text = f"{self.name}: HTTP {response.status_code}: {message}" + (
            f" ({error_type})" if error_type else ""
        )
        if types & REFUSAL_ERROR_TYPES or error_type in REFUSAL_ERROR_TYPES:
            return RefusedError(text, http_status=response.status_code)
        if response.status_code == 422:
            return InvalidRequestError(text, http_status=response.status_code)
        if error_type in TIMEOUT_ERROR_TYPES:
            return ProviderTimeoutError(text, http_status=response.status_code)
        return self.status_error(response, message + (f" ({error_type})" if error_type else ""))

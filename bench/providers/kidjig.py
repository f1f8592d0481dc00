"""KidJig image API: generate, then status, then result, with X-Api-Key (docs/provider-protocols.md §5).

KidJig does not publish its image response bodies. What is known is the
envelope its other APIs use, {"success", "message", "data": {...}}, and its error
body {"error": {"code", "message"}}. This adapter reads the envelope and the most
likely names inside `data` (request_id, status, images/image_url, cost), and when
a field is missing fails with a MalformedResponseError naming what it expected
and showing what came, so the first real answer tells us the true names.
Parameter names are likewise inferred (fal-style, as KidJig resells fal models).
KidJig documents no cancel call, so a timed-out job cannot be cancelled.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bench.catalog.entries import renamed
from bench.catalog.shipped import shipped_specs
from bench.catalog.spec import ModelSpec
from bench.errors import AuthError, ProviderError, RateLimitedError, RefusedError, ServerError
from bench.providers.base import GenerationResult, Timings, parse_retry_after
from bench.providers.http_common import (
    HttpProvider,
    dig,
    first_present,
    looks_like_refusal,
    nan_if_none,
    strip_images,
)
from bench.request import ImageRequest

API = "/provider/api/v1/image"
DONE = frozenset({"completed", "complete", "succeeded", "success", "done", "ready"})
FAILED = frozenset({"failed", "failure", "error", "cancelled", "canceled"})
ID_KEYS = ("request_id", "requestId", "id")
IMAGE_KEYS = ("images", "image_urls", "image_url", "url", "output")


def image_refs(value: Any) -> list[str]:
    """URL strings from a list of URLs or of {url} objects, or a single URL."""
    items = value if isinstance(value, list) else [value]
    refs = []
    for item in items:
        ref = item if isinstance(item, str) else first_present(item, ("url", "image_url"))
        if isinstance(ref, str) and ref:
            refs.append(ref)
    return refs


class KidjigProvider(HttpProvider):
    default_base_url = "https://api.kidjig.com"
    catalog_name = "kidjig"

    def models(self) -> Sequence[ModelSpec]:
        # KidJig publishes no schema: every model gets the generic one of seed 000 (unverified).
        template = shipped_specs("kidjig", self.name)[0]
        return [renamed(template, str(m)) for m in self.option("models", [template.model])]

    def _headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.key}

    @staticmethod
    def _data(envelope: Any) -> Any:
        """`data` of the envelope; the envelope itself when an answer comes without one."""
        data = dig(envelope, "data")
        return data if isinstance(data, Mapping) else envelope

    async def _get(self, url: str, what: str) -> tuple[httpx.Response, Mapping[str, Any]]:
        response, envelope = await self.call_json("GET", url, what=what, headers=self._headers())
        if not isinstance(envelope, Mapping):
            raise self.malformed(f"a JSON object ({what})", envelope, response)
        if envelope.get("success") is False or envelope.get("error"):
            raise self.error_for(response, envelope)
        return response, envelope

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        started = time.perf_counter()
        response, envelope = await self.call_json(
            "POST",
            f"{self.base_url}{API}/generate/{spec.model}",
            what="generate answer",
            json_body=payload,
            headers=self._headers(),
        )
        if isinstance(envelope, Mapping) and (envelope.get("success") is False or envelope.get("error")):
            raise self.error_for(response, envelope)
        request_id = first_present(self._data(envelope), ID_KEYS)
        if not isinstance(request_id, str | int) or request_id == "":
            raise self.malformed("data.request_id (or data.id) in the generate answer", envelope, response)
        request_id = str(request_id)

        async def fetch_status() -> Mapping[str, Any]:
            response, envelope = await self._get(
                f"{self.base_url}{API}/status/{spec.model}/{request_id}", "status"
            )
            if not isinstance(first_present(self._data(envelope), ("status", "state")), str):
                raise self.malformed("data.status in the status answer", envelope, response)
            return envelope

        def finished(envelope: Mapping[str, Any]) -> bool:
            return str(first_present(self._data(envelope), ("status", "state"))).lower() in DONE | FAILED

        status_envelope = await self.follow_job(
            self.poll_until(fetch_status, finished),
            job=request_id,
            deadline=self.deadline_from(started),
            cancel=None,
        )
        data = self._data(status_envelope)
        if str(first_present(data, ("status", "state"))).lower() in FAILED:
            raise self._job_error(data, request_id)
        response, envelope = await self._get(
            f"{self.base_url}{API}/result/{spec.model}/{request_id}", "result"
        )
        data = self._data(envelope)
        refs = image_refs(first_present(data, IMAGE_KEYS))
        if not refs:
            raise self.malformed(
                "data.images[] (URL strings or {url}), data.image_url or data.output in the result",
                envelope,
                response,
            )
        cost_usd = nan_if_none(first_present(data, ("cost", "cost_usd", "credits_used_usd")))
        images, download_s = await self.fetch_images(refs, billed_cost_usd=cost_usd)
        return GenerationResult(
            images=images,
            timings=Timings(download_s=download_s),  # KidJig reports no queue or inference time
            cost_usd=cost_usd,
            http_status=response.status_code,
            provider_request_id=request_id,
            metadata=strip_images({k: v for k, v in data.items() if k not in IMAGE_KEYS}),
        )

    def _job_error(self, data: Mapping[str, Any], request_id: str) -> ProviderError:
        reason = first_present(data, ("error", "message", "reason"))
        code = dig(reason, "code")
        text = self.excerpt(dig(reason, "message") or reason)
        message = f"{self.name}: request {request_id} failed: {text}" + (f" (code {code})" if code else "")
        if code == "content_policy_violation" or looks_like_refusal(text):
            return RefusedError(message, provider_request_id=request_id)
        return ServerError(message, provider_request_id=request_id)

    # ---- errors --------------------------------------------------------------------
    def error_message(self, body: Any) -> str:
        message = dig(body, "error", "message") or dig(body, "message") or dig(body, "error")
        return self.excerpt(message if isinstance(message, str) else body)

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        message = self.error_message(body)
        code = dig(body, "error", "code")
        text = f"{self.name}: HTTP {response.status_code}: {message}" + (f" (code {code})" if code else "")
        if code == "rate_limit_exceeded":
            retry = parse_retry_after(response.headers.get("retry-after"))
            return RateLimitedError(text, http_status=response.status_code, retry_after_s=retry)
        if code == "content_policy_violation" or looks_like_refusal(message):
            return RefusedError(text, http_status=response.status_code)
        if code == "invalid_api_key":
            return AuthError(text, http_status=response.status_code)
        return self.status_error(response, message + (f" (code {code})" if code else ""))

"""Replicate predictions API: create (with Prefer: wait), poll, cancel (docs/provider-protocols.md §8).

Official models are created at /v1/models/{owner}/{name}/predictions; a pinned
version (options.versions: {model: version_id}) at /v1/predictions. Errors are
RFC 7807 problem details. Queue time comes from created_at/started_at, inference
time from metrics.predict_time.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bench.catalog.shipped import shipped_specs
from bench.catalog.spec import ModelSpec
from bench.errors import InvalidRequestError, ProviderError, RefusedError, ServerError
from bench.providers.base import GenerationResult, Timings, parse_retry_after
from bench.providers.http_common import HttpProvider, dig, looks_like_refusal, nan_if_none, strip_images
from bench.request import ImageRequest

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
MAX_PREFER_WAIT_S = 60  # Replicate holds a create for at most 60 s
THROTTLE_RESET = re.compile(r"resets in ~?(\d+(?:\.\d+)?)\s*s")


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def queue_seconds(prediction: Mapping[str, Any]) -> float:
    created, started = _timestamp(prediction.get("created_at")), _timestamp(prediction.get("started_at"))
    if created is None or started is None:
        return math.nan
    return max((started - created).total_seconds(), 0.0)


class ReplicateProvider(HttpProvider):
    default_base_url = "https://api.replicate.com"
    catalog_name = "replicate"

    def models(self) -> Sequence[ModelSpec]:
        return shipped_specs("replicate", self.name)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def _prefer_wait_s(self) -> int:
        """Hold the create for at most half the timeout, so a slow job still leaves time to cancel it."""
        wanted = float(self.option("prefer_wait_s", MAX_PREFER_WAIT_S))
        return int(min(wanted, MAX_PREFER_WAIT_S, self.settings.timeout_s / 2))

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        started = time.perf_counter()
        headers = self._headers()
        create_headers = dict(headers)
        wait_s = self._prefer_wait_s()
        if wait_s >= 1:
            create_headers["Prefer"] = f"wait={wait_s}"
        versions: Mapping[str, Any] = self.option("versions", {})
        # A pinned version (options.versions), else the catalog's: non-official models run on the version route.
        version = versions.get(spec.model) or spec.version
        if version:
            url, body = f"{self.base_url}/v1/predictions", {"version": str(version), "input": dict(payload)}
        else:
            url, body = f"{self.base_url}/v1/models/{spec.model}/predictions", {"input": dict(payload)}
        response, prediction = await self.call_json(
            "POST",
            url,
            what="prediction",
            json_body=body,
            headers=create_headers,
            timeout_s=self.settings.timeout_s,
        )
        prediction = self._check(prediction, response)
        prediction_id = str(prediction["id"])
        # These calls carry the key: urls.get/cancel are used only if they point at Replicate (or base_url).
        documented = f"{self.base_url}/v1/predictions/{quote(prediction_id, safe='')}"
        get_url = self.follow_up_url(dig(prediction, "urls", "get"), documented, "urls.get")
        cancel_url = self.follow_up_url(
            dig(prediction, "urls", "cancel"), f"{documented}/cancel", "urls.cancel"
        )

        async def fetch() -> Mapping[str, Any]:
            response, answer = await self.call_json("GET", get_url, what="prediction", headers=headers)
            return self._check(answer, response)

        async def cancel() -> None:
            await self.send("POST", cancel_url, headers=headers, timeout_s=5.0)

        if prediction.get("status") not in TERMINAL:
            prediction = await self.follow_job(
                self.poll_until(fetch, lambda p: p.get("status") in TERMINAL),
                job=prediction_id,
                deadline=self.deadline_from(started),
                cancel=cancel,
            )
        return await self._finish(prediction, prediction_id)

    def _check(self, prediction: Any, response: httpx.Response) -> Mapping[str, Any]:
        if not isinstance(prediction, Mapping) or not prediction.get("id") or not prediction.get("status"):
            raise self.malformed("a prediction with id and status", prediction, response)
        return prediction

    async def _finish(self, prediction: Mapping[str, Any], prediction_id: str) -> GenerationResult:
        status = prediction["status"]
        if status != "succeeded":
            message = (
                f"{self.name}: prediction {prediction_id} {status}: {self.excerpt(prediction.get('error'))}"
            )
            if looks_like_refusal(str(prediction.get("error") or "")):
                raise RefusedError(message, provider_request_id=prediction_id)
            raise ServerError(message, provider_request_id=prediction_id)
        output = prediction.get("output")
        refs = [output] if isinstance(output, str) else output
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise self.malformed(
                "output as a URL or a list of URLs (it is nulled an hour after the run)", prediction
            )
        images, download_s = await self.fetch_images(refs)
        return GenerationResult(
            images=images,
            timings=Timings(
                queue_s=queue_seconds(prediction),
                inference_s=nan_if_none(dig(prediction, "metrics", "predict_time")),
                download_s=download_s,
            ),
            provider_request_id=prediction_id,
            metadata=strip_images({k: v for k, v in prediction.items() if k not in ("output", "input")}),
        )

    # ---- errors --------------------------------------------------------------------
    def error_message(self, body: Any) -> str:
        title, detail = dig(body, "title"), dig(body, "detail")
        text = ": ".join(str(x) for x in (title, detail) if x)
        return self.excerpt(text or body)

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        message = self.error_message(body)
        if response.status_code == 422:
            fields = dig(body, "invalid_fields")
            extra = f" (invalid fields: {self.excerpt(fields)})" if fields else ""
            return InvalidRequestError(f"{self.name}: HTTP 422: {message}{extra}", http_status=422)
        error = self.status_error(response, message)
        if response.status_code == 429 and error.retry_after_s is None:
            # Replicate says when the limit resets in the text: "resets in ~30s".
            found = THROTTLE_RESET.search(str(dig(body, "detail") or ""))
            error.retry_after_s = float(found.group(1)) if found else parse_retry_after(None)
        return error

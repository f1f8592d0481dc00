"""Eachlabs predictions API: create, poll, cancel (docs/provider-protocols.md §1).

The catalog (bench.catalog.eachlabs) knows each model's own parameter names and
schema; the payload is validated against it once more here, because a rejected
prediction may still be billed. Auth: current docs say `Authorization: Bearer`,
the API reference and skills say `X-API-Key`; both headers are sent.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import httpx

from bench.catalog.eachlabs import load_eachlabs_models
from bench.catalog.mapping import ParameterError, validate_payload
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
from bench.providers.http_common import HttpProvider, dig, looks_like_refusal, nan_if_none, strip_images
from bench.request import ImageRequest

RUNNING = frozenset({"created", "starting", "processing", "queued", "in_progress"})
SUCCEEDED = frozenset({"success", "succeeded"})
DEFAULT_VERSION = "0.0.1"  # every catalog model's version (seed 001)
# Run-failure codes (errors.mdx) -> the error the runner should see.
FAILURE_CODES: dict[str, type[ProviderError]] = {
    "PROVIDER_REJECTED": RefusedError,  # content safety
    "INPUT_VALIDATION_ERROR": InvalidRequestError,
    "PROVIDER_RATE_LIMIT": RateLimitedError,
    "PROVIDER_SERVER_ERROR": ServerError,
    "EXECUTION_TIMEOUT": ProviderTimeoutError,
    "PROVIDER_FAILED": ServerError,
}


def output_refs(output: Any) -> list[str]:
    """Image URLs or data URIs from `output`: a string, a list, or an object holding them."""
    if isinstance(output, str):
        return [output] if output else []
    if isinstance(output, list):
        return [ref for item in output for ref in output_refs(item)]
    if isinstance(output, Mapping):
        for key in ("images", "image", "url", "urls", "output"):
            if key in output:
                return output_refs(output[key])
    return []


class EachlabsProvider(HttpProvider):
    default_base_url = "https://api.eachlabs.ai"
    catalog_name = "eachlabs"

    def models(self) -> Sequence[ModelSpec]:
        models = load_eachlabs_models()
        return models if self.name == "eachlabs" else [replace(m, provider=self.name) for m in models]

    def _headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key, "Authorization": f"Bearer {self.key}"}

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        started = time.perf_counter()
        try:
            validate_payload(spec, payload)
        except ParameterError as exc:
            raise InvalidRequestError(f"{self.name}: {exc}") from None
        headers = self._headers()
        body = {"model": spec.model, "version": spec.version or DEFAULT_VERSION, "input": payload}
        # The trailing slash is required (AIProxy's client notes it); the emulator accepts both.
        response, created = await self.call_json(
            "POST", f"{self.base_url}/v1/prediction/", what="prediction", json_body=body, headers=headers
        )
        prediction_id = dig(created, "predictionID") or dig(created, "id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise self.malformed("a creation answer with predictionID", created, response)
        get_url = f"{self.base_url}/v1/prediction/{prediction_id}"

        async def fetch() -> Mapping[str, Any]:
            response, answer = await self.call_json("GET", get_url, what="prediction", headers=headers)
            if not isinstance(answer, Mapping) or not isinstance(answer.get("status"), str):
                raise self.malformed("a prediction with status", answer, response)
            return answer

        async def cancel() -> None:
            await self.send("POST", f"{get_url}/cancel", headers=headers, timeout_s=5.0)

        prediction = await self.follow_job(
            self.poll_until(fetch, lambda p: str(p["status"]).lower() not in RUNNING),
            job=prediction_id,
            deadline=self.deadline_from(started),
            cancel=cancel,
        )
        status = str(prediction["status"]).lower()
        if status not in SUCCEEDED:
            raise self._run_error(prediction, prediction_id, status)
        refs = output_refs(prediction.get("output"))
        if not refs:
            raise self.malformed("output as a URL, a list of URLs or a data URI", prediction)
        cost_usd = nan_if_none(dig(prediction, "metrics", "cost"))
        images, download_s = await self.fetch_images(refs, billed_cost_usd=cost_usd)
        return GenerationResult(
            images=images,
            timings=Timings(
                inference_s=nan_if_none(dig(prediction, "metrics", "predict_time")), download_s=download_s
            ),
            cost_usd=cost_usd,
            provider_request_id=prediction_id,
            metadata=strip_images({k: v for k, v in prediction.items() if k not in ("output", "input")}),
        )

    def _run_error(self, prediction: Mapping[str, Any], prediction_id: str, status: str) -> ProviderError:
        output = prediction.get("output")
        code = str(dig(output, "error_code") or "")
        # Legacy failures carry a plain string instead of {error_code, error_message}.
        reason = dig(output, "error_message") or (
            output if isinstance(output, str) else prediction.get("error")
        )
        text = f"{self.name}: prediction {prediction_id} {status}: {self.excerpt(reason)}" + (
            f" ({code})" if code else ""
        )
        error_cls = FAILURE_CODES.get(code) or (
            RefusedError if looks_like_refusal(str(reason)) else ServerError
        )
        return error_cls(text, provider_request_id=prediction_id)

    # ---- errors --------------------------------------------------------------------
    def error_message(self, body: Any) -> str:
        parts = [dig(body, "error"), dig(body, "details")]
        text = ": ".join(str(p) for p in parts if isinstance(p, str) and p)
        return self.excerpt(text or body)

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        message = self.error_message(body)
        if response.status_code == 402:
            message += " (the account balance is too low: top it up)"
        return self.status_error(response, message)

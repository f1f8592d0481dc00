"""OpenAI-compatible images API (POST /v1/images/generations): OpenAI, AIML API and APIpie.

One synchronous call. The three differ in their answers, so each has a profile
(`options.profile`): which models exist, where the cost is, what an error looks like.
- openai: data[{url|b64_json, revised_prompt}], gpt-image-1 `usage` token counts (priced
  from the price table), errors {"error":{message,type,param,code}}.
- aimlapi: data[] (or fal-style images[] on older flux routes), cost in
  meta.usage.usd_spent or credits_used ($1 = 2,000,000 credits), errors {message, requestId,...}.
- apipie: OpenAI shape plus usage{cost, latency_ms}, errors {"error":{code,message}}.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from bench.catalog.retired import check_retired, retirement
from bench.catalog.shipped import shipped_specs
from bench.catalog.spec import ModelSpec
from bench.errors import (
    ConfigError,
    InvalidRequestError,
    ProviderError,
    RateLimitedError,
    RefusedError,
    UnknownModelError,
)
from bench.prices import PriceTable, estimate_cost
from bench.providers.base import (
    GeneratedImage,
    GenerationResult,
    ProviderSettings,
    Timings,
    parse_retry_after,
)
from bench.providers.http_common import (
    HttpProvider,
    all_flagged_nsfw,
    dig,
    looks_like_refusal,
    nan_if_none,
    strip_images,
)
from bench.request import ImageRequest

PROFILES: dict[str, str] = {
    "openai": "https://api.openai.com",
    "aimlapi": "https://api.aimlapi.com",
    "apipie": "https://apipie.ai",
}
AIML_CREDITS_PER_USD = 2_000_000  # aimlapi docs, faq/how-can-i-track-my-funds
# gpt-image-1 output tokens per 1024x1024 image by quality (OpenAI pricing page); "auto" may pick
# high, so a budget estimate assumes it does.
GPT_IMAGE_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "auto": 4160}
REFUSAL_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
RATE_LIMIT_CODES = frozenset({"rate_limit_exceeded"})
# How each host says it does not serve a model: OpenAI's model_not_found (retired models) and its
# images endpoint's "Invalid model X" (any other id), AIML's body validation of `model`, APIpie's
# invalid `model` parameter (bench/emulators/openai_compat.py: unknown_model, with the sources).
UNSERVED_MODEL_TEXT = re.compile(r"^(Invalid model |Body validation error! model\b|The 'model' parameter)")


def is_gpt_image(model: str) -> bool:
    """gpt-image-1 under its own id or a gateway's (AIML: openai/gpt-image-1)."""
    return model.rsplit("/", 1)[-1].startswith("gpt-image")


class OpenAICompatProvider(HttpProvider):
    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        profile = str(self.settings.options.get("profile", self.settings.name))
        if profile not in PROFILES:
            raise ConfigError(
                f"providers.{self.settings.name}.options.profile",
                profile,
                f"use one of {', '.join(PROFILES)}",
            )
        self.profile = profile
        self.catalog_name = profile
        self.default_base_url = PROFILES[profile]
        self._models = shipped_specs(profile, self.name)

    def models(self) -> Sequence[ModelSpec]:
        return self._models

    def model_spec(self, model: str) -> ModelSpec:
        # A retired id (dall-e-3) is a one-line "retired on DATE, use X", not "unknown model".
        old = check_retired(
            self.name,
            self.profile,
            model,
            self.settings.options,
            real_host=self.base_url == self.default_base_url,
        )
        return old if old is not None else super().model_spec(model)

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        body = {"model": spec.model, **payload}
        headers = {"Authorization": f"Bearer {self.key}"}
        response, answer = await self.call_json(
            "POST",
            f"{self.base_url}/v1/images/generations",
            what="images answer",
            json_body=body,
            headers=headers,
        )
        if not isinstance(answer, Mapping):
            raise self.malformed("a JSON object", answer, response)
        if answer.get("error"):  # some gateways put an error object in a 200
            raise self.error_for(response, answer)
        items = self._image_items(answer, response)
        if all_flagged_nsfw(answer):
            raise RefusedError(
                f"{self.name}: every image was flagged by the safety checker (has_nsfw_concepts)"
            )
        refs = [item.get("url") or "" for item in items if item.get("url")]
        images: list[GeneratedImage] = []
        download_s = float("nan")
        cost, usage, inference_s = self._cost_and_usage(answer, response)
        if refs:
            fetched, download_s = await self.fetch_images(refs, billed_cost_usd=cost)
            images.extend(fetched)
        for item in items:
            if not item.get("url") and item.get("b64_json"):
                images.append(self.image_from_base64(str(item["b64_json"]), self._b64_mime(payload)))
        if not images:
            raise self.malformed("data[] items with url or b64_json", answer, response)
        revised = next((str(i["revised_prompt"]) for i in items if i.get("revised_prompt")), None)
        return GenerationResult(
            images=tuple(images),
            timings=Timings(inference_s=inference_s, download_s=download_s),
            cost_usd=cost,
            usage=usage,
            revised_prompt=revised,
            seed_used=answer.get("seed") if isinstance(answer.get("seed"), int) else None,
            http_status=response.status_code,
            provider_request_id=self.request_id_of(response),
            metadata=strip_images({k: v for k, v in answer.items() if k not in ("data", "images")}),
        )

    def _image_items(self, answer: Mapping[str, Any], response: httpx.Response) -> list[Mapping[str, Any]]:
        # AIML's older flux routes answer with fal's raw output (images[]), the rest with data[].
        for key in ("data", "images"):
            items = answer.get(key)
            if isinstance(items, list) and items and all(isinstance(i, Mapping) for i in items):
                return items
        raise self.malformed("data[] (or fal-style images[]) with url or b64_json", answer, response)

    @staticmethod
    def _b64_mime(payload: Mapping[str, Any]) -> str:
        fmt = str(payload.get("output_format") or "png").lower()
        return f"image/{'jpeg' if fmt == 'jpg' else fmt}"

    def _cost_and_usage(
        self, answer: Mapping[str, Any], response: httpx.Response
    ) -> tuple[float, Mapping[str, Any], float]:
        """(reported cost or NaN, usage for price tables, inference seconds or NaN)."""
        if self.profile == "aimlapi":
            usage = dig(answer, "meta", "usage") or {}
            cost = nan_if_none(usage.get("usd_spent"))
            if cost != cost:  # NaN: fall back to credits
                cost = nan_if_none(usage.get("credits_used"), 1 / AIML_CREDITS_PER_USD)
            # gpt-image-1 via AIML answers OpenAI's own `usage` token block (its docs' example);
            # the price table prices it per kind of token. Some AIML pages show only a bare
            # meta.usage.tokens_used: kept as total_tokens, which no per-kind rate can price (NaN).
            top = answer.get("usage")
            priced = {**dict(usage), **(dict(top) if isinstance(top, Mapping) else {})}
            if isinstance(usage.get("tokens_used"), int) and "total_tokens" not in priced:
                priced["total_tokens"] = usage["tokens_used"]
            return cost, priced, float("nan")
        usage = answer.get("usage") if isinstance(answer.get("usage"), Mapping) else {}
        assert isinstance(usage, Mapping)
        if self.profile == "apipie":
            return nan_if_none(usage.get("cost")), dict(usage), nan_if_none(usage.get("latency_ms"), 1e-3)
        # OpenAI reports no money; gpt-image-1's token counts are priced by the price table.
        # openai-processing-ms is the server's time on the request: OpenAI does not split queue from inference.
        return float("nan"), dict(usage), nan_if_none(response.headers.get("openai-processing-ms"), 1e-3)

    def estimate_cost_usd(self, spec: ModelSpec, request: ImageRequest) -> float | None:
        """Token-priced models: the usage an answer will report, from the documented per-image counts."""
        table = self.settings.options.get("price_table")
        if not is_gpt_image(spec.model) or not isinstance(table, PriceTable):
            return super().estimate_cost_usd(spec, request)
        quality = str(request.extra.get("quality", "auto"))
        if quality not in GPT_IMAGE_OUTPUT_TOKENS:
            # xhigh and max (gpt-image-2.5/2.6) have no published token count: unknown, not high's.
            return None
        text_tokens = max(1, len(request.prompt) // 4)  # ~4 characters per token
        output_tokens = (
            GPT_IMAGE_OUTPUT_TOKENS.get(quality, GPT_IMAGE_OUTPUT_TOKENS["auto"]) * request.num_images
        )
        usage = {
            "input_tokens": text_tokens,
            "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
            "output_tokens": output_tokens,
            "total_tokens": text_tokens + output_tokens,  # what AIML reports (tokens_used)
        }
        cost = estimate_cost(
            table,
            self.name,
            spec.model,
            payload=None,
            n_images=request.num_images,
            megapixels=None,
            usage=usage,
        )
        return None if cost is None or cost != cost else cost

    # ---- errors --------------------------------------------------------------------
    def error_message(self, body: Any) -> str:
        message = dig(body, "error", "message") or dig(body, "message") or dig(body, "error")
        return self.excerpt(message if isinstance(message, str) else body)

    def request_id_of(self, response: httpx.Response) -> str | None:
        found = response.headers.get("x-request-id")
        return str(found) if found else None

    def error_for(self, response: httpx.Response, body: Any) -> ProviderError:
        message = self.error_message(body)
        code = dig(body, "error", "code") or dig(body, "error", "type")
        request_id = dig(body, "requestId") or self.request_id_of(response)
        text = f"{self.name}: HTTP {response.status_code}: {message}" + (f" (code {code})" if code else "")
        error: ProviderError
        if dig(body, "error", "code") == "model_not_found" or UNSERVED_MODEL_TEXT.match(message):
            error = self.unserved_model_error(response, message)
        elif code in REFUSAL_CODES or (response.status_code == 400 and looks_like_refusal(message)):
            error = RefusedError(text, http_status=response.status_code)
        elif code in RATE_LIMIT_CODES:
            retry = parse_retry_after(response.headers.get("retry-after"))
            error = RateLimitedError(text, http_status=response.status_code, retry_after_s=retry)
        elif code == "insufficient_quota":
            # A 429 that no retry can fix: the account is out of credit.
            error = InvalidRequestError(
                text + "; add credit to the account", http_status=response.status_code
            )
        else:
            error = self.status_error(response, message + (f" (code {code})" if code else ""))
        error.provider_request_id = str(request_id) if request_id else None
        return error

    def unserved_model_error(self, response: httpx.Response, message: str) -> UnknownModelError:
        """The host's "no such model" as one line: the target, what the host said, and the fix."""
        model = model_in_request(response)
        target = f"{self.name}:{model}"
        gone = retirement(self.profile, model)
        fix = (
            f"it was retired on {gone.retired_on}, use {self.name}:{gone.use}"
            if gone is not None
            else f"use a model the host lists (`bench ls --provider {self.name}`)"
        )
        return UnknownModelError(
            f"{target}: {self.base_url} does not serve this model "
            f"(HTTP {response.status_code}: {self.safe(message)}); {fix}",
            http_status=response.status_code,
        )


def model_in_request(response: httpx.Response) -> str:
    """The `model` of the JSON body the answered request sent ("?" when it cannot be read)."""
    try:
        sent = json.loads(response.request.content)
    except (RuntimeError, ValueError):  # a streamed body, or not JSON
        return "?"
    return str(sent.get("model", "?")) if isinstance(sent, Mapping) else "?"


__all__ = ["PROFILES", "OpenAICompatProvider"]

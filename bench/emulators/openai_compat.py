"""Emulator of POST /v1/images/generations in its three dialects: openai, aimlapi, apipie.

Faithful to docs/provider-protocols.md §2, §4, §6: Bearer auth, the answer shape
and error body of each profile, Retry-After on 429. AIML's older flux routes
answered with fal's raw output (images[]); `fal_shape=True` emulates those.
Each host serves exactly the models of its emulated catalog (bench/emulators/data/catalog.json)
and refuses any other id as that API does (see unknown_model): a run that would fail at the
real API with a retired or mistyped model fails against the emulator too.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.catalog.retired import retirement
from bench.catalog.shipped import shipped_document
from bench.emulators.catalog import models_of, openai_models
from bench.emulators.common import (
    EmulatorState,
    Knobs,
    bearer,
    int_param,
    json_body,
    malformed_json,
)
from bench.emulators.jobs import Job
from bench.emulators.routes import Protocol, Routes
from bench.emulators.validate import problems

PROFILES = ("openai", "aimlapi", "apipie")
PATH = "/v1/images/generations"
OPENAI_DEPRECATIONS = "https://platform.openai.com/docs/deprecations"


def error_body(
    profile: str,
    status: int,
    message: str,
    code: str | None,
    err_type: str = "invalid_request_error",
    param: str | None = None,
) -> Any:
    if profile == "aimlapi":
        return {
            "message": message,
            "path": PATH,
            "requestId": uuid.uuid4().hex,
            "statusCode": status,
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
        }
    if profile == "apipie":
        return {"error": {"code": code, "message": message}}
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


# The sizes of a model whose size list is open (gpt-image-2 and its successors; their `size`
# parameter in bench/catalog/data/openai.json, from OpenAI's API reference): any WIDTHxHEIGHT with
# both sides divisible by 16, an aspect ratio between 1:3 and 3:1, at most 3840x2160.
OPEN_SIZE_STEP_PX = 16
OPEN_SIZE_MAX_RATIO = 3
OPEN_SIZE_MAX_PX = (3840, 2160)  # long side, short side


def open_size_problem(profile: str, model: str, size: Any) -> str | None:
    """Why a model with an open size list cannot make `size`, None when it can (or is not open)."""
    entry = next((m for m in shipped_document(profile)["models"] if m["slug"] == model), None)
    param = next((p for p in entry["params"] if p["name"] == "size"), None) if entry else None
    if param is None or param.get("options_complete", True) or size == "auto" or not isinstance(size, str):
        return None
    width, _, height = size.partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) and int(height)):
        return "must be WIDTHxHEIGHT or auto"
    long_px, short_px = max(int(width), int(height)), min(int(width), int(height))
    if (
        long_px % OPEN_SIZE_STEP_PX
        or short_px % OPEN_SIZE_STEP_PX
        or long_px > OPEN_SIZE_MAX_RATIO * short_px
        or long_px > OPEN_SIZE_MAX_PX[0]
        or short_px > OPEN_SIZE_MAX_PX[1]
    ):
        return (
            "both sides must be divisible by 16, with an aspect ratio between 1:3 and 3:1, at most 3840x2160"
        )
    return None


def published_schema(profile: str, model: str) -> dict[str, Any] | None:
    """The JSON Schema of a model's published parameters (bench/catalog/data/<profile>.json, itself
    read from OpenAI's SDK types and AIML's and APIpie's published docs), retired models included."""
    document = shipped_document(profile)
    rows = [*document["models"], *(r["spec"] for r in document.get("retired") or [] if "spec" in r)]
    entry = next((m for m in rows if m["slug"] == model), None)
    if entry is None:
        return None
    properties: dict[str, Any] = {}
    for p in entry["params"]:
        prop: dict[str, Any] = {"type": p["type"]}
        if p.get("options") is not None and p.get("options_complete", True):
            prop["enum"] = p["options"]
        for ours, theirs in (("min", "minimum"), ("max", "maximum"), ("max_length", "maxLength")):
            if p.get(ours) is not None:
                prop[theirs] = p[ours]
        properties[p["name"]] = prop
    return {"type": "object", "properties": properties}


ErrorAnswer = Callable[[int, str, str | None, Mapping[str, str] | None], JSONResponse]


def openai_protocol(name: str, error: ErrorAnswer) -> Protocol:
    """How OpenAI-style APIs (images here, chat completions in chat.py) answer a bad key, a rate
    limit and a server error, given `error(status, message, code, headers)` in their error shape."""
    return Protocol(
        name=name,
        key=bearer,
        # OpenAI echoes the key it got: adapters must redact their error messages.
        unauthorized=lambda key: error(401, f"Incorrect API key provided: {key}", "invalid_api_key", None),
        rate_limited=lambda retry_after: error(429, "Too Many Requests", "rate_limit_exceeded", retry_after),
        server_failed=lambda status: error(
            status, "The server had an error while processing your request.", "server_error", None
        ),
    )


def served_models(profile: str) -> list[str]:
    """The image model ids the emulated host serves: its emulated catalog's model list (OpenAI's
    lists its chat and audio models too, which its images endpoint does not take)."""
    ids = [str(m["id"]) if isinstance(m, Mapping) else str(m) for m in models_of(profile)]
    return [i for i in ids if profile != "openai" or "image" in i]


def unknown_model(profile: str, model: str) -> tuple[int, str, str | None] | None:
    """(status, message, code) of the host's refusal of a model it does not serve, None if served.

    OpenAI: a model it shut down is 404 model_not_found "has been deprecated" (its answer for every
    retired model); any other id the images endpoint does not know is 400 "Invalid model ..."
    with no code (answers recorded in BerriAI/litellm#3981 and samterfa/openai#14).
    AIML: 400 "Body validation error!" (docs.aimlapi.com errors-with-status-code-4xx, example 1:
    a wrong `model`). APIpie: 400 invalid_parameter in the form its docs show for `size`
    (seed 004, "Invalid Parameters"; the status is inferred)."""
    served = served_models(profile)
    if model in served:
        return None
    if profile == "aimlapi":
        return 400, f"Body validation error! model: Invalid enum value, received '{model}'", None
    if profile == "apipie":
        return 400, f"The 'model' parameter must be one of: {', '.join(served)}", "invalid_parameter"
    if retirement(profile, model) is not None:
        deprecated = f"The model `{model}` has been deprecated, learn more here: {OPENAI_DEPRECATIONS}"
        return 404, deprecated, "model_not_found"
    return 400, f"Invalid model {model}. The model argument should be left blank.", None


def is_gpt_image(model: str) -> bool:
    return model.rsplit("/", 1)[-1].startswith("gpt-image")


def create_app(knobs: Knobs | None = None, profile: str = "openai", fal_shape: bool = False) -> Starlette:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    emu = EmulatorState(knobs or Knobs())

    def fail(
        status: int,
        message: str,
        code: str | None,
        headers: Mapping[str, str] | None = None,
        param: str | None = None,
        err_type: str = "invalid_request_error",
    ) -> JSONResponse:
        return JSONResponse(
            error_body(profile, status, message, code, err_type, param),
            status_code=status,
            headers=dict(headers or {}),
        )

    routes = Routes(emu, openai_protocol("openai_compat", fail))

    def refuse_invalid(body: Mapping[str, Any]) -> JSONResponse | None:
        """A model the host does not serve, or a body the model's published limits refuse (a size
        dall-e-3 does not make, AIML's flux seed 0), in the profile's error shape, as the APIs answer."""
        model = str(body["model"])
        unknown = unknown_model(profile, model)
        if unknown is not None:
            status, message, code = unknown
            return fail(status, message, code)
        schema = published_schema(profile, model)
        if schema is None:
            return None
        found = problems(schema, schema, {k: v for k, v in body.items() if k != "model"})
        if not found and (size := open_size_problem(profile, model, body.get("size"))) is not None:
            found = [("size", "invalid_value", size)]
        if not found:
            return None
        path, _, message = found[0]
        text = (
            f"Body validation error! {path}: {message}"
            if profile == "aimlapi"
            else f"Invalid '{path}': {message}."
        )
        return fail(400, text, "invalid_value" if profile == "openai" else "invalid_parameter", param=path)

    async def generate(request: Request) -> Response:
        body = await json_body(request)
        if body is None or not isinstance(body.get("prompt"), str) or not body.get("model"):
            return fail(400, "Body validation error! 'model' and 'prompt' are required", "invalid_parameter")
        refusal = refuse_invalid(body)
        if refusal is not None:
            return refusal
        n = int_param(body.get("n", body.get("num_images", 1)), 1)
        job = emu.job_from_payload(body, count=n)
        if (failure := routes.fault_answer(job)) is not None:
            return failure
        if job.refused:
            if is_gpt_image(str(body.get("model"))):
                return fail(
                    400,
                    "Your request was rejected by the safety system.",
                    "moderation_blocked",
                    err_type="image_generation_user_error",
                )
            return fail(
                400,
                "Your request was rejected as a result of our content policy.",
                "content_policy_violation",
            )
        await emu.wait_sync(job)
        if job.fault == "malformed_json":
            return malformed_json()
        if job.fault == "missing_field":
            return JSONResponse({"created": int(job.created_wall), "data": []})
        return JSONResponse(await answer(request, body, job), headers=headers_for(job))

    def headers_for(job: Job) -> dict[str, str]:
        if profile != "openai":
            return {}
        return {"x-request-id": f"req_{job.id}", "openai-processing-ms": f"{job.inference_s * 1000:.0f}"}

    async def answer(request: Request, body: Mapping[str, Any], job: Job) -> dict[str, Any]:
        model = str(body["model"])
        # OpenAI's GPT image models always answer base64; AIML's answer URLs unless asked.
        as_b64 = body.get("response_format") == "b64_json" or (profile == "openai" and is_gpt_image(model))
        if as_b64:
            items: list[dict[str, Any]] = [{"b64_json": b} for b in await emu.base64s(job)]
        else:
            items = [{"url": u} for u in await emu.urls(job, request)]
        if profile == "aimlapi" and fal_shape:
            return {
                "images": [
                    {
                        "url": item.get("url"),
                        "width": job.width,
                        "height": job.height,
                        "content_type": "image/png",
                    }
                    for item in items
                ],
                "timings": {"inference": job.inference_s},
                "seed": job.seed,
                "has_nsfw_concepts": [False] * len(items),
                "prompt": job.prompt,
            }
        if model.startswith("dall-e"):
            for item in items:
                item["revised_prompt"] = f"A detailed rendering of {job.prompt}"
        out: dict[str, Any] = {"created": int(time.time()), "data": items}
        if profile == "aimlapi":
            for item in items:
                item.setdefault("b64_json", None)
            if model == "openai/gpt-image-1":
                # AIML passed OpenAI's answer through: a token `usage` block, no money, no `meta`
                # (aimlapi/api-docs image-models/openai/gpt-image-1.md, its response example); its
                # gpt-image-2 page shows meta.usage.usd_spent instead, as for its other models.
                out.update(gpt_image_usage(job))
            elif emu.knobs.report_cost:
                usd = emu.cost_usd(job)
                out["meta"] = {"usage": {"credits_used": round(usd * 2_000_000), "usd_spent": usd}}
            out["model"] = model
        elif profile == "apipie":
            usage: dict[str, Any] = {
                "latency_ms": round((job.queue_s + job.inference_s) * 1000),
                "image_size": f"{job.width}x{job.height}",
                "model_used": model,
            }
            if emu.knobs.report_cost:
                usage["cost"] = apipie_cost(model, job)
            out["usage"] = usage
        elif is_gpt_image(model):
            out.update(gpt_image_usage(job))
        return out

    def apipie_cost(model: str, job: Job) -> float:
        """APIpie's usage.cost: the route's flat req_price per image (its model list), as billed;
        a route without one is priced per megapixel."""
        row = next((m for m in models_of("apipie") if m["id"] == model), None)
        if row is not None and row.get("price_unit") == "image":
            return float(row["req_price"]) * job.num_images
        return emu.cost_usd(job, per_megapixel=0.04)

    def gpt_image_usage(job: Job) -> dict[str, Any]:
        """A GPT image model's token usage block and the settings it echoes (OpenAI's and AIML's answers)."""
        text_tokens = len(job.prompt.split())
        output_tokens = 272 * job.num_images  # OpenAI's count for 1024x1024 at quality=low
        return {
            "usage": {
                "input_tokens": text_tokens,
                "input_tokens_details": {"image_tokens": 0, "text_tokens": text_tokens},
                "output_tokens": output_tokens,
                "total_tokens": text_tokens + output_tokens,
            },
            "background": "opaque",
            "output_format": "png",
            "quality": "low",
            "size": "1024x1024",
        }

    async def list_models(request: Request) -> Response:
        return JSONResponse(openai_models(profile))

    return routes.app(
        [
            routes.keyed(PATH, generate, "POST"),
            routes.keyed("/v1/models", list_models),
            routes.keyed("/models", list_models),
        ]
    )

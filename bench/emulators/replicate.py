"""Emulator of Replicate's predictions API (docs/provider-protocols.md §8).

POST /v1/predictions {version, input} or /v1/models/{owner}/{name}/predictions
{input} answers 201 (holding the request up to `Prefer: wait=n` seconds); GET
/v1/predictions/{id} polls; POST /v1/predictions/{id}/cancel cancels. Errors are
problem details; a safety-checker failure is status=failed with Replicate's NSFW text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.emulators.catalog import (
    find,
    models_of,
    replicate_model,
    replicate_model_for_version,
    replicate_version,
)
from bench.emulators.common import (
    FILE_ROUTE,
    EmulatorState,
    Job,
    Knobs,
    bearer,
    int_param,
    json_body,
    malformed_json,
    mark_emulator,
    rate_limit_headers,
)
from bench.emulators.validate import problems

NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
PHASE_STATUS = {"queued": "starting", "running": "processing", "done": "succeeded", "cancelled": "canceled"}


# The one collection the emulator serves: every emulated model (Replicate's own is text-to-image).
COLLECTION = {
    "name": "Text to image",
    "slug": "text-to-image",
    "description": "Models that generate images from text prompts",
}


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"title": title, "detail": detail, "status": status, **extra},
        status_code=status,
        media_type="application/problem+json",  # RFC 7807, as Replicate answers errors
    )


def prefer_wait_s(header: str | None) -> float:
    """`Prefer: wait` holds up to 60 s; `wait=n` up to n (1-60)."""
    if not header:
        return 0.0
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "wait":
            return float(min(max(int_param(value, 60), 1), 60)) if value else 60.0
    return 0.0


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())

    def unauthorized() -> JSONResponse:
        return problem(401, "Unauthenticated", "You did not pass a valid authentication token")

    async def prediction(request: Request, job: Job) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        phase = job.phase()
        status = PHASE_STATUS[phase]
        out: dict[str, Any] = {
            "id": job.id,
            "model": job.extra["model"],
            "version": job.extra.get("version") or "",
            "input": job.extra["input"],
            "logs": "",
            "output": None,
            "error": None,
            "status": status,
            "created_at": _iso(job.created_wall),
            "started_at": _iso(job.created_wall + job.queue_s) if phase != "queued" else None,
            "completed_at": None,
            "data_removed": False,
            "metrics": {},
            "urls": {
                "get": f"{base}/v1/predictions/{job.id}",
                "cancel": f"{base}/v1/predictions/{job.id}/cancel",
                "web": f"{base}/p/{job.id}",
            },
        }
        if phase in ("done", "cancelled"):
            out["completed_at"] = _iso(job.created_wall + job.queue_s + job.inference_s)
        if phase == "done":
            out["metrics"] = {"predict_time": job.inference_s}
            if job.refused:
                out.update(status="failed", error=NSFW_ERROR)
            elif job.fault != "missing_field":
                urls = await emu.urls(job, request)
                out["output"] = urls if job.extra["list_output"] else urls[0]
        return out

    def denied(request: Request, method: str) -> Response | None:
        """Every call is counted; one without a valid token gets Replicate's 401."""
        emu.calls.append(f"{method} {request.url.path}")
        return None if emu.key_ok(bearer(request)) else unauthorized()

    async def create(request: Request, model: str, body: Mapping[str, Any], version: str | None) -> Response:
        payload = body.get("input")
        if not isinstance(payload, Mapping) or not isinstance(payload.get("prompt"), str):
            return problem(
                422,
                "Input validation failed",
                "- input.prompt is required",
                invalid_fields=[
                    {"type": "required", "field": "input.prompt", "description": "prompt is required"}
                ],
            )
        known = find("replicate", model)
        if known is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        document = replicate_version(known)["openapi_schema"]
        found = problems(document, document["components"]["schemas"]["Input"], dict(payload))
        if found:  # Replicate's 422: a detail line per field, and invalid_fields
            return problem(
                422,
                "Input validation failed",
                "\n".join(f"- input.{path}: {msg}" for path, _, msg in found),
                invalid_fields=[
                    {"type": kind, "field": f"input.{path}", "description": f"{path}: {msg}"}
                    for path, kind, msg in found
                ],
            )
        job = emu.job_from_payload(payload, count_key="num_outputs")
        # flux-schnell/dev answer a list of URLs; flux-1.1-pro a single URL string.
        job.extra.update(model=model, version=version, input=dict(payload), list_output="pro" not in model)
        if job.fault == "rate_limit":
            detail = f"Request was throttled. Your rate limit resets in ~{emu.knobs.retry_after_s:g}s."
            response = problem(429, "Too Many Requests", detail)
            response.headers.update(rate_limit_headers(emu.knobs))
            return response
        if job.fault in ("server_error", "unavailable"):
            status = 500 if job.fault == "server_error" else 503
            return problem(
                status, "Internal Server Error" if status == 500 else "Service Unavailable", "try again"
            )
        await emu.wait_until_done(job, prefer_wait_s(request.headers.get("prefer")))
        if job.fault == "malformed_json":
            return malformed_json()
        return JSONResponse(await prediction(request, job), status_code=201)

    async def create_versioned(request: Request) -> Response:
        if (refusal := denied(request, "POST")) is not None:
            return refusal
        body = await json_body(request) or {}
        version = body.get("version")
        if not isinstance(version, str) or not version:
            return problem(
                422,
                "Input validation failed",
                "- version is required",
                invalid_fields=[
                    {"type": "required", "field": "version", "description": "version is required"}
                ],
            )
        model, _, version_id = version.rpartition(":")
        if not model:  # a bare version id: the model that has it, if the catalog knows it
            known = replicate_model_for_version(version_id)
            if known is None:
                return problem(
                    422,
                    "Invalid version or not permitted",
                    "The specified version does not exist (or perhaps you don't have permission to use it?)",
                )
            model = str(known["id"])
        return await create(request, model, body, version_id)

    async def create_for_model(request: Request) -> Response:
        if (refusal := denied(request, "POST")) is not None:
            return refusal
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await create(request, model, await json_body(request) or {}, None)

    async def get(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        job = emu.jobs.get(request.path_params["prediction_id"])
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if job.fault == "malformed_json":
            return malformed_json()
        return JSONResponse(await prediction(request, job))

    async def cancel(request: Request) -> Response:
        if (refusal := denied(request, "POST")) is not None:
            return refusal
        job = emu.jobs.get(request.path_params["prediction_id"])
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        emu.cancel(job)
        return JSONResponse(await prediction(request, job))

    async def get_model(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        model = find("replicate", f"{request.path_params['owner']}/{request.path_params['name']}")
        if model is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        return JSONResponse(replicate_model(model, str(request.base_url).rstrip("/")))

    async def get_version(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        model = find("replicate", f"{request.path_params['owner']}/{request.path_params['name']}")
        version = replicate_version(model) if model is not None else None
        if version is None or version["id"] != request.path_params["version_id"]:
            return problem(404, "Not found", "The requested resource could not be found.")
        return JSONResponse(version)

    def page(results: list[Any]) -> JSONResponse:
        # Replicate's list answers: {next, previous, results}; one page holds everything here.
        return JSONResponse({"next": None, "previous": None, "results": results})

    async def list_models(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        base = str(request.base_url).rstrip("/")
        return page([replicate_model(m, base) for m in models_of("replicate")])

    async def list_versions(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        model = find("replicate", f"{request.path_params['owner']}/{request.path_params['name']}")
        if model is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        return page([replicate_version(model)])

    async def list_predictions(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        newest_first = sorted(emu.jobs.values(), key=lambda job: -job.created)
        return page([await prediction(request, job) for job in newest_first])

    def collection(base: str, summary: bool) -> dict[str, Any]:
        out: dict[str, Any] = dict(COLLECTION)
        if not summary:
            out["models"] = [replicate_model(m, base) for m in models_of("replicate")]
        return out

    async def list_collections(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        return page([collection(str(request.base_url).rstrip("/"), summary=True)])

    async def get_collection(request: Request) -> Response:
        if (refusal := denied(request, "GET")) is not None:
            return refusal
        if request.path_params["slug"] != COLLECTION["slug"]:
            return problem(404, "Not found", "The requested resource could not be found.")
        return JSONResponse(collection(str(request.base_url).rstrip("/"), summary=False))

    app = Starlette(
        routes=[
            FILE_ROUTE,
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{owner}/{name}/versions", list_versions, methods=["GET"]),
            Route("/v1/predictions", list_predictions, methods=["GET"]),
            Route("/v1/collections", list_collections, methods=["GET"]),
            Route("/v1/collections/{slug}", get_collection, methods=["GET"]),
            Route("/v1/models/{owner}/{name}", get_model, methods=["GET"]),
            Route("/v1/models/{owner}/{name}/versions/{version_id}", get_version, methods=["GET"]),
            Route("/v1/predictions", create_versioned, methods=["POST"]),
            Route("/v1/models/{owner}/{name}/predictions", create_for_model, methods=["POST"]),
            Route("/v1/predictions/{prediction_id}", get, methods=["GET"]),
            Route("/v1/predictions/{prediction_id}/cancel", cancel, methods=["POST"]),
        ]
    )

    async def no_route(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        title = "Method not allowed" if status == 405 else "Not found"
        return problem(status, title, "The requested resource could not be found.")

    app.add_exception_handler(404, no_route)
    app.add_exception_handler(405, no_route)
    app.state.emu = emu
    return mark_emulator(app, "replicate")

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

from bench.emulators.catalog import (
    find,
    models_of,
    replicate_model,
    replicate_model_for_version,
    replicate_version,
)
from bench.emulators.common import (
    EmulatorState,
    Knobs,
    base_url,
    bearer,
    int_param,
    json_body,
    malformed_json,
)
from bench.emulators.jobs import Job, Phase, status_words
from bench.emulators.routes import Protocol, Routes
from bench.emulators.validate import Problem, problems

NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
STATUS = status_words(queued="starting", running="processing", done="succeeded", cancelled="canceled")


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


def not_found() -> JSONResponse:
    return problem(404, "Not found", "The requested resource could not be found.")


def invalid(found: list[Problem]) -> JSONResponse:
    """Replicate's 422 for an input its schema refuses: a detail line per field, and invalid_fields."""
    return problem(
        422,
        "Input validation failed",
        "\n".join(f"- input.{path}: {msg}" for path, _, msg in found),
        invalid_fields=[
            {"type": kind, "field": f"input.{path}", "description": f"{path}: {msg}"}
            for path, kind, msg in found
        ],
    )


def required(field: str) -> JSONResponse:
    return problem(
        422,
        "Input validation failed",
        f"- {field} is required",
        invalid_fields=[
            {"type": "required", "field": field, "description": f"{field.split('.')[-1]} is required"}
        ],
    )


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())

    def throttled(retry_after: dict[str, str]) -> JSONResponse:
        detail = f"Request was throttled. Your rate limit resets in ~{emu.knobs.retry_after_s:g}s."
        response = problem(429, "Too Many Requests", detail)
        response.headers.update(retry_after)
        return response

    routes = Routes(
        emu,
        Protocol(
            name="replicate",
            key=bearer,
            unauthorized=lambda _key: problem(
                401, "Unauthenticated", "You did not pass a valid authentication token"
            ),
            unknown_job=not_found,
            rate_limited=throttled,
            server_failed=lambda status: problem(
                status, "Internal Server Error" if status == 500 else "Service Unavailable", "try again"
            ),
            job_param="prediction_id",
        ),
    )

    async def prediction(request: Request, job: Job) -> dict[str, Any]:
        base = base_url(request)
        phase = job.phase()
        out: dict[str, Any] = {
            "id": job.id,
            "model": job.extra["model"],
            "version": job.extra.get("version") or "",
            "input": job.extra["input"],
            "logs": "",
            "output": None,
            "error": None,
            "status": STATUS[phase],
            "created_at": _iso(job.created_wall),
            "started_at": _iso(job.created_wall + job.queue_s) if phase != Phase.QUEUED else None,
            "completed_at": None,
            "data_removed": False,
            "metrics": {},
            "urls": {
                "get": f"{base}/v1/predictions/{job.id}",
                "cancel": f"{base}/v1/predictions/{job.id}/cancel",
                "web": f"{base}/p/{job.id}",
            },
        }
        if phase.finished:
            out["completed_at"] = _iso(job.created_wall + job.queue_s + job.inference_s)
        if phase == Phase.DONE:
            out["metrics"] = {"predict_time": job.inference_s}
            if job.refused:
                out.update(status="failed", error=NSFW_ERROR)
            elif job.fault != "missing_field":
                urls = await emu.urls(job, request)
                out["output"] = urls if job.extra["list_output"] else urls[0]
        return out

    async def create(request: Request, model: str, body: Mapping[str, Any], version: str | None) -> Response:
        payload = body.get("input")
        if not isinstance(payload, Mapping) or not isinstance(payload.get("prompt"), str):
            return required("input.prompt")
        known = find("replicate", model)
        if known is None:
            return not_found()
        document = replicate_version(known)["openapi_schema"]
        found = problems(document, document["components"]["schemas"]["Input"], dict(payload))
        if found:
            return invalid(found)
        job = emu.job_from_payload(payload, count_key="num_outputs")
        # flux-schnell/dev answer a list of URLs; flux-1.1-pro a single URL string.
        job.extra.update(model=model, version=version, input=dict(payload), list_output="pro" not in model)
        if (failure := routes.fault_answer(job)) is not None:
            return failure
        await emu.wait_until_done(job, prefer_wait_s(request.headers.get("prefer")))
        if job.fault == "malformed_json":
            return malformed_json()
        return JSONResponse(await prediction(request, job), status_code=201)

    async def create_versioned(request: Request) -> Response:
        body = await json_body(request) or {}
        version = body.get("version")
        if not isinstance(version, str) or not version:
            return required("version")
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
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await create(request, model, await json_body(request) or {}, None)

    async def get(request: Request, job: Job) -> Response:
        if job.fault == "malformed_json":
            return malformed_json()
        return JSONResponse(await prediction(request, job))

    async def cancel(request: Request, job: Job) -> Response:
        emu.cancel(job)
        return JSONResponse(await prediction(request, job))

    def model_of(request: Request) -> dict[str, Any] | None:
        return find("replicate", f"{request.path_params['owner']}/{request.path_params['name']}")

    async def get_model(request: Request) -> Response:
        model = model_of(request)
        return not_found() if model is None else JSONResponse(replicate_model(model, base_url(request)))

    async def get_version(request: Request) -> Response:
        model = model_of(request)
        version = replicate_version(model) if model is not None else None
        if version is None or version["id"] != request.path_params["version_id"]:
            return not_found()
        return JSONResponse(version)

    def page(results: list[Any]) -> JSONResponse:
        # Replicate's list answers: {next, previous, results}; one page holds everything here.
        return JSONResponse({"next": None, "previous": None, "results": results})

    async def list_models(request: Request) -> Response:
        return page([replicate_model(m, base_url(request)) for m in models_of("replicate")])

    async def list_versions(request: Request) -> Response:
        model = model_of(request)
        return not_found() if model is None else page([replicate_version(model)])

    async def list_predictions(request: Request) -> Response:
        newest_first = sorted(emu.jobs.values(), key=lambda job: -job.created)
        return page([await prediction(request, job) for job in newest_first])

    def collection(base: str, summary: bool) -> dict[str, Any]:
        out: dict[str, Any] = dict(COLLECTION)
        if not summary:
            out["models"] = [replicate_model(m, base) for m in models_of("replicate")]
        return out

    async def list_collections(request: Request) -> Response:
        return page([collection(base_url(request), summary=True)])

    async def get_collection(request: Request) -> Response:
        if request.path_params["slug"] != COLLECTION["slug"]:
            return not_found()
        return JSONResponse(collection(base_url(request), summary=False))

    app = routes.app(
        [
            routes.keyed("/v1/models", list_models),
            routes.keyed("/v1/models/{owner}/{name}/versions", list_versions),
            routes.keyed("/v1/predictions", list_predictions),
            routes.keyed("/v1/collections", list_collections),
            routes.keyed("/v1/collections/{slug}", get_collection),
            routes.keyed("/v1/models/{owner}/{name}", get_model),
            routes.keyed("/v1/models/{owner}/{name}/versions/{version_id}", get_version),
            routes.keyed("/v1/predictions", create_versioned, "POST"),
            routes.keyed("/v1/models/{owner}/{name}/predictions", create_for_model, "POST"),
            routes.job("/v1/predictions/{prediction_id}", get),
            routes.job("/v1/predictions/{prediction_id}/cancel", cancel, "POST"),
        ]
    )

    async def no_route(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 404)
        title = "Method not allowed" if status == 405 else "Not found"
        return problem(status, title, "The requested resource could not be found.")

    app.add_exception_handler(404, no_route)
    app.add_exception_handler(405, no_route)
    return app

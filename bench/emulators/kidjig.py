"""Emulator of KidJig's image API (docs/provider-protocols.md §5).

Paths, the X-Api-Key header and the error body {"error": {code, message}} are
documented; the bodies inside the {"success", "message", "data"} envelope are
not, so this emulator answers with the names the adapter reads first
(data.request_id, data.status, data.images[{url}], data.cost) [inferred].
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.emulators.common import (
    FILE_ROUTE,
    EmulatorState,
    Job,
    Knobs,
    json_body,
    malformed_json,
    mark_emulator,
    rate_limit_headers,
)

API = "/provider/api/v1/image"
STATUS = {"queued": "pending", "running": "processing", "done": "completed", "cancelled": "failed"}
OK = "Request processed successfully"


def envelope(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"success": True, "message": OK, "data": data})


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())

    def check(request: Request, method: str) -> JSONResponse | None:
        emu.calls.append(f"{method} {request.url.path}")
        if not emu.key_ok(request.headers.get("x-api-key")):
            return error(401, "invalid_api_key", "Invalid API key")
        return None

    def find(request: Request) -> Job | JSONResponse:
        job = emu.jobs.get(request.path_params["request_id"])
        return job if job is not None else error(404, "not_found", "Request not found")

    async def generate(request: Request) -> Response:
        if (denied := check(request, "POST")) is not None:
            return denied
        body = await json_body(request)
        if body is None or not isinstance(body.get("prompt"), str):
            return error(400, "invalid_request", "prompt is required")
        job = emu.job_from_payload(body, steps_key="steps", count=1)
        if job.fault == "rate_limit":
            return error(429, "rate_limit_exceeded", "Rate limit exceeded", rate_limit_headers(emu.knobs))
        if job.fault in ("server_error", "unavailable"):
            return error(
                500 if job.fault == "server_error" else 503, "internal_error", "Something went wrong"
            )
        return envelope({"request_id": job.id, "status": "pending"})

    async def status(request: Request) -> Response:
        if (denied := check(request, "GET")) is not None:
            return denied
        job = find(request)
        if isinstance(job, Response):
            return job
        data: dict[str, Any] = {"request_id": job.id, "status": STATUS[job.phase()]}
        if job.phase() == "done" and job.refused:
            data.update(
                status="failed",
                error={
                    "code": "content_policy_violation",
                    "message": "The prompt was flagged by content moderation",
                },
            )
        return envelope(data)

    async def result(request: Request) -> Response:
        if (denied := check(request, "GET")) is not None:
            return denied
        job = find(request)
        if isinstance(job, Response):
            return job
        if job.phase() == "cancelled" or (job.phase() == "done" and job.refused):
            # A failed job has no result: its status says why, and no image is ever served for it.
            return error(422, "request_failed", "The request failed; see its status for the reason")
        if job.phase() != "done":
            return error(409, "not_ready", "The request has not completed")
        if job.fault == "malformed_json":
            return malformed_json()
        data: dict[str, Any] = {"request_id": job.id, "status": "completed"}
        if job.fault != "missing_field":
            data["images"] = [{"url": url} for url in await emu.urls(job, request)]
        if emu.knobs.report_cost:
            data["cost"] = emu.cost_usd(job, per_megapixel=0.06)
        return envelope(data)

    app = Starlette(
        routes=[
            FILE_ROUTE,
            Route(API + "/generate/{model_id}", generate, methods=["POST"]),
            Route(API + "/status/{model_id}/{request_id}", status, methods=["GET"]),
            Route(API + "/result/{model_id}/{request_id}", result, methods=["GET"]),
        ]
    )
    app.state.emu = emu
    return mark_emulator(app, "kidjig")

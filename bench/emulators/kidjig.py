"""Emulator of KidJig's image API (docs/provider-protocols.md §5).

Paths, the X-Api-Key header and the error body {"error": {code, message}} are
documented; the bodies inside the {"success", "message", "data"} envelope are
not, so this emulator answers with the names the adapter reads first
(data.request_id, data.status, data.images[{url}], data.cost) [inferred]. A model id
outside KidJig's shipped catalog is refused with 404 and code model_not_found [inferred:
KidJig documents no such answer; the code and status are what its error body would carry].
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.catalog.shipped import shipped_document
from bench.emulators.common import EmulatorState, Knobs, json_body, malformed_json
from bench.emulators.jobs import Job, Phase, status_words
from bench.emulators.routes import Protocol, Routes

API = "/provider/api/v1/image"
STATUS = status_words(queued="pending", running="processing", done="completed", cancelled="failed")
OK = "Request processed successfully"


def envelope(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"success": True, "message": OK, "data": data})


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def served_models() -> frozenset[str]:
    """The model ids this emulator serves: KidJig's shipped catalog (it publishes no model list)."""
    return frozenset(str(m["slug"]) for m in shipped_document("kidjig")["models"])


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())
    routes = Routes(
        emu,
        Protocol(
            name="kidjig",
            key=lambda request: request.headers.get("x-api-key"),
            unauthorized=lambda _key: error(401, "invalid_api_key", "Invalid API key"),
            unknown_job=lambda: error(404, "not_found", "Request not found"),
            rate_limited=lambda retry_after: error(
                429, "rate_limit_exceeded", "Rate limit exceeded", retry_after
            ),
            server_failed=lambda status: error(status, "internal_error", "Something went wrong"),
        ),
    )

    async def generate(request: Request) -> Response:
        body = await json_body(request)
        if body is None or not isinstance(body.get("prompt"), str):
            return error(400, "invalid_request", "prompt is required")
        model = request.path_params["model_id"]
        if model not in served_models():  # KidJig documents no such answer: its error body, inferred
            return error(404, "model_not_found", f"Model '{model}' not found")
        job = emu.job_from_payload(body, steps_key="steps", count=1)
        if (failure := routes.fault_answer(job)) is not None:
            return failure
        return envelope({"request_id": job.id, "status": "pending"})

    async def status(request: Request, job: Job) -> Response:
        data: dict[str, Any] = {"request_id": job.id, "status": job.status(STATUS)}
        if job.phase() == Phase.DONE and job.refused:
            data.update(
                status="failed",
                error={
                    "code": "content_policy_violation",
                    "message": "The prompt was flagged by content moderation",
                },
            )
        return envelope(data)

    async def result(request: Request, job: Job) -> Response:
        phase = job.phase()
        if phase == Phase.CANCELLED or (phase == Phase.DONE and job.refused):
            # A failed job has no result: its status says why, and no image is ever served for it.
            return error(422, "request_failed", "The request failed; see its status for the reason")
        if phase != Phase.DONE:
            return error(409, "not_ready", "The request has not completed")
        if job.fault == "malformed_json":
            return malformed_json()
        data: dict[str, Any] = {"request_id": job.id, "status": "completed"}
        if job.fault != "missing_field":
            data["images"] = [{"url": url} for url in await emu.urls(job, request)]
        if emu.knobs.report_cost:
            data["cost"] = emu.cost_usd(job, per_megapixel=0.06)
        return envelope(data)

    return routes.app(
        [
            routes.keyed(API + "/generate/{model_id}", generate, "POST"),
            routes.job(API + "/status/{model_id}/{request_id}", status),
            routes.job(API + "/result/{model_id}/{request_id}", result),
        ]
    )

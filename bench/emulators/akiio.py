"""Emulator of AKI.IO / the AIME API server (docs/provider-protocols.md §3).

POST /api/call/{endpoint} with the key in the body; wait_for_result true (default)
answers the final result, false answers a job_id to poll at POST
/api/progress/{endpoint} ({"cancel": true} cancels). Errors are
{"success": false, "error": ..., "ep_version"}; `errors_as_200=True` sends them
with HTTP 200, as some AKI.IO errors are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.emulators.catalog import models_of
from bench.emulators.common import EmulatorState, Knobs, int_param, json_body, malformed_json
from bench.emulators.jobs import Job, Phase, status_words
from bench.emulators.routes import Protocol, Routes

PROGRESS_STATE = status_words(queued="queued", running="processing", done="done", cancelled="canceled")
# AKI.IO publishes no refusal text; this one is what the emulator sends (inferred).
REFUSAL_TEXT = "Prompt rejected by the content safety filter"


def create_app(
    knobs: Knobs | None = None, errors_as_200: bool = False, endpoints: tuple[str, ...] | None = None
) -> Starlette:
    endpoints = tuple(endpoints if endpoints is not None else models_of("akiio"))
    emu = EmulatorState(knobs or Knobs())

    def error(status: int, message: str | list[str]) -> JSONResponse:
        return JSONResponse(
            {"success": False, "error": message, "ep_version": 0},
            status_code=200 if errors_as_200 else status,
        )

    # The key travels in the JSON body of calls (checked below) and in the query of GETs.
    routes = Routes(
        emu,
        Protocol(
            name="akiio",
            key=lambda request: request.query_params.get("key"),
            unauthorized=lambda _key: error(401, "Invalid API key"),
            # The AIME server's words for a full queue; it sends no Retry-After.
            rate_limited=lambda _retry_after: error(400, "Job queue reached max length 100!"),
            server_failed=lambda status: (
                error(500, "Internal server error") if status == 500 else error(400, "Endpoint disabled!")
            ),
        ),
    )

    async def checked_body(request: Request) -> Mapping[str, Any] | Response:
        if request.path_params["endpoint"] not in endpoints:
            return error(404, "Endpoint disabled or no free queue slot")
        body = await json_body(request)
        if body is None:
            return error(400, "Request body is not valid JSON")
        if not emu.key_ok(body.get("key") if isinstance(body.get("key"), str) else None):
            return error(401, "Invalid API key")
        return body

    async def result(job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {
            "success": True,
            "job_id": job.id,
            "ep_version": 0,
            "seed": job.seed,
            "prompt": job.prompt,
            "compute_duration": job.inference_s,
            "pending_duration": job.queue_s,
            "total_duration": job.queue_s + job.inference_s,
            "worker_interface_version": "AIME-API-Worker-Interface 0.8.0",
        }
        if job.fault != "missing_field":
            out["images"] = await emu.data_uris(job, "image/PNG")
        return out

    async def call(request: Request) -> Response:
        body = await checked_body(request)
        if isinstance(body, Response):
            return body
        if not isinstance(body.get("prompt"), str):
            return error(400, ["Parameter 'prompt' is required"])
        job = emu.new_job(
            body["prompt"],
            width=int_param(body.get("width"), 1024),
            height=int_param(body.get("height"), 1024),
            seed=int_param(body.get("seed"), -1),
            steps=int_param(body.get("steps"), 4),
        )
        if (failure := routes.fault_answer(job)) is not None:
            return failure
        if job.refused:
            return error(400, REFUSAL_TEXT)
        if body.get("wait_for_result", True) is False:
            return JSONResponse({"success": True, "job_id": job.id, "ep_version": 0})
        await emu.wait_sync(job)
        if job.fault == "malformed_json":
            return malformed_json()
        return JSONResponse(await result(job))

    async def progress(request: Request) -> Response:
        body = await checked_body(request)
        if isinstance(body, Response):
            return body
        job = emu.job(str(body.get("job_id")))
        if job is None:
            return error(402, "Unknown job_id")
        if body.get("cancel") is True:
            emu.cancel(job)
        if job.fault == "malformed_json":
            return malformed_json()
        phase = job.phase()
        out: dict[str, Any] = {
            "success": True,
            "job_id": job.id,
            "ep_version": 0,
            "job_state": PROGRESS_STATE[phase],
        }
        if not phase.finished:
            out["progress"] = {
                "progress": 0 if phase == Phase.QUEUED else 50,
                "queue_position": 0,
                "estimate": job.inference_s,
                "progress_data": {},
            }
        elif phase == Phase.DONE:
            out["job_result"] = await result(job)
        return JSONResponse(out)

    async def list_endpoints(request: Request) -> Response:
        return JSONResponse({"success": True, "endpoints": list(endpoints)})

    async def get_endpoint(request: Request) -> Response:
        name = request.path_params["endpoint"]
        if name not in endpoints:
            return error(404, f"Endpoint {name} not found")
        return JSONResponse(
            {
                "success": True,
                "endpoint_name": name,
                "title": name,
                "description": "image generation endpoint",
            }
        )

    return routes.app(
        [
            routes.open("/api/call/{endpoint}", call, "POST"),
            routes.open("/api/progress/{endpoint}", progress, "POST"),
            routes.keyed("/api/endpoints", list_endpoints),
            routes.keyed("/api/endpoints/{endpoint}", get_endpoint),
        ]
    )

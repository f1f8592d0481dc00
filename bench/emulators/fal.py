"""Emulator of fal.ai's queue API (docs/provider-protocols.md §7).

POST /{owner}/{app}[/{path}] submits; GET .../requests/{id}/status answers 202
until COMPLETED (then 200); GET .../requests/{id} gives the result; PUT
.../requests/{id}/cancel cancels. Follow-up URLs omit the endpoint subpath, as fal's do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.emulators.catalog import fal_openapi, fal_routes, find
from bench.emulators.common import EmulatorState, Knobs, base_url, json_body, malformed_json
from bench.emulators.jobs import Job, Phase
from bench.emulators.routes import Protocol, Routes, fault_answer
from bench.emulators.validate import problems

REFUSAL = [
    {
        "loc": ["body", "prompt"],
        "msg": "The content could not be processed because it was flagged by a content checker.",
        "type": "content_policy_violation",
    }
]


# What fal's model pages say about megapixel prices: "Images are billed by rounding up to the
# nearest megapixel", a megapixel being 1024x1024 px (fal quotes flux/dev at $0.025 a 1024x1024 image).
FAL_MEGAPIXEL_PX = 1024 * 1024


def billed_usd(job: Job) -> float:
    """What fal bills for one finished job: its endpoint's published price (the pricing API's
    unit_price and unit), per image or per megapixel of each image rounded up."""
    model = find("fal", str(job.extra.get("endpoint", "")))
    if model is None:
        raise KeyError(f"no published price for {job.extra.get('endpoint')!r}")
    price, unit = float(model["price"]["unit_price"]), model["price"]["unit"]
    if unit == "images":
        return price * job.num_images
    if unit == "megapixels":
        return price * math.ceil(job.width * job.height / FAL_MEGAPIXEL_PX) * job.num_images
    raise ValueError(f"fal emulator: unit {unit!r} has no billing rule")


def rate_limited(retry_after: dict[str, str]) -> JSONResponse:
    return JSONResponse(
        {"detail": "Rate limit exceeded", "error_type": "rate_limited"},
        status_code=429,
        headers={**retry_after, "X-Fal-Error-Type": "rate_limited"},
    )


def server_failed(status: int) -> JSONResponse:
    error_type = "internal_server_error" if status == 500 else "runner_scheduling_failure"
    return JSONResponse(
        {"detail": "The request could not be scheduled", "error_type": error_type},
        status_code=status,
        headers={"X-Fal-Error-Type": error_type, "X-Fal-Retryable": "true"},
    )


def key_of(request: Request) -> str | None:
    """fal's `Authorization: Key <key>`; any other scheme is no key."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme == "Key" else None


def refused() -> JSONResponse:
    return JSONResponse({"detail": REFUSAL}, status_code=422, headers={"X-Fal-Retryable": "false"})


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())
    protocol = Protocol(
        name="fal",
        key=key_of,
        unauthorized=lambda _key: JSONResponse(
            {"detail": "Cannot access application: invalid key"}, status_code=401
        ),
        unknown_job=lambda: JSONResponse({"detail": "Request not found"}, status_code=404),
        rate_limited=rate_limited,
        server_failed=server_failed,
    )
    routes = Routes(emu, protocol)

    async def accept(request: Request) -> Job | JSONResponse:
        """A job for a valid request to an endpoint (queue or synchronous), else the refusal."""
        body = await json_body(request)
        if body is None or not isinstance(body.get("prompt"), str):
            detail = [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]
            return JSONResponse({"detail": detail}, status_code=422)
        refusal = refuse_invalid(request.path_params["model_path"], body)
        if refusal is not None:
            return refusal
        job = emu.job_from_payload(body)
        job.extra["sync_mode"] = body.get("sync_mode") is True
        job.extra["endpoint"] = request.path_params["model_path"]
        return job

    async def images_answer(request: Request, job: Job) -> JSONResponse:
        refs = await (emu.data_uris(job) if job.extra.get("sync_mode") else emu.urls(job, request))
        return JSONResponse(
            {
                "images": [
                    {"url": ref, "width": job.width, "height": job.height, "content_type": "image/png"}
                    for ref in refs
                ],
                "timings": {"inference": job.inference_s},
                "seed": job.seed,
                "has_nsfw_concepts": [False] * len(refs),
                "prompt": job.prompt,
            }
        )

    async def submit(request: Request) -> Response:
        job = await accept(request)
        if not isinstance(job, Job):
            return job
        if (failure := fault_answer(protocol, emu.knobs, emu.fault_at(job, "submit"))) is not None:
            return failure
        app = "/".join(request.path_params["model_path"].split("/")[:2])
        follow = f"{base_url(request)}/{app}/requests/{job.id}"
        return JSONResponse(
            {
                "request_id": job.id,
                "response_url": follow,
                "status_url": f"{follow}/status",
                "cancel_url": f"{follow}/cancel",
                "queue_position": 0,
                "status": "IN_QUEUE",
            }
        )

    def refuse_invalid(endpoint: str, body: Mapping[str, Any]) -> JSONResponse | None:
        """An unknown endpoint (404) or a body its served OpenAPI input refuses (422, fal's
        {"detail": [{loc, msg, type}]}), as the real queue does."""
        model = find("fal", endpoint)
        if model is None:
            return JSONResponse({"detail": f"Application {endpoint!r} not found"}, status_code=404)
        document = fal_openapi(model)
        schema = document["paths"][f"/{endpoint}"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
        found = problems(document, schema, dict(body))
        if not found:
            return None
        detail = [{"loc": ["body", *path.split(".")], "msg": msg, "type": kind} for path, kind, msg in found]
        return JSONResponse({"detail": detail}, status_code=422, headers={"X-Fal-Retryable": "false"})

    async def status(request: Request, job: Job) -> Response:
        if (failure := fault_answer(protocol, emu.knobs, emu.fault_at(job, "status"))) is not None:
            return failure
        phase = job.phase()
        if phase == Phase.QUEUED:
            return JSONResponse({"status": "IN_QUEUE", "queue_position": 0}, status_code=202)
        if phase == Phase.RUNNING:
            return JSONResponse({"status": "IN_PROGRESS", "logs": []}, status_code=202)
        done: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": [],
            "metrics": {"inference_time": job.inference_s},
        }
        if phase == Phase.CANCELLED:
            done.update(error="Request was cancelled", error_type="request_cancelled")
        elif job.refused:
            done.update(error=REFUSAL[0]["msg"], error_type="content_policy_violation")
        return JSONResponse(done)

    async def result(request: Request, job: Job) -> Response:
        phase = job.phase()
        if not phase.finished:
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        if phase == Phase.CANCELLED:  # a cancelled request has no result, and never images
            return JSONResponse(
                {"detail": "Request was cancelled", "error_type": "request_cancelled"},
                status_code=400,
                headers={"X-Fal-Error-Type": "request_cancelled"},
            )
        if (failure := fault_answer(protocol, emu.knobs, emu.fault_at(job, "result"))) is not None:
            return failure
        if job.refused:
            return refused()
        if job.fault == "malformed_json":
            return malformed_json()
        if job.fault == "missing_field":
            return JSONResponse({"timings": {"inference": job.inference_s}, "seed": job.seed})
        return await images_answer(request, job)

    async def run_sync(request: Request) -> Response:
        """fal.run's synchronous POST https://fal.run/{model_id}: the result itself, when done.

        Served under /run/ (fal_client: RUN_URL_FORMAT = URL + "/run/"), the queue at the root."""
        job = await accept(request)
        if not isinstance(job, Job):
            return job
        await emu.wait_sync(job)
        return refused() if job.refused else await images_answer(request, job)

    async def cancel(request: Request, job: Job) -> Response:
        if job.phase().finished:  # a second cancel finds it finished
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        emu.cancel(job)
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    return routes.app(
        [
            *fal_routes(routes),
            routes.job("/{owner}/{app}/requests/{request_id}/status", status),
            routes.job(
                "/{owner}/{app}/requests/{request_id}/cancel",
                cancel,
                "PUT",
                unknown=lambda: JSONResponse({"status": "NOT_FOUND"}, status_code=404),
            ),
            routes.job("/{owner}/{app}/requests/{request_id}", result),
            routes.keyed("/run/{model_path:path}", run_sync, "POST"),
            routes.keyed("/{model_path:path}", submit, "POST"),
        ]
    )

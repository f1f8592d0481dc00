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
from starlette.routing import Route

from bench.emulators.catalog import fal_openapi, fal_routes, find
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
from bench.emulators.validate import problems

TRANSIENT = frozenset({"rate_limit", "server_error", "unavailable"})
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


def create_app(knobs: Knobs | None = None) -> Starlette:
    emu = EmulatorState(knobs or Knobs())

    def authorized(request: Request) -> bool:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        return scheme == "Key" and emu.key_ok(key.strip())

    def unauthorized() -> JSONResponse:
        return JSONResponse({"detail": "Cannot access application: invalid key"}, status_code=401)

    def job_or_none(request: Request) -> Job | None:
        return emu.jobs.get(request.path_params["request_id"])

    def not_found() -> JSONResponse:
        return JSONResponse({"detail": "Request not found"}, status_code=404)

    async def accept(request: Request) -> Job | JSONResponse:
        """A job for a valid request to an endpoint (queue or synchronous), else the refusal."""
        emu.calls.append(f"POST {request.url.path}")
        if not authorized(request):
            return unauthorized()
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
        if (failure := transient(job, "submit")) is not None:
            return failure
        app = "/".join(request.path_params["model_path"].split("/")[:2])
        follow = f"{str(request.base_url).rstrip('/')}/{app}/requests/{job.id}"
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

    def transient(job: Job, where: str) -> JSONResponse | None:
        """A rate limit or server error on this call, if the job carries one injected here.

        At status and result it is transient, as fal's are: the job's first such call fails,
        the next one answers."""
        if job.fault not in TRANSIENT or emu.knobs.fault_at != where:
            return None
        if where != "submit":
            if job.extra.get(f"faulted_{where}"):
                return None
            job.extra[f"faulted_{where}"] = True
        if job.fault == "rate_limit":
            return JSONResponse(
                {"detail": "Rate limit exceeded", "error_type": "rate_limited"},
                status_code=429,
                headers={**rate_limit_headers(emu.knobs), "X-Fal-Error-Type": "rate_limited"},
            )
        status = 500 if job.fault == "server_error" else 503
        error_type = "internal_server_error" if status == 500 else "runner_scheduling_failure"
        return JSONResponse(
            {"detail": "The request could not be scheduled", "error_type": error_type},
            status_code=status,
            headers={"X-Fal-Error-Type": error_type, "X-Fal-Retryable": "true"},
        )

    async def status(request: Request) -> Response:
        emu.calls.append(f"GET {request.url.path}")
        if not authorized(request):
            return unauthorized()
        job = job_or_none(request)
        if job is None:
            return not_found()
        if (failure := transient(job, "status")) is not None:
            return failure
        phase = job.phase()
        if phase == "queued":
            return JSONResponse({"status": "IN_QUEUE", "queue_position": 0}, status_code=202)
        if phase == "running":
            return JSONResponse({"status": "IN_PROGRESS", "logs": []}, status_code=202)
        done: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": [],
            "metrics": {"inference_time": job.inference_s},
        }
        if phase == "cancelled":
            done.update(error="Request was cancelled", error_type="request_cancelled")
        elif job.refused:
            done.update(error=REFUSAL[0]["msg"], error_type="content_policy_violation")
        return JSONResponse(done)

    async def result(request: Request) -> Response:
        emu.calls.append(f"GET {request.url.path}")
        if not authorized(request):
            return unauthorized()
        job = job_or_none(request)
        if job is None:
            return not_found()
        if job.phase() in ("queued", "running"):
            return JSONResponse({"detail": "Request is still in progress"}, status_code=400)
        if job.phase() == "cancelled":  # a cancelled request has no result, and never images
            return JSONResponse(
                {"detail": "Request was cancelled", "error_type": "request_cancelled"},
                status_code=400,
                headers={"X-Fal-Error-Type": "request_cancelled"},
            )
        if (failure := transient(job, "result")) is not None:
            return failure
        if job.refused:
            return JSONResponse({"detail": REFUSAL}, status_code=422, headers={"X-Fal-Retryable": "false"})
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
        if job.refused:
            return JSONResponse({"detail": REFUSAL}, status_code=422, headers={"X-Fal-Retryable": "false"})
        return await images_answer(request, job)

    async def cancel(request: Request) -> Response:
        emu.calls.append(f"PUT {request.url.path}")
        if not authorized(request):
            return unauthorized()
        job = job_or_none(request)
        if job is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        if job.phase() in ("done", "cancelled"):  # a second cancel finds it finished
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        emu.cancel(job)
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    app = Starlette(
        routes=[
            FILE_ROUTE,
            *fal_routes(authorized, emu.calls),
            Route("/{owner}/{app}/requests/{request_id}/status", status, methods=["GET"]),
            Route("/{owner}/{app}/requests/{request_id}/cancel", cancel, methods=["PUT"]),
            Route("/{owner}/{app}/requests/{request_id}", result, methods=["GET"]),
            Route("/run/{model_path:path}", run_sync, methods=["POST"]),
            Route("/{model_path:path}", submit, methods=["POST"]),
        ]
    )
    app.state.emu = emu
    return mark_emulator(app, "fal")

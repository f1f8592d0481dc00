"""Emulator of the Eachlabs predictions API (docs/provider-protocols.md §1).

GET /v1/model?slug=SLUG -> {title, slug, version, output_type, request_schema} (the documented
answer: no price in it);
POST /v1/prediction[/] {model, version, input} -> {status, message, predictionID};
GET /v1/prediction/{id} -> {id, input, status, output, logs, metrics{predict_time, cost}, urls};
POST /v1/prediction/{id}/cancel. Auth by X-API-Key or Bearer. Run failures are
status "error" with output {error_code, error_message}; `legacy=True` uses the
older status "failed" with a plain-string output.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bench.catalog.eachlabs import load_eachlabs_document
from bench.emulators.catalog import eachlabs_model, eachlabs_output_type, find
from bench.emulators.common import EmulatorState, Knobs, base_url, bearer, json_body, malformed_json
from bench.emulators.jobs import Job, Phase, status_words
from bench.emulators.routes import Protocol, Routes
from bench.emulators.validate import problems


def seed_model(slug: str) -> dict[str, Any] | None:
    """A model of Eachlabs' published catalog (seed 001) the emulator's own list lacks, in its form."""
    document = load_eachlabs_document()
    entry = next((m for m in document["models"] if m["slug"] == slug), None)
    if entry is None:
        return None
    params = []
    for p in entry["params"]:
        row: dict[str, Any] = {"name": p["name"], "type": p["type"], "required": p["required"]}
        if p.get("options") is not None and p.get("options_complete", True):
            row["enum"] = p["options"]
        row.update({k: p[k] for k in ("min", "max", "default") if p.get(k) is not None})
        params.append(row)
    return {"id": slug, "title": entry.get("title", slug), "params": params}


def status_of(job: Job, phase: Phase) -> str:
    """created (just accepted), then starting (a worker is being found), processing, ..."""
    if phase == Phase.QUEUED and job.elapsed_s() < job.queue_s / 2:
        return "created"
    return STATUS[phase]


STATUS = status_words(queued="starting", running="processing", done="success", cancelled="cancelled")
REJECTED = "Content rejected by the provider's safety filter"
MODEL_NOT_FOUND = "Failed to fetch model: model not found"


def create_app(knobs: Knobs | None = None, legacy: bool = False) -> Starlette:
    emu = EmulatorState(knobs or Knobs())
    routes = Routes(
        emu,
        Protocol(
            name="eachlabs",
            key=lambda request: request.headers.get("x-api-key") or bearer(request),
            unauthorized=lambda _key: JSONResponse({"error": "Invalid or missing API key"}, status_code=401),
            unknown_job=lambda: JSONResponse({"error": "Prediction not found"}, status_code=404),
            rate_limited=lambda retry_after: JSONResponse(
                {
                    "status": 429,
                    "error": "too many requests",
                    "details": "Account rate limited: 10 concurrent",
                },
                status_code=429,
                headers=retry_after,
            ),
            server_failed=lambda status: JSONResponse({"error": "internal server error"}, status_code=status),
            job_param="prediction_id",
        ),
    )

    async def create(request: Request) -> Response:
        body = await json_body(request)
        payload = body.get("input") if body is not None else None
        if body is None or not isinstance(body.get("model"), str) or not isinstance(payload, dict):
            return JSONResponse({"error": "model and input are required"}, status_code=400)
        if not isinstance(payload.get("prompt"), str):
            return JSONResponse({"error": "input.prompt is required"}, status_code=422)
        known = find("eachlabs", body["model"]) or seed_model(body["model"])
        if known is None:
            return JSONResponse({"error": MODEL_NOT_FOUND}, status_code=404)
        schema = eachlabs_model(known)["request_schema"]
        found = problems(schema, schema, dict(payload))
        if found:  # errors.mdx: 422 with {"error": "..."}
            text = "; ".join(f"input.{path}: {msg}" for path, _, msg in found)
            return JSONResponse({"error": f"Input validation failed: {text}"}, status_code=422)
        job = emu.job_from_payload(payload)
        job.extra.update(input=payload, model=body["model"])
        if (failure := routes.fault_answer(job)) is not None:
            return failure
        return JSONResponse(
            {"status": "success", "message": "Prediction created successfully", "predictionID": job.id}
        )

    async def prediction(request: Request, job: Job) -> dict[str, Any]:
        get_url = f"{base_url(request)}/v1/prediction/{job.id}"
        phase = job.phase()
        out: dict[str, Any] = {
            "id": job.id,
            "input": job.extra["input"],
            "status": status_of(job, phase),
            "output": None,
            "logs": None,
            "metrics": {},
            "urls": {"cancel": f"{get_url}/cancel", "get": get_url},
        }
        if phase != Phase.DONE:
            return out
        out["metrics"] = {"predict_time": job.inference_s}
        if emu.knobs.report_cost and not job.refused:  # a refused prediction is not billed
            out["metrics"]["cost"] = emu.cost_usd(job, per_megapixel=0.012)
        if job.refused:
            out["status"] = "failed" if legacy else "error"
            out["output"] = (
                REJECTED if legacy else {"error_code": "PROVIDER_REJECTED", "error_message": REJECTED}
            )
        elif job.fault != "missing_field":
            sync = job.extra["input"].get("sync_mode") is True
            refs = await (emu.data_uris(job) if sync else emu.urls(job, request))
            # A catalog model answers in its published output_type; others as before (a list only
            # for several images).
            known = find("eachlabs", str(job.extra.get("model")))
            as_list = job.num_images > 1 or (known is not None and eachlabs_output_type(known) == "array")
            out["output"] = refs if as_list else refs[0]
        return out

    async def get(request: Request, job: Job) -> Response:
        if job.fault == "malformed_json" and job.phase() == Phase.DONE:
            return malformed_json()
        return JSONResponse(await prediction(request, job))

    async def cancel(request: Request, job: Job) -> Response:
        emu.cancel(job)
        return JSONResponse({"status": "success", "message": "Prediction cancelled"})

    async def get_model(request: Request) -> Response:
        # GET /v1/model?slug=SLUG (openapi_specs/models.json, api/models/get-model.mdx).
        slug = request.query_params.get("slug")
        if not slug:
            return JSONResponse({"error": "slug parameter is required"}, status_code=400)
        model = find("eachlabs", slug) or seed_model(slug)
        if model is None:
            return JSONResponse({"error": MODEL_NOT_FOUND}, status_code=404)
        return JSONResponse(eachlabs_model(model))

    return routes.app(
        [
            routes.open("/v1/model", get_model),
            routes.keyed("/v1/prediction", create, "POST"),
            routes.keyed("/v1/prediction/", create, "POST"),
            routes.job("/v1/prediction/{prediction_id}", get),
            routes.job("/v1/prediction/{prediction_id}/cancel", cancel, "POST"),
        ]
    )

"""What every protocol emulator shares: knobs, fault injection, jobs, image files, auth checks.

An emulator is a Starlette app that speaks one provider's documented protocol on
127.0.0.1. Images come from the local generator, so the picture follows the
prompt and CLIP scores over an emulated run mean something. Each app keeps an
`EmulatorState` (app.state.emu) that tests read: which calls came, which jobs
were cancelled, which jobs were billed.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.providers.observe import EMULATOR_HEADER

# Injectable faults. Each protocol renders them in its own documented error shape.
FAULTS: tuple[str, ...] = (
    "rate_limit",  # 429 with Retry-After
    "server_error",  # 500
    "unavailable",  # 503
    "slow",  # answers, but after `slow_s` more
    "hang",  # never finishes (sync: holds the connection; async: the job stays running)
    "refuse",  # content-policy refusal
    "malformed_json",  # a 200 whose body is not JSON
    "bad_image",  # the image bytes do not decode
    "expired_url",  # the image URL answers 404
    "missing_field",  # a JSON answer without the image field
)


@dataclass(frozen=True)
class Knobs:
    """How an emulator behaves. Latencies are uniform in [lo, hi] seconds."""

    queue_s: tuple[float, float] = (0.0, 0.0)
    inference_s: tuple[float, float] = (0.0, 0.0)
    fault: str | None = None
    fault_rate: float = 1.0  # share of submissions that get the fault
    fault_first: int | None = None  # only the first N submissions get it (retries, then success)
    retry_after_s: float = 1.0
    slow_s: float = 1.0
    hang_s: float = 300.0  # how long a hung sync request holds the connection
    report_cost: bool = True
    # Reported costs count each image's megapixels rounded up to whole units of this many pixels
    # (a provider that rounds, as fal does with 1024x1024-px megapixels); None: not rounded.
    cost_round_up_px: int | None = None
    api_key: str | None = None  # None: any non-empty key is accepted
    refuse_word: str = "REFUSE"  # prompts containing this word are refused, whatever the fault
    max_side_px: int = 256  # images are rendered no larger than this (tests use 64)
    rng_seed: int = 0
    # Where a transient fault (rate_limit, server_error, unavailable) answers: at "submit", or,
    # on queue APIs that have them, at the "status" or "result" call of the job it hit.
    fault_at: str = "submit"
    # Models whose images are drawn with every colour gray (the local generator's "nocolor" variant):
    # a model that is clearly worse on colour prompts, for studies that must tell one apart.
    gray_models: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; use one of {', '.join(FAULTS)}")
        if self.fault_at not in ("submit", "status", "result"):
            raise ValueError(f"fault_at must be submit, status or result, got {self.fault_at!r}")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be in [0, 1], got {self.fault_rate}")
        for name in ("queue_s", "inference_s"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name} must be (lo, hi) with 0 <= lo <= hi, got {(lo, hi)}")


@dataclass
class Job:
    """One generation in an emulator: its inputs, its clock and what fault it carries."""

    id: str
    prompt: str
    width: int
    height: int
    seed: int
    steps: int
    num_images: int
    fault: str | None
    queue_s: float
    inference_s: float
    created: float = field(default_factory=time.monotonic)
    created_wall: float = field(default_factory=time.time)
    cancelled: bool = False
    outputs: list[str] | None = None  # file ids, rendered on first completion
    extra: dict[str, Any] = field(default_factory=dict)
    model: str = ""  # as the request named it ("" where the protocol names it elsewhere)

    def phase(self) -> str:
        """queued | running | done | cancelled, from the clock (hung jobs never finish)."""
        if self.cancelled:
            return "cancelled"
        elapsed = time.monotonic() - self.created
        if elapsed < self.queue_s:
            return "queued"
        if self.fault == "hang" or elapsed < self.queue_s + self.inference_s:
            return "running"
        return "done"

    @property
    def refused(self) -> bool:
        return self.fault == "refuse"


class EmulatorState:
    """Shared by all routes of one app: knobs, jobs, stored files and a log of calls."""

    def __init__(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self.jobs: dict[str, Job] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.expired: set[str] = set()
        self.calls: list[str] = []  # "METHOD /path", in arrival order
        self.cancels: list[str] = []  # job ids a client asked to cancel
        self.submissions = 0  # generation requests received: what a test counts requests by
        self.submissions_by_model: dict[str, int] = {}
        # Jobs that produced images: what a real provider bills for, whether or not the client
        # then managed to download or decode them. Tests count money with these.
        self.billed: dict[str, Job] = {}  # job id -> job, in billing order
        # Generations being worked on at once, per requested size (sync protocols: while the
        # request is held), and the most there ever were: tests count concurrency here.
        self.active: dict[tuple[int, int], int] = {}
        self.peak_active: dict[tuple[int, int], int] = {}
        self._rng = random.Random(knobs.rng_seed)
        self._lock = threading.Lock()

    # ---- auth ----------------------------------------------------------------------
    def key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return self.knobs.api_key is None or key == self.knobs.api_key

    # ---- jobs ----------------------------------------------------------------------
    def job_from_payload(
        self,
        payload: Mapping[str, Any],
        *,
        steps_key: str = "num_inference_steps",
        count_key: str = "num_images",
        count: int | None = None,
        model: str | None = None,
    ) -> Job:
        """A job from an image request body (prompt, size, seed, steps, image count), the part of
        every protocol's "create" that is the same; each emulator keeps only its own names."""
        width, height = size_from_payload(payload)
        seed = payload.get("seed")
        return self.new_job(
            str(payload["prompt"]),
            width=width,
            height=height,
            seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
            steps=int_param(payload.get(steps_key), 4),
            num_images=count if count is not None else int_param(payload.get(count_key), 1),
            model=str(payload.get("model") or "") if model is None else model,
        )

    def new_job(
        self,
        prompt: str,
        *,
        width: int,
        height: int,
        seed: int | None = None,
        steps: int = 4,
        num_images: int = 1,
        model: str = "",
    ) -> Job:
        with self._lock:
            self.submissions += 1
            self.submissions_by_model[model] = self.submissions_by_model.get(model, 0) + 1
            fault = self._fault_for(self.submissions)
            if self.knobs.refuse_word and self.knobs.refuse_word in prompt:
                fault = "refuse"
            job = Job(
                id=uuid.uuid4().hex[:16],
                prompt=prompt,
                width=width,
                height=height,
                seed=seed if seed is not None and seed >= 0 else self._rng.randrange(2**31),
                steps=steps,
                num_images=max(1, num_images),
                fault=fault,
                queue_s=self._rng.uniform(*self.knobs.queue_s),
                inference_s=self._rng.uniform(*self.knobs.inference_s)
                + (self.knobs.slow_s if fault == "slow" else 0.0),
                model=model,
            )
            self.jobs[job.id] = job
        return job

    def _fault_for(self, n: int) -> str | None:
        knobs = self.knobs
        if knobs.fault is None:
            return None
        if knobs.fault_first is not None:
            return knobs.fault if n <= knobs.fault_first else None
        return knobs.fault if self._rng.random() < knobs.fault_rate else None

    def cancel(self, job: Job) -> None:
        self.cancels.append(job.id)
        if job.phase() != "done":
            job.cancelled = True

    async def wait_sync(self, job: Job) -> None:
        """For synchronous protocols: hold the request while the job queues and runs."""
        size = (job.width, job.height)
        with self._lock:
            self.active[size] = self.active.get(size, 0) + 1
            self.peak_active[size] = max(self.peak_active.get(size, 0), self.active[size])
        try:
            if job.fault == "hang":
                await asyncio.sleep(self.knobs.hang_s)
            await asyncio.sleep(job.queue_s + job.inference_s)  # a "slow" job's inference_s includes slow_s
        finally:
            with self._lock:
                self.active[size] -= 1

    async def wait_until_done(self, job: Job, limit_s: float) -> None:
        """Prefer: wait style: return when the job is done or `limit_s` has passed."""
        end = time.monotonic() + limit_s
        while job.phase() in ("queued", "running") and time.monotonic() < end:
            await asyncio.sleep(min(0.01, max(end - time.monotonic(), 0.0)))

    # ---- images --------------------------------------------------------------------
    async def outputs(self, job: Job) -> list[str]:
        """File ids of the job's images, rendered once (off the event loop)."""
        if job.outputs is None:
            ids = []
            for i in range(job.num_images):
                data = await run_in_threadpool(self._render, job, i)
                file_id = f"{job.id}-{i}.png"
                self.files[file_id] = (data, "image/png")
                if job.fault == "expired_url":
                    self.expired.add(file_id)
                ids.append(file_id)
            job.outputs = ids
            self.billed[job.id] = job
        return job.outputs

    def _render(self, job: Job, index: int) -> bytes:
        if job.fault == "bad_image":
            return b"<html>this is not an image</html>"
        width, height = fit_size(job.width, job.height, self.knobs.max_side_px)
        variant = "nocolor" if job.model and job.model in self.knobs.gray_models else "fast"
        return render(job.prompt, width, height, job.seed + index, job.steps, variant)

    def file_bytes(self, file_id: str) -> tuple[bytes, str]:
        return self.files[file_id]

    async def data_uris(self, job: Job, mime_label: str = "image/png") -> list[str]:
        uris = []
        for file_id in await self.outputs(job):
            data, _ = self.files[file_id]
            uris.append(f"data:{mime_label};base64,{base64.b64encode(data).decode('ascii')}")
        return uris

    async def base64s(self, job: Job) -> list[str]:
        return [uri.partition(",")[2] for uri in await self.data_uris(job)]

    async def urls(self, job: Job, request: Request) -> list[str]:
        base = str(request.base_url).rstrip("/")
        return [f"{base}/files/{file_id}" for file_id in await self.outputs(job)]

    def billed_usd(self, per_megapixel: float = 0.003) -> float:
        """What the billed jobs cost at the rate the answers report (see cost_usd)."""
        return sum(self.cost_usd(job, per_megapixel) for job in self.billed.values())

    def cost_usd(self, job: Job, per_megapixel: float = 0.003) -> float:
        """A plausible reported cost, deterministic in the size asked for."""
        unit_px = self.knobs.cost_round_up_px
        if unit_px is None:
            return per_megapixel * job.width * job.height / 1e6 * job.num_images
        return per_megapixel * math.ceil(job.width * job.height / unit_px) * job.num_images


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """Scale (width, height) down so the longer side is at most max_side, keeping the ratio."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(8, round(width * scale)), max(8, round(height * scale))


def render(prompt: str, width: int, height: int, seed: int, steps: int, variant: str = "fast") -> bytes:
    # Imported here: the local generator is heavier than the emulator protocol code.
    from bench.providers.local_render import render_png

    return render_png(prompt, width, height, seed, steps=max(1, min(steps, 8)), variant=variant)


# ---- shared route pieces ----------------------------------------------------------
async def serve_file(request: Request) -> Response:
    emu: EmulatorState = request.app.state.emu
    emu.calls.append(f"GET {request.url.path}")
    file_id = request.path_params["file_id"]
    if file_id not in emu.files or file_id in emu.expired:
        return Response(
            b"<Error><Code>NoSuchKey</Code></Error>", status_code=404, media_type="application/xml"
        )
    data, mime = emu.file_bytes(file_id)
    return Response(data, media_type=mime)


FILE_ROUTE = Route("/files/{file_id}", serve_file, methods=["GET"])


class _EmulatorHeader:
    """Pure ASGI (cheaper than BaseHTTPMiddleware, and safe for held-open hang responses)."""

    def __init__(self, app: ASGIApp, protocol: str) -> None:
        self.app, self.value = app, protocol.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (EMULATOR_HEADER.encode(), self.value)]
            await send(message)

        await self.app(scope, receive, send_marked)


def mark_emulator(app: Starlette, protocol: str) -> Starlette:
    """Every response says it came from an emulator (observe.EMULATOR_HEADER), so runs against it
    are recorded as emulated and synthetic: the images come from the local generator."""
    app.add_middleware(_EmulatorHeader, protocol=protocol)
    return app


def malformed_json() -> Response:
    """A 200 with a JSON content type whose body stops halfway."""
    return Response(b'{"data": [{"url": "htt', status_code=200, media_type="application/json")


def rate_limit_headers(knobs: Knobs) -> dict[str, str]:
    return {"Retry-After": f"{knobs.retry_after_s:g}"}


def bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def json_body(request: Request) -> Mapping[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, Mapping) else None


def json_error(body: Any, status: int, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def int_param(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return default


def size_from_payload(payload: Mapping[str, Any], default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    """The size a request asks for, in whichever documented shape it uses."""
    from bench.catalog.mapping import IMAGE_SIZE_PRESETS

    size = payload.get("size") or payload.get("image_size")
    if isinstance(size, Mapping):
        return int_param(size.get("width"), default[0]), int_param(size.get("height"), default[1])
    if isinstance(size, str):
        if size in IMAGE_SIZE_PRESETS:
            return IMAGE_SIZE_PRESETS[size]
        w, sep, h = size.partition("x")
        if sep and w.isdigit() and h.isdigit():
            return int(w), int(h)
    if "width" in payload and "height" in payload:
        return int_param(payload["width"], default[0]), int_param(payload["height"], default[1])
    ratio = payload.get("aspect_ratio")
    if isinstance(ratio, str) and ":" in ratio:
        a, _, b = ratio.partition(":")
        if a.isdigit() and b.isdigit() and int(a) and int(b):
            long_side = max(default)
            if int(a) >= int(b):
                return long_side, round(long_side * int(b) / int(a))
            return round(long_side * int(a) / int(b)), long_side
    return default

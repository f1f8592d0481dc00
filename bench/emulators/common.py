"""What every protocol emulator shares: its state (the job machine, files, calls), images, helpers.

An emulator is a Starlette app that speaks one provider's documented protocol on
127.0.0.1. Images come from the local generator, so the picture follows the
prompt and CLIP scores over an emulated run mean something. Each app keeps an
`EmulatorState` (app.state.emu) that tests read: which calls came, which jobs
were cancelled, which jobs were billed. The job states live in bench.emulators.jobs;
the routes that count calls, check keys and find jobs in bench.emulators.routes.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from bench.emulators.jobs import Clock, Job, JobMachine
from bench.emulators.knobs import FAULTS as FAULTS
from bench.emulators.knobs import Knobs as Knobs


class EmulatorState(JobMachine):
    """Shared by all routes of one app: the job machine, plus stored files and a log of calls."""

    def __init__(self, knobs: Knobs, clock: Clock = time.monotonic) -> None:
        super().__init__(knobs, clock)
        self.files: dict[str, tuple[bytes, str]] = {}
        self.expired: set[str] = set()
        self.calls: list[str] = []  # "METHOD /path", in arrival order

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
            self.bill(job)
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
        return [f"{base_url(request)}/files/{file_id}" for file_id in await self.outputs(job)]

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


def malformed_json() -> Response:
    """A 200 with a JSON content type whose body stops halfway."""
    return Response(b'{"data": [{"url": "htt', status_code=200, media_type="application/json")


def base_url(request: Request) -> str:
    """Where the client reached this emulator, without the trailing slash (for follow-up URLs)."""
    return str(request.base_url).rstrip("/")


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

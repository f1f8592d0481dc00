"""The `local` provider: an in-process, offline, deterministic image generator.

It needs no key and no network, so a benchmark run (and CI) always has a target
that works. Its images are drawn by bench.providers.local_render from the
objects, colours and counts the prompt names; they are synthetic, and every
spec says so (ModelSpec.synthetic), so reports can mark them.

Rendering is CPU-bound numpy and PIL work, so it runs in a thread pool of
`settings.concurrency` workers: the event loop stays free, and requests beyond
the pool wait for a worker, which is reported as queue time, as a hosted API's
queue would be.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.catalog.mapping import ParameterError, validate_payload
from bench.catalog.spec import ModelSpec, ParamSpec
from bench.errors import InvalidRequestError
from bench.providers.base import GeneratedImage, GenerationResult, Provider, ProviderSettings, Timings
from bench.providers.local_render import encode_png, render
from bench.request import ImageRequest

# Model name -> (renderer variant, default steps).
MODEL_VARIANTS: dict[str, tuple[str, int]] = {
    "shapes-fast": ("fast", 8),
    "shapes-quality": ("quality", 20),
    "shapes-nocolor": ("nocolor", 8),
}
_DESCRIPTIONS = {
    "fast": "Draws at half resolution and upsamples; cheap refinement passes.",
    "quality": "Supersampled anti-aliasing, outlines and shadows; more work per refinement pass.",
    "nocolor": (
        "Deliberately degraded: the fast renderer with every colour drawn gray. "
        "Use it to plant a prompt-following drop in regression-gate tests."
    ),
}
DEFAULT_SIZE = 512


def _params(default_steps: int) -> dict[str, ParamSpec]:
    params = [
        ParamSpec("prompt", "string", required=True),
        ParamSpec("negative_prompt", "string", description="objects and colours named here are not drawn"),
        ParamSpec(
            "num_inference_steps",
            "integer",
            default=default_steps,
            minimum=1,
            maximum=200,
            description="refinement passes from noise: fewer leave visible noise; time grows linearly",
        ),
        ParamSpec(
            "guidance_scale",
            "number",
            default=5.0,
            minimum=0,
            maximum=20,
            description="strictness: below 3 the drawing drifts from the prompt (colours, counts, objects)",
        ),
        ParamSpec("seed", "integer", minimum=0, description="fixes the layout and the starting noise"),
        ParamSpec("width", "integer", default=DEFAULT_SIZE, minimum=64, maximum=2048),
        ParamSpec("height", "integer", default=DEFAULT_SIZE, minimum=64, maximum=2048),
        ParamSpec("num_images", "integer", default=1, minimum=1, maximum=4),
        ParamSpec(
            "extra_latency_s",
            "number",
            default=0.0,
            minimum=0,
            description="artificial sleep per request, holding a worker: a knob to plant a latency regression",
        ),
    ]
    return {p.name: p for p in params}


def _spec(model: str) -> ModelSpec:
    variant, default_steps = MODEL_VARIANTS[model]
    return ModelSpec(
        provider="local",
        model=model,
        params=_params(default_steps),
        negative_prompt_param="negative_prompt",
        steps_param="num_inference_steps",
        guidance_param="guidance_scale",
        seed_param="seed",
        count_param="num_images",
        size_mode="width_height",
        size_param="width",
        size_param_2="height",
        title=f"Local shapes ({variant})",
        description=_DESCRIPTIONS[variant],
        synthetic=True,
    )


MODELS: tuple[ModelSpec, ...] = tuple(_spec(model) for model in MODEL_VARIANTS)


@dataclass(frozen=True)
class RenderJob:
    """One request's parameters, resolved against the model's defaults."""

    prompt: str
    negative_prompt: str | None
    variant: str
    steps: int
    guidance: float
    seed: int
    width: int
    height: int
    num_images: int
    extra_latency_s: float

    @property
    def seeds(self) -> range:
        return range(self.seed, self.seed + self.num_images)


@dataclass(frozen=True)
class JobOutcome:
    images: tuple[bytes, ...]
    queue_s: float
    inference_s: float


def resolve_job(spec: ModelSpec, payload: Mapping[str, Any]) -> RenderJob:
    """Read the payload (native names: what was keyed), falling back to the spec's defaults."""
    if spec.model not in MODEL_VARIANTS:
        raise InvalidRequestError(f"local has no model {spec.model!r}; it has: {', '.join(MODEL_VARIANTS)}")
    try:
        validate_payload(spec, payload)
    except ParameterError as exc:
        raise InvalidRequestError(str(exc)) from exc

    def value(name: str) -> Any:
        return payload.get(name, spec.params[name].default)

    seed = value("seed")
    return RenderJob(
        prompt=value("prompt"),
        negative_prompt=value("negative_prompt"),
        variant=MODEL_VARIANTS[spec.model][0],
        steps=int(value("num_inference_steps")),
        guidance=float(value("guidance_scale")),
        # A random seed when none was sent, reported back as seed_used so the image can be remade.
        seed=secrets.randbelow(2**31) if seed is None else int(seed),
        width=int(value("width")),
        height=int(value("height")),
        num_images=int(value("num_images")),
        extra_latency_s=float(value("extra_latency_s")),
    )


def run_job(job: RenderJob, submitted: float) -> JobOutcome:
    """Render every image of one request on the calling (worker) thread."""
    started = time.perf_counter()
    images = tuple(
        encode_png(
            render(
                job.prompt,
                width=job.width,
                height=job.height,
                seed=seed,
                steps=job.steps,
                guidance=job.guidance,
                variant=job.variant,
                negative_prompt=job.negative_prompt,
            )
        )
        for seed in job.seeds
    )
    if job.extra_latency_s > 0:
        # Sleeping on the worker (not on the event loop) holds the worker, as a slower
        # model would: a planted latency regression then also shows up as queueing.
        time.sleep(job.extra_latency_s)
    return JobOutcome(images, queue_s=started - submitted, inference_s=time.perf_counter() - started)


class LocalProvider(Provider):
    """Offline generator; models shapes-fast, shapes-quality and shapes-nocolor."""

    name = "local"
    needs_api_key = False
    account_limits = False

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        self._executor: ThreadPoolExecutor | None = None

    def models(self) -> Sequence[ModelSpec]:
        return MODELS

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=max(self.settings.concurrency, 1), thread_name_prefix="bench-local"
            )
        return self._executor

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        job = resolve_job(spec, payload)
        submitted = time.perf_counter()
        outcome = await asyncio.get_running_loop().run_in_executor(self.executor, run_job, job, submitted)
        return GenerationResult(
            images=tuple(GeneratedImage(data, mime="image/png") for data in outcome.images),
            timings=Timings(queue_s=outcome.queue_s, inference_s=outcome.inference_s, download_s=0.0),
            seed_used=job.seed,
            metadata={"variant": job.variant, "synthetic": True},
        )

    async def aclose(self) -> None:
        if self._executor is not None:
            # No waiting: a render in flight finishes on its own thread in milliseconds,
            # and blocking here would block the event loop; queued renders are dropped.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        await super().aclose()

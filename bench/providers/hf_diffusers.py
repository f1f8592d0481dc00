"""The `diffusers` provider: any Hugging Face diffusers text-to-image pipeline, run in-process.

`diffusers:stabilityai/sd-turbo` (a hub id, resolved through the local Hugging Face
cache or the hub) or `diffusers:/models/flux-schnell` (a folder written by
`save_pretrained`). The model's parameters are read from its pipeline class's
`__call__` signature, so steps, guidance, size and negative prompt are mapped like
any catalog model's, and a pipeline without one of them has it left out.

Device and dtype are part of every payload (and so of the request key): a float16
CUDA image is not a float32 CPU image, and the price table matches on `device`. The
response cache keys answers further by what the model *is* (cache_scope): a content
fingerprint of the pipeline folder's files, the device's name (the GPU model, not just
"cuda") and the library versions, so overwritten weights, another GPU or another
diffusers/torch release never replay old images.

Pipelines are not thread-safe and one device runs one batch at a time, so all work
runs on one worker thread. Requests that differ only in prompt and seed are grouped
into one batched call (`options.batch_size`), each with its own torch.Generator, so
an image is the one its seed makes alone. The first call is a warm-up (kernel
selection, allocator growth) timed and recorded in `warmup_s`, never in `inference_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import math
import platform
import secrets
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.catalog.mapping import ParameterError, validate_payload
from bench.catalog.spec import ModelSpec, ParamSpec
from bench.errors import ConfigError, InvalidRequestError, ServerError
from bench.providers.base import (
    ComputeInfo,
    GeneratedImage,
    GenerationResult,
    Provider,
    ProviderSettings,
    Timings,
)
from bench.providers.weights_fingerprint import folder_fingerprint
from bench.request import ImageRequest

NAN = math.nan
DTYPES = ("float32", "float16", "bfloat16")
DEVICES = ("cuda", "mps", "cpu")
VERSIONED_PACKAGES = ("diffusers", "transformers", "accelerate", "torch")
INSTALL_HINT = "install the local extra: pip install -c constraints.txt -e '.[local]'"
_MAX_STEPS = 1000


# ---- environment ----------------------------------------------------------------------------
def import_diffusers() -> Any:
    """The diffusers module, or a ConfigError saying how to install it (before any request)."""
    try:
        return importlib.import_module("diffusers")
    except ImportError as exc:
        raise ConfigError("providers.diffusers", "diffusers", f"{exc}; {INSTALL_HINT}") from None


def dtype_keyword(diffusers: Any) -> str:
    """`dtype` where this diffusers takes it, else `torch_dtype` (which the releases that take
    `dtype` deprecate with a FutureWarning on every load)."""
    deprecation = importlib.util.find_spec("diffusers.utils.deprecation_utils")
    if deprecation is not None and hasattr(
        importlib.import_module("diffusers.utils.deprecation_utils"), "_resolve_dtype"
    ):
        return "dtype"
    return "torch_dtype"


@contextlib.contextmanager
def quiet_loading(diffusers: Any) -> Iterator[None]:
    """No "Loading pipeline components" bars (diffusers', and transformers' for the text encoders)
    while a pipeline loads: the run's own progress line says what is happening. Restored after."""
    switches = [diffusers.utils.logging]
    if importlib.util.find_spec("transformers") is not None:
        switches.append(importlib.import_module("transformers.utils.logging"))
    were_on = [s.is_progress_bar_enabled() for s in switches]
    for switch in switches:
        switch.disable_progress_bar()
    try:
        yield
    finally:
        for switch, on in zip(switches, were_on, strict=True):
            if on:
                switch.enable_progress_bar()


def resolve_device(requested: str) -> str:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist here."""
    import torch

    if requested == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    kind = requested.split(":", 1)[0]
    if kind not in DEVICES:
        raise ConfigError(
            "providers.diffusers.options.device", requested, "use auto, cuda, cuda:N, mps or cpu"
        )
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "providers.diffusers.options.device", requested, "CUDA is not available here; use cpu or auto"
        )
    return requested


def resolve_dtype(requested: str, device: str) -> str:
    if requested == "auto":
        return "float32" if device == "cpu" else "float16"
    if requested not in DTYPES:
        raise ConfigError(
            "providers.diffusers.options.dtype", requested, f"use auto or one of {', '.join(DTYPES)}"
        )
    return requested


def library_versions() -> dict[str, str]:
    out = {}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return str(torch.cuda.get_device_name(torch.device(device)))
    if device == "mps":
        return f"mps ({platform.machine()})"
    return f"cpu ({platform.processor() or platform.machine()})"


def model_folder(model: str) -> Path | None:
    """The folder a model's files are loaded from: the given folder, or the hub id's snapshot in
    the local Hugging Face cache (None when it is not downloaded yet)."""
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    if model.startswith(("/", "./", "~")):
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not in the local cache (or no hub library): nothing to fingerprint yet
        return None


def synchronize(device: str) -> None:
    """Wait for queued kernels, so a timer reads device time rather than launch time."""
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))
    elif device == "mps":
        torch.mps.synchronize()


# ---- schema from the pipeline's signature ---------------------------------------------------
def pipeline_class(model: str) -> Any:
    """The pipeline class named in model_index.json, without loading any weights."""
    diffusers = import_diffusers()
    where = f"targets[diffusers:{model}]"
    path = Path(model).expanduser()
    try:
        if path.is_dir():
            index = path / "model_index.json"
            if not index.is_file():
                raise ConfigError(where, model, "not a diffusers pipeline folder (no model_index.json)")
            class_name = json.loads(index.read_text(encoding="utf-8"))["_class_name"]
        elif model.startswith(("/", "./", "~")):
            raise ConfigError(where, model, "no such folder; give a save_pretrained folder or a hub id")
        else:
            hub_problem = hub_unavailable(model)
            if hub_problem is not None:
                raise ConfigError(where, model, hub_problem)
            class_name = diffusers.DiffusionPipeline.load_config(model)["_class_name"]
    except ConfigError:
        raise
    except Exception as exc:  # hub/cache lookups raise many types; one line for the user
        if _caused_by_the_network(exc):
            # diffusers words this as "does not appear to have a file named model_index.json"
            raise ConfigError(where, model, _hub_fix(model, "the Hugging Face hub did not answer")) from None
        raise ConfigError(
            where, model, f"cannot read the pipeline config ({type(exc).__name__}: {exc}); use a local folder"
        ) from None
    cls = getattr(diffusers, str(class_name), None)
    if cls is None:
        raise ConfigError(
            where, model, f"pipeline class {class_name} is not in diffusers {diffusers.__version__}"
        )
    return cls


def _hub_fix(model: str, why: str) -> str:
    return (
        f"{why} and {model} is not in the local Hugging Face cache; download it where the hub is "
        f"reachable (`hf download {model}`, then copy the cache folder), or give a save_pretrained folder"
    )


def hub_unavailable(model: str) -> str | None:
    """Why a hub id cannot be read here (not cached, and the hub offline or unreachable), or None.

    Asked before diffusers tries: offline it retries for half a minute and then reports a
    missing model_index.json, which sends the user looking for a file instead of the network.
    """
    from urllib.parse import urlparse

    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(model, "model_index.json"), str):
        return None  # cached: diffusers reads it without the network
    if constants.HF_HUB_OFFLINE:
        return _hub_fix(model, "HF_HUB_OFFLINE is set")
    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=3.0):
            return None
    except OSError as exc:
        return _hub_fix(
            model, f"the Hugging Face hub ({constants.ENDPOINT}) is unreachable ({exc.strerror or exc})"
        )


def _caused_by_the_network(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(20):  # a chain can loop back on itself
        if seen is None:
            break
        if type(seen).__name__ in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or isinstance(
            seen, ConnectionError | TimeoutError
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _default(signature: inspect.Signature, name: str) -> Any:
    default = signature.parameters[name].default
    return None if default is inspect.Parameter.empty else default


def spec_from_signature(model: str, call: Any, device: str, dtype: str) -> ModelSpec:
    """Map the pipeline's own keyword names onto the normalized parameters."""
    signature = inspect.signature(call)
    names = set(signature.parameters)
    if "prompt" not in names:
        raise ConfigError(
            f"targets[diffusers:{model}]", model, "this pipeline takes no prompt (not text-to-image)"
        )
    params = [
        ParamSpec("prompt", "string", required=True),
        ParamSpec("seed", "integer", minimum=0, description="seeds a torch.Generator (one per image)"),
        ParamSpec("device", "string", default=device, description="where the pipeline runs"),
        ParamSpec("dtype", "string", default=dtype, options=DTYPES, description="weights and activations"),
    ]
    if "negative_prompt" in names:
        params.append(ParamSpec("negative_prompt", "string"))
    if "num_inference_steps" in names:
        params.append(
            ParamSpec(
                "num_inference_steps",
                "integer",
                default=_default(signature, "num_inference_steps"),
                minimum=1,
                maximum=_MAX_STEPS,
            )
        )
    if "guidance_scale" in names:
        params.append(
            ParamSpec("guidance_scale", "number", default=_default(signature, "guidance_scale"), minimum=0)
        )
    sized = {"height", "width"} <= names
    if sized:
        params += [ParamSpec("width", "integer", minimum=8), ParamSpec("height", "integer", minimum=8)]
    if "num_images_per_prompt" in names:
        params.append(ParamSpec("num_images_per_prompt", "integer", default=1, minimum=1))
    return ModelSpec(
        provider="diffusers",
        model=model,
        params={p.name: p for p in params},
        negative_prompt_param="negative_prompt" if "negative_prompt" in names else None,
        steps_param="num_inference_steps" if "num_inference_steps" in names else None,
        guidance_param="guidance_scale" if "guidance_scale" in names else None,
        seed_param="seed",
        count_param="num_images_per_prompt" if "num_images_per_prompt" in names else None,
        size_mode="width_height" if sized else "none",
        size_param="width" if sized else None,
        size_param_2="height" if sized else None,
        fixed={"device": device, "dtype": dtype},
        title=f"diffusers {getattr(call, '__qualname__', 'pipeline').split('.')[0]}",
        description="a diffusers pipeline run in-process; cost from the price table per device-second",
    )


# ---- one pipeline call ----------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineCall:
    """One request, resolved: what goes to the pipeline besides prompt and generators."""

    prompt: str
    negative_prompt: str | None
    seed: int
    num_images: int
    kwargs: Mapping[str, Any]  # steps, guidance, width, height (native names)
    device: str
    dtype: str

    @property
    def batch_key(self) -> str:
        """Requests with the same key can share one pipeline call."""
        return json.dumps(
            [self.device, self.dtype, self.num_images, self.negative_prompt is None, dict(self.kwargs)],
            sort_keys=True,
        )


@dataclass
class _Pending:
    call: PipelineCall
    future: asyncio.Future[tuple[list[bytes], ComputeInfo, Timings, float]]
    submitted: float = field(default_factory=time.perf_counter)


def resolve_call(spec: ModelSpec, payload: Mapping[str, Any]) -> PipelineCall:
    try:
        validate_payload(spec, payload)
    except ParameterError as exc:
        raise InvalidRequestError(str(exc)) from exc
    kwargs = {
        name: payload[name]
        for name in ("num_inference_steps", "guidance_scale", "width", "height")
        if payload.get(name) is not None
    }
    seed = payload.get("seed")
    return PipelineCall(
        prompt=str(payload["prompt"]),
        negative_prompt=payload.get("negative_prompt"),
        # A random seed when none was sent, reported back as seed_used so the image can be remade.
        seed=secrets.randbelow(2**31) if seed is None else int(seed),
        num_images=int(payload.get("num_images_per_prompt") or 1),
        kwargs=kwargs,
        device=str(payload.get("device", spec.fixed.get("device", "cpu"))),
        dtype=str(payload.get("dtype", spec.fixed.get("dtype", "float32"))),
    )


class DiffusersProvider(Provider):
    """Runs diffusers pipelines on this machine's cuda / mps / cpu device."""

    name = "diffusers"
    needs_api_key = False
    account_limits = False

    def __init__(self, settings: ProviderSettings) -> None:
        super().__init__(settings)
        options = settings.options
        self.batch_size = int(options.get("batch_size", 1))
        self.batch_wait_s = float(options.get("batch_wait_s", 0.05))
        self.warmup = bool(options.get("warmup", True))
        self.pipeline_kwargs: dict[str, Any] = dict(options.get("pipeline_kwargs") or {})
        if self.batch_size < 1:
            raise ConfigError(
                "providers.diffusers.options.batch_size", self.batch_size, "use a whole number >= 1"
            )
        self._device_option = str(options.get("device", "auto"))
        self._dtype_option = str(options.get("dtype", "auto"))
        self._specs: dict[str, ModelSpec] = {}
        self._scopes: dict[tuple[str, str], str] = {}
        self._pipelines: dict[tuple[str, str, str], tuple[Any, float, float]] = {}
        self._pipelines_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: dict[tuple[str, str], list[_Pending]] = {}
        self._flush_handles: dict[tuple[str, str], asyncio.TimerHandle] = {}

    # ---- catalog ---------------------------------------------------------------------------
    def models(self) -> Sequence[ModelSpec]:
        """The pipelines listed in options.models plus any already resolved (any id or folder works)."""
        for model in self.settings.options.get("models") or []:
            self.model_spec(str(model))
        return tuple(self._specs.values())

    def model_spec(self, model: str) -> ModelSpec:
        if model not in self._specs:
            device = resolve_device(self._device_option)
            dtype = resolve_dtype(self._dtype_option, device)
            self._specs[model] = spec_from_signature(model, pipeline_class(model).__call__, device, dtype)
        return self._specs[model]

    def check_ready(self) -> None:
        import_diffusers()

    def cache_scope(self, spec: ModelSpec) -> str | None:
        """What answers this model's requests: its weights' content, the device by name, the
        library versions. None (not cached) for a hub model not yet in the local cache."""
        device = str(spec.fixed.get("device", "cpu"))
        ident = (spec.model, device)
        if ident not in self._scopes:
            folder = model_folder(spec.model)
            if folder is None:
                return None
            self._scopes[ident] = json.dumps(
                {
                    "provider": self.settings.name,
                    "weights_sha256": folder_fingerprint(folder),
                    "device": device_name(device),
                    "versions": library_versions(),
                },
                sort_keys=True,
            )
        return self._scopes[ident]

    # ---- generation ------------------------------------------------------------------------
    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # One worker: a pipeline object is not thread-safe and a device runs one batch at a time.
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-diffusers")
        return self._executor

    async def generate(
        self, spec: ModelSpec, payload: Mapping[str, Any], request: ImageRequest
    ) -> GenerationResult:
        call = resolve_call(spec, payload)
        loop = asyncio.get_running_loop()
        pending = _Pending(call, loop.create_future())
        group = (spec.model, call.batch_key)
        waiting = self._pending.setdefault(group, [])
        waiting.append(pending)
        if len(waiting) >= self.batch_size:
            self._flush(group)
        elif group not in self._flush_handles:
            self._flush_handles[group] = loop.call_later(self.batch_wait_s, self._flush, group)
        try:
            images, compute, timings, device_seconds = await asyncio.shield(pending.future)
        except asyncio.CancelledError:
            # The batch may already be on the device; this request's share is simply dropped.
            if pending in self._pending.get(group, []):
                self._pending[group].remove(pending)
            raise
        return GenerationResult(
            images=tuple(GeneratedImage(data, mime="image/png") for data in images),
            timings=timings,
            usage={"device_seconds": device_seconds},
            seed_used=call.seed,
            compute=compute,
            metadata={"batch_size": compute.batch_size},
        )

    def _flush(self, group: tuple[str, str]) -> None:
        handle = self._flush_handles.pop(group, None)
        if handle is not None:
            handle.cancel()
        batch = self._pending.pop(group, [])
        if not batch:
            return
        future = asyncio.get_running_loop().run_in_executor(self.executor, self._run_batch, group[0], batch)
        future.add_done_callback(lambda done: self._deliver(batch, done))

    @staticmethod
    def _deliver(
        batch: list[_Pending], done: asyncio.Future[list[tuple[list[bytes], ComputeInfo, Timings, float]]]
    ) -> None:
        error = done.exception() if not done.cancelled() else asyncio.CancelledError()
        for index, pending in enumerate(batch):
            if pending.future.done():
                continue
            if error is not None:
                pending.future.set_exception(error)
            else:
                pending.future.set_result(done.result()[index])

    # ---- on the worker thread -------------------------------------------------------------
    def _pipeline(self, model: str, device: str, dtype: str) -> tuple[Any, float, float]:
        """(pipeline, load seconds, warm-up seconds); loaded once per model, device and dtype."""
        key = (model, device, dtype)
        with self._pipelines_lock:
            if key not in self._pipelines:
                import torch

                diffusers = import_diffusers()
                started = time.perf_counter()
                with quiet_loading(diffusers):
                    pipe = diffusers.DiffusionPipeline.from_pretrained(
                        model, **{dtype_keyword(diffusers): getattr(torch, dtype)}, **self.pipeline_kwargs
                    )
                pipe = pipe.to(device)
                pipe.set_progress_bar_config(disable=True)
                load_s = time.perf_counter() - started
                warmup_s = self._warm_up(pipe, model, device) if self.warmup else NAN
                self._pipelines[key] = (pipe, load_s, warmup_s)
            return self._pipelines[key]

    def _warm_up(self, pipe: Any, model: str, device: str) -> float:
        """One short call so the first measured request does not pay for kernel selection."""
        import torch

        spec = self._specs[model]
        kwargs: dict[str, Any] = {"prompt": "warm-up", "generator": torch.Generator("cpu").manual_seed(0)}
        if spec.steps_param:
            kwargs[spec.steps_param] = 1
        synchronize(device)
        started = time.perf_counter()
        pipe(**kwargs, output_type="pil")
        synchronize(device)
        return time.perf_counter() - started

    def _run_batch(
        self, model: str, batch: list[_Pending]
    ) -> list[tuple[list[bytes], ComputeInfo, Timings, float]]:
        import torch

        first = batch[0].call
        pipe, _load_s, warmup_s = self._pipeline(model, first.device, first.dtype)
        prompts = [p.call.prompt for p in batch]
        generators = [
            torch.Generator("cpu").manual_seed(p.call.seed + i)
            for p in batch
            for i in range(p.call.num_images)
        ]
        kwargs: dict[str, Any] = dict(first.kwargs)
        if self._specs[model].count_param and first.num_images != 1:
            kwargs["num_images_per_prompt"] = first.num_images
        if first.negative_prompt is not None:
            kwargs["negative_prompt"] = [p.call.negative_prompt or "" for p in batch]
        cuda = first.device.startswith("cuda")
        if cuda:
            torch.cuda.reset_peak_memory_stats(torch.device(first.device))
        synchronize(first.device)
        started = time.perf_counter()
        try:
            output = pipe(prompt=prompts, generator=generators, output_type="pil", **kwargs)
            synchronize(first.device)
        except torch.cuda.OutOfMemoryError as exc:
            torch.cuda.empty_cache()
            raise ServerError(f"out of device memory on {first.device}: lower batch_size or size") from exc
        inference_s = time.perf_counter() - started
        peak_mb = torch.cuda.max_memory_allocated(torch.device(first.device)) / 2**20 if cuda else NAN
        images = list(output.images)
        if len(images) != len(generators):
            raise ServerError(f"the pipeline returned {len(images)} images for {len(generators)} asked")
        compute = ComputeInfo(
            device=device_name(first.device),
            peak_gpu_memory_mb=peak_mb,
            warmup_s=warmup_s,
            versions=library_versions(),
            batch_size=len(batch),
        )
        results = []
        offset = 0
        for pending in batch:
            encoded = []
            for image in images[offset : offset + pending.call.num_images]:
                buffer = io.BytesIO()
                image.save(buffer, format="PNG")
                encoded.append(buffer.getvalue())
            offset += pending.call.num_images
            timings = Timings(queue_s=started - pending.submitted, inference_s=inference_s, download_s=0.0)
            # The device time this request is billed for: its share of the batched call.
            results.append((encoded, compute, timings, inference_s / len(batch)))
        return results

    async def aclose(self) -> None:
        for handle in self._flush_handles.values():
            handle.cancel()
        self._flush_handles.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        await super().aclose()

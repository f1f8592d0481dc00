"""Expand a config into Jobs: prompts × targets × steps × guidance × seeds × sizes × repeats.

Per target, an axis the model has no parameter for collapses to "not sent" and
the reason is recorded, so a model without `steps` gets one request where a
model with steps gets one per value, and nothing it would ignore is ever sent.
Settings that map to the same payload (two sizes that become the same preset)
are sent once.

Jobs are produced lazily (a generator) so a 100,000-job sweep does not sit in
memory; `SweepPlan.total` counts them without building them.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.catalog.mapping import ParameterError, check_prompt
from bench.catalog.spec import ModelSpec
from bench.config import Size, SweepAxes, Target
from bench.errors import ConfigError
from bench.prompts import PromptItem
from bench.providers.base import Provider
from bench.request import ImageRequest, request_key


@dataclass(frozen=True)
class Setting:
    """One point of the metaparameter grid for one target, already mapped and validated."""

    request: ImageRequest  # prompt left empty; filled per job
    payload: Mapping[str, Any]  # native parameters without the prompt
    left_out: Mapping[str, str]
    size: Size | None


@dataclass(frozen=True)
class Job:
    target: Target
    spec: ModelSpec
    prompt: PromptItem
    request: ImageRequest
    payload: Mapping[str, Any]
    size: Size | None
    repeat: int
    key: str
    left_out: Mapping[str, str]


def _axis(
    values: Sequence[Any], native: str | None, name: str, spec: ModelSpec
) -> tuple[list[Any], str | None]:
    """The values to sweep for this model, and why they were dropped if the model has no such parameter."""
    if native is None and any(v is not None for v in values):
        return [None], f"{spec.target_id} has no {name} parameter"
    return list(values), None


def settings_for(target: Target, spec: ModelSpec, provider: Provider, axes: SweepAxes) -> list[Setting]:
    steps, steps_why = _axis(axes.steps, spec.steps_param, "steps", spec)
    guidance, guidance_why = _axis(axes.guidance, spec.guidance_param, "guidance", spec)
    seeds, seeds_why = _axis(axes.seeds, spec.seed_param, "seed", spec)
    collapsed = {
        k: v for k, v in (("steps", steps_why), ("guidance", guidance_why), ("seed", seeds_why)) if v
    }
    out: list[Setting] = []
    seen: set[str] = set()
    for step, guide, seed, size in itertools.product(steps, guidance, seeds, axes.sizes):
        request = ImageRequest(
            prompt="",
            negative_prompt=axes.negative_prompt,
            steps=step,
            guidance=guide,
            seed=seed,
            width=size.width if size else None,
            height=size.height if size else None,
            aspect_ratio=size.aspect_ratio if size else None,
            num_images=axes.num_images,
            extra=target.params,
        )
        try:
            mapped = provider.map_request(spec, request)
        except ParameterError as exc:
            raise ConfigError(f"targets[{target.id}]", exc.value, str(exc)) from None
        payload = {k: v for k, v in mapped.payload.items() if k != spec.prompt_param}
        identity = request_key(spec.provider, spec.model, payload, 0)
        if identity in seen:
            continue  # this setting reaches the model as one already planned
        seen.add(identity)
        out.append(
            Setting(request=request, payload=payload, left_out={**collapsed, **mapped.left_out}, size=size)
        )
    return out


@dataclass(frozen=True)
class SweepPlan:
    prompts: tuple[PromptItem, ...]
    targets: tuple[tuple[Target, ModelSpec, tuple[Setting, ...]], ...]
    repeats: int

    @property
    def total(self) -> int:
        per_prompt = sum(len(settings) for _, _, settings in self.targets)
        return per_prompt * len(self.prompts) * self.repeats

    def jobs(self) -> Iterator[Job]:
        # Prompt-major order interleaves targets, so a partial run (budget, Ctrl-C)
        # covers every target rather than finishing one and starving the rest.
        for repeat in range(self.repeats):
            for prompt in self.prompts:
                for target, spec, settings in self.targets:
                    for setting in settings:
                        yield make_job(target, spec, prompt, setting, repeat)


def make_job(target: Target, spec: ModelSpec, prompt: PromptItem, setting: Setting, repeat: int) -> Job:
    request = ImageRequest(
        prompt=prompt.text,
        negative_prompt=setting.request.negative_prompt,
        steps=setting.request.steps,
        guidance=setting.request.guidance,
        seed=setting.request.seed,
        width=setting.request.width,
        height=setting.request.height,
        aspect_ratio=setting.request.aspect_ratio,
        num_images=setting.request.num_images,
        extra=setting.request.extra,
    )
    payload = {spec.prompt_param: prompt.text, **setting.payload}
    return Job(
        target=target,
        spec=spec,
        prompt=prompt,
        request=request,
        payload=payload,
        size=setting.size,
        repeat=repeat,
        key=request_key(spec.provider, spec.model, payload, repeat),
        left_out=setting.left_out,
    )


_warned_left_out: set[tuple[str, str]] = set()


def warn_left_out(target_id: str, settings: Sequence[Setting]) -> None:
    """One stderr line per target naming what the mapping could not carry and why (the records
    carry it too, in left_out). Once per process: `bench run` plans twice (validate, then run)."""
    reasons: dict[str, str] = {}
    for setting in settings:
        for name, why in setting.left_out.items():
            reasons.setdefault(name, why)
    line = "; ".join(f"{name} ({why})" for name, why in reasons.items())
    if line and (target_id, line) not in _warned_left_out:
        _warned_left_out.add((target_id, line))
        print(f"bench: warning: {target_id}: not sent: {line}", file=sys.stderr)


def plan_sweep(
    targets: Sequence[Target],
    providers: Mapping[str, Provider],
    prompts: Sequence[PromptItem],
    axes: SweepAxes,
    specs: Mapping[str, ModelSpec] | None = None,
) -> SweepPlan:
    """Validate every setting of every target (raises ConfigError) and return the lazy plan.

    `specs` (target id -> schema) come from the catalog (bench.catalog.sources); without
    them each provider's shipped models are used. A target's own sweep values replace
    the shared ones for it.
    """
    planned = []
    for target in targets:
        provider = providers[target.provider]
        spec = specs[target.id] if specs is not None else provider.model_spec(target.model)
        settings = tuple(settings_for(target, spec, provider, target.axes(axes)))
        for item in prompts:  # the prompt's own limits (Eachlabs: maxLength 500), before anything is sent
            problem = check_prompt(spec, item.text)
            if problem is not None:
                raise ConfigError(
                    f"prompts[{item.id}]", f"{len(item.text)} characters", f"{problem}; shorten or drop it"
                )
        warn_left_out(target.id, settings)
        planned.append((target, spec, settings))
    return SweepPlan(prompts=tuple(prompts), targets=tuple(planned), repeats=axes.repeats)

"""`metrics.judge.base_url: emulator`: the judge is answered by the chat emulator, started in-process
for one scoring pass and stopped after it (configs/metrics/offline.yaml, the offline preset's).

The emulator (bench/emulators/chat.py) measures the image's pixels to answer the judge's colour,
count and position questions: a crude stand-in for a VLM that works offline. It never sees what the
generator meant to draw, only the PNG. Scores it gives are labelled "emulated judge" wherever they
are shown (bench.decide.verdict.judge_is_emulated reads the judge fingerprint).
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

IN_PROCESS = "emulator"
EMULATOR_TARGET = "bench-emulator:chat-emulator"
OFFLINE_PROVIDERS = frozenset({"local"})  # the generator the emulated judge's pixel measurements are made for
LOOPBACK_HOSTS = frozenset({"localhost", "::1"})  # and 127.x: emulators on this machine
KEY_ENV = "T2I_BENCH_EMULATED_JUDGE_TOKEN"  # a one-off token for the in-process emulator, not an API key


def check_judge_endpoint(metrics_cfg: Mapping[str, Any]) -> None:
    """The in-process emulator answers only as itself: another judge target on `base_url: emulator`
    would label pixel measurements with a VLM's name. Raises ConfigError (exit 2) before any request."""
    from bench.errors import ConfigError

    judge = metrics_cfg.get("judge") or {}
    if wants_emulator(metrics_cfg) and judge.get("target") != EMULATOR_TARGET:
        raise ConfigError(
            "metrics.judge.target",
            judge.get("target"),
            f"metrics.judge.base_url=emulator is the built-in chat emulator, judged as {EMULATOR_TARGET}; "
            "to use this target, also set metrics.judge.base_url=null (its provider's endpoint) or its URL",
        )


def target_providers(targets: Any) -> set[str]:
    """The providers named by a `targets` list (strings "provider:model" or {target: ..., ...} items)."""
    names: set[str] = set()
    for item in targets if isinstance(targets, Sequence) and not isinstance(targets, str) else []:
        target = item.get("target") if isinstance(item, Mapping) else item
        if isinstance(target, str) and ":" in target:
            names.add(target.split(":", 1)[0])
    return names


def real_hosted(providers: Iterable[str], base_urls: Mapping[str, Any]) -> set[str]:
    """The providers whose images come from a real host: not the local generator, and not an
    emulator on this machine (the emulators draw with the local generator, whose drawings the
    emulated judge measures). A provider without a base_url uses its public endpoint."""
    real: set[str] = set()
    for name in set(providers) - OFFLINE_PROVIDERS:
        url = base_urls.get(name)
        host = urlsplit(str(url)).hostname if url else None
        if host not in LOOPBACK_HOSTS and not (host or "").startswith("127."):
            real.add(name)
    return real


def _base_urls(cfg: Mapping[str, Any]) -> dict[str, Any]:
    blocks = cfg.get("providers") or {}
    return {str(k): b.get("base_url") for k, b in blocks.items() if isinstance(b, Mapping)}


def without_inherited_judge(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """The config a run uses: when every target is a real hosted provider's, the offline preset's
    emulated judge (inherited from the default models=local because `targets` was overridden without
    `models`) is turned off, as with metrics=default: it measures the local generator's drawings, not
    real images. Emulators on 127.0.0.1 draw with the local generator, so they keep it. A run mixing
    real hosted targets with local or emulated ones keeps it and stops in check_judged_targets (exit 2)."""
    metrics = cfg.get("metrics") or {}
    providers = target_providers(cfg.get("targets"))
    if not wants_emulator(metrics) or not providers:
        return cfg
    if real_hosted(providers, _base_urls(cfg)) != providers:
        return cfg
    judge = {**dict(metrics["judge"]), "enabled": False}
    return {**dict(cfg), "metrics": {**dict(metrics), "judge": judge}}


INHERITED_JUDGE_NOTE = (
    "note: the offline preset's emulated judge is off for this run (it measures the local generator's "
    "drawings and every target is a real hosted one); for a quality signal on hosted images set "
    "metrics.judge.enabled=true metrics.judge.target=<provider:vlm> metrics.judge.base_url=null (docs/judge.md)"
)


def check_judged_targets(
    metrics_cfg: Mapping[str, Any], providers: Sequence[str], base_urls: Mapping[str, Any]
) -> None:
    """The in-process emulated judge comes with the offline preset (models=local, the default): it
    measures the local generator's drawings (also what the emulators on 127.0.0.1 serve). A run
    mixing those with a real hosted provider's targets would judge real images by pixel counts; this
    fails first (ConfigError, exit 2), naming the preset to add."""
    from bench.errors import ConfigError

    if not wants_emulator(metrics_cfg):
        return
    hosted = sorted(real_hosted(providers, base_urls))
    if hosted:
        presets = " or ".join(f"models={p}" for p in hosted)
        raise ConfigError(
            "metrics.judge.base_url",
            IN_PROCESS,
            f"this is the offline preset's emulated judge (it measures the local generator's drawings), but the "
            f"targets include provider {', '.join(hosted)}: add metrics=default (or {presets}: the provider's preset), "
            "or metrics.judge.target=<provider:vlm> with metrics.judge.base_url=null for a real VLM judge",
        )


def judge_for_run_folder(metrics_cfg: Mapping[str, Any], recorded: Mapping[str, Any]) -> Mapping[str, Any]:
    """`bench score RUN`: the same rule as `bench run`, applied to the targets and endpoints the run
    recorded in its config.yaml (`recorded`), not to the default preset's. Returns the metrics block
    to score with (judge off, with one note, when every target was a real host's); raises
    ConfigError (exit 2) when real hosts were mixed with local or emulated targets."""
    cfg = {"targets": recorded.get("targets"), "providers": recorded.get("providers"), "metrics": metrics_cfg}
    used = without_inherited_judge(cfg)
    if used is not cfg:
        print(INHERITED_JUDGE_NOTE, file=sys.stderr)
        return dict(used["metrics"])
    check_judged_targets(metrics_cfg, sorted(target_providers(cfg["targets"])), _base_urls(cfg))
    return metrics_cfg


def wants_emulator(metrics_cfg: Mapping[str, Any]) -> bool:
    judge = metrics_cfg.get("judge") or {}
    return bool(isinstance(judge, Mapping) and judge.get("enabled") and judge.get("base_url") == IN_PROCESS)


@contextmanager
def judge_endpoint(metrics_cfg: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The metrics block to score with: unchanged, or with the judge pointed at a chat emulator
    serving on 127.0.0.1 (a free port) for the duration of the block."""
    if not wants_emulator(metrics_cfg):
        yield metrics_cfg
        return
    from bench.emulators.chat import create_app
    from bench.emulators.common import Knobs
    from bench.emulators.serve import running

    token = secrets.token_hex(16)
    saved = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = token
    try:
        with running(create_app(Knobs(api_key=token, report_cost=False))) as url:
            # Named, not addressed: the port is new each time, the judge is the same (cache and fingerprint).
            judge = {**dict(metrics_cfg["judge"]), "base_url": url, "api_key_env": KEY_ENV,
                     "endpoint_name": "in-process://bench-emulator/chat"}  # fmt: skip
            yield {**dict(metrics_cfg), "judge": judge}
    finally:
        if saved is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = saved

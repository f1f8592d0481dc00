"""`bench emulate PROVIDER`: serve a provider's loopback emulator, to try a config offline."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from bench.emulators import akiio, chat, eachlabs, fal, kidjig, openai_compat, replicate
from bench.emulators.common import FAULTS, Knobs
from bench.emulators.serve import running

# provider name -> (app factory, environment variable its default config reads the key from)
EMULATORS: dict[str, tuple[Callable[[Knobs, argparse.Namespace], Any], str]] = {
    "openai": (lambda k, a: openai_compat.create_app(k, profile="openai"), "OPENAI_API_KEY"),
    "aimlapi": (
        lambda k, a: openai_compat.create_app(k, profile="aimlapi", fal_shape=a.fal_shape),
        "AIMLAPI_API_KEY",
    ),
    "apipie": (lambda k, a: openai_compat.create_app(k, profile="apipie"), "APIPIE_API_KEY"),
    "eachlabs": (lambda k, a: eachlabs.create_app(k, legacy=a.legacy), "EACHLABS_API_KEY"),
    "akiio": (lambda k, a: akiio.create_app(k, errors_as_200=a.errors_as_200), "AKIIO_API_KEY"),
    "kidjig": (lambda k, a: kidjig.create_app(k), "KIDJIG_API_KEY"),
    "fal": (lambda k, a: fal.create_app(k), "FAL_KEY"),
    "replicate": (lambda k, a: replicate.create_app(k), "REPLICATE_API_TOKEN"),
    # The VLM judge's chat-completions API (a crude stand-in that measures the image).
    "chat": (lambda k, a: chat.create_app(k), "OPENAI_API_KEY"),
}


def _seconds_range(text: str) -> tuple[float, float]:
    """ "0.5" -> (0.5, 0.5); "0.2,1.5" -> uniform between."""
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use SECONDS or LO,HI (e.g. 0.2,1.5)") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not 0 <= parts[0] <= parts[1]:
        raise argparse.ArgumentTypeError(f"{text!r}: use SECONDS or LO,HI with 0 <= LO <= HI")
    return parts[0], parts[1]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench emulate",
        description="Serve a loopback emulator of a provider's API on 127.0.0.1 (any non-empty key is accepted).",
    )
    p.add_argument("provider", choices=sorted(EMULATORS))
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--queue", type=_seconds_range, default=(0.0, 0.0), metavar="S|LO,HI", help="time queued")
    p.add_argument(
        "--latency", type=_seconds_range, default=(0.5, 1.5), metavar="S|LO,HI", help="inference time"
    )
    p.add_argument("--fault", choices=FAULTS, help="failure to inject")
    p.add_argument("--fail-rate", type=float, default=1.0, help="share of requests that get --fault (0-1)")
    p.add_argument("--fail-first", type=int, help="only the first N requests get --fault")
    p.add_argument(
        "--fault-at",
        choices=("submit", "status", "result"),
        default="submit",
        help="where rate_limit/server_error/unavailable answer (status/result: fal's queue)",
    )
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds sent with 429")
    p.add_argument("--no-cost", action="store_true", help="do not report cost in answers")
    p.add_argument(
        "--gray-model",
        action="append",
        default=[],
        metavar="MODEL",
        help="draw this model's images with every colour gray: a clearly worse model (repeatable)",
    )
    p.add_argument("--max-side", type=int, default=256, help="largest image side rendered, in pixels")
    p.add_argument(
        "--fal-shape", action="store_true", help="aimlapi: answer fal-style images[] (older flux routes)"
    )
    p.add_argument("--legacy", action="store_true", help="eachlabs: failures as status=failed with a string")
    p.add_argument(
        "--errors-as-200", action="store_true", help="akiio: send success:false errors with HTTP 200"
    )
    return p


def build_app(args: argparse.Namespace) -> Any:
    knobs = Knobs(
        queue_s=args.queue,
        inference_s=args.latency,
        fault=args.fault,
        fault_rate=args.fail_rate,
        fault_first=args.fail_first,
        fault_at=args.fault_at,
        retry_after_s=args.retry_after,
        report_cost=not args.no_cost,
        max_side_px=args.max_side,
        gray_models=tuple(args.gray_model),
    )
    factory, _ = EMULATORS[args.provider]
    return factory(knobs, args)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        app = build_app(args)
    except ValueError as exc:
        print(f"bench emulate: {exc}", file=sys.stderr)
        return 2
    _, key_env = EMULATORS[args.provider]
    with running(app, port=args.port) as url:
        print(f"emulating {args.provider} at {url} (Ctrl-C to stop)")
        print(f"  export {key_env}=any-non-empty-value")
        print(f"  bench run models={args.provider} providers.{args.provider}.base_url={url}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("stopped")
    return 0

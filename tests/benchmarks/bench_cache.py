"""What the response cache costs the runner's hot path, against an HTTP server on 127.0.0.1.

Prints requests/s of Runner.run over the same plan, measured in the same process, one after
another, and each as a ratio to the first:
  off        cache.mode=off (no cache object at all: the hot path the cache must not slow down)
  sent       cache.mode=read_write, empty cache: every request looked up, claimed, sent, stored
  replayed   the same plan again into a new run: every request replayed (entry and image verified)

Run: .venv/bin/python tests/benchmarks/bench_cache.py [--requests 2000] [--rounds 3]
(the server runs in its own process, as in bench_runner.py). Rounds interleave the three
modes, so a noisy neighbour on shared cores hits all of them alike; the median is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_runner import _serve, free_port, runner_config, wait_for


def rate(cfg: dict[str, Any], run_dir: Path, cache_on: bool) -> tuple[float, int, int]:
    """(requests/s, requests finished, of them replayed) of one Runner.run."""
    from bench.cache import ResponseCache
    from bench.cli.run import prepare
    from bench.runner import Runner
    from bench.store import RunStore

    os.environ["T2I_BENCH_PERF_KEY"] = "perf-test-key"
    config, providers, plan = prepare(cfg, require_keys=True)
    for provider in providers.values():
        provider.prepare_transport()
    store = RunStore(run_dir)
    runner = Runner(
        run_id=run_dir.name,
        providers=providers,
        store=store,
        settings=config.runner,
        prices=config.prices,
        max_cost_usd=None,
        cache=ResponseCache(config.cache) if cache_on else None,
    )

    async def go() -> Any:
        try:
            return await runner.run(plan)
        finally:
            for p in providers.values():
                await p.aclose()

    t0 = time.perf_counter()
    summary = asyncio.run(go())
    elapsed = time.perf_counter() - t0
    return summary.ok / elapsed, summary.ok, summary.cached


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        wait_for(port)
        url = f"http://127.0.0.1:{port}"
        rates: dict[str, list[float]] = {"off": [], "sent": [], "replayed": []}
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as tmp:
                cfg = runner_config(url, args.requests, Path(tmp))
                cfg["cache"] = {**cfg.get("cache", {}), "mode": "read_write", "dir": str(Path(tmp) / "cache")}
                r_off, n_off, _ = rate(cfg, Path(tmp) / "off", cache_on=False)
                r_sent, n_sent, c_sent = rate(cfg, Path(tmp) / "sent", cache_on=True)
                r_rep, n_rep, c_rep = rate(cfg, Path(tmp) / "replayed", cache_on=True)
                assert c_sent == 0 and c_rep == n_rep == n_sent == n_off, (
                    n_off,
                    n_sent,
                    c_sent,
                    n_rep,
                    c_rep,
                )
            rates["off"].append(r_off)
            rates["sent"].append(r_sent)
            rates["replayed"].append(r_rep)
        base = statistics.median(rates["off"])
        print(f"{args.requests} requests, concurrency 64, median of {args.rounds} interleaved rounds")
        for mode, values in rates.items():
            med = statistics.median(values)
            print(
                f"  {mode:9} {med:8.0f} req/s  ratio to off {med / base:.2f}  ({', '.join(f'{v:.0f}' for v in values)})"
            )
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()

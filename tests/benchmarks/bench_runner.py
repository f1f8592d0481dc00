"""Runner throughput and memory, against a zero-latency HTTP server on 127.0.0.1.

Prints, measured in the same run:
  1. requests/s of a bare httpx.AsyncClient loop (POST + JSON parse) and of the full runner
     (limits, retries, image decode check, content-addressed store, fsynced journal), as a ratio
     (goal: >= 0.8);
  2. peak RSS of the runner for 10,000 and 100,000 jobs (goal: grows far slower than the job count,
     because jobs are generated lazily and records stream to disk).

Run: .venv/bin/python tests/benchmarks/bench_runner.py [--requests 3000] [--memory-jobs 10000 100000]
The server runs in its own process so that client and server do not share one interpreter's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import multiprocessing
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONCURRENCY = 64


def _png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _serve(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    body = json.dumps({"data": [{"b64_json": _png_b64()}], "meta": {"usage": {"usd_spent": 0.0}}}).encode()

    async def generate(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    app = Starlette(routes=[Route("/v1/images/generations", generate, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="error", access_log=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("benchmark server did not start")


async def bare_loop(url: str, n: int) -> float:
    import httpx

    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    sem = asyncio.Semaphore(CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(i: int) -> None:
            async with sem:
                r = await client.post(
                    f"{url}/v1/images/generations", json={"model": "flux/schnell", "prompt": f"p{i}"}
                )
                r.json()

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return n / (time.perf_counter() - t0)


def runner_config(url: str, n_jobs: int, results: Path) -> dict[str, Any]:
    from bench.cli.hydra_config import compose_config

    cfg = compose_config(["sweep=quick", "metrics=off", "runner.progress=off", f"results_dir={results}"])
    cfg["providers"]["bench"] = {
        "adapter": "openai_compat",
        "base_url": url,
        "api_key_env": "T2I_BENCH_PERF_KEY",
        "concurrency": CONCURRENCY,
        "timeout_s": 30,
        "options": {"profile": "aimlapi"},
    }
    cfg["targets"] = ["bench:flux/schnell"]
    cfg["sweep"].update(sizes=["512x512"], seeds=list(range(-(-n_jobs // 12))))
    return cfg


def runner_rate(url: str, n_jobs: int) -> tuple[float, int]:
    """Requests/s of Runner.run over n_jobs (12 prompts x seeds), and how many it sent."""
    import os

    from bench.cli.run import prepare
    from bench.runner import Runner
    from bench.store import RunStore

    os.environ["T2I_BENCH_PERF_KEY"] = "perf-test-key"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = runner_config(url, n_jobs, Path(tmp))
        config, providers, plan = prepare(cfg, require_keys=True)
        store = RunStore(Path(tmp) / "run")
        runner = Runner(
            run_id="perf",
            providers=providers,
            store=store,
            settings=config.runner,
            prices=config.prices,
            max_cost_usd=None,
        )

        async def go() -> int:
            try:
                summary = await runner.run(plan)
            finally:
                for p in providers.values():
                    await p.aclose()
            return summary.ok

        t0 = time.perf_counter()
        ok = asyncio.run(go())
        elapsed = time.perf_counter() - t0
        store.write_records()
    return ok / elapsed, ok


def memory_child(url: str, n_jobs: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rate, ok = runner_rate(url, n_jobs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"jobs": ok, "rss_before_mib": before / 1024, "rss_peak_mib": peak / 1024, "rate": rate})
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--memory-jobs", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        memory_child(args.child[0], int(args.child[1]))
        return

    port = free_port()
    server = multiprocessing.Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        wait_for(port)
        url = f"http://127.0.0.1:{port}"
        asyncio.run(bare_loop(url, 300))  # warm up the server
        bare = asyncio.run(bare_loop(url, args.requests))
        ours, sent = runner_rate(url, args.requests)
        bare_again = asyncio.run(bare_loop(url, args.requests))  # the machine is shared: bracket it
        baseline = (bare + bare_again) / 2
        print(f"throughput over {sent} requests, concurrency {CONCURRENCY}:")
        print(f"  bare httpx loop   {baseline:8.1f} req/s  (runs: {bare:.1f}, {bare_again:.1f})")
        print(f"  bench runner      {ours:8.1f} req/s")
        print(f"  ratio             {ours / baseline:8.2f}  (goal >= 0.80)")
        rows = []
        for n in args.memory_jobs:
            out = subprocess.run(
                [sys.executable, __file__, "--child", url, str(n)], capture_output=True, text=True, check=True
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if rows:
            print("peak memory (RSS, MiB) of one runner process:")
            for r in rows:
                grown = r["rss_peak_mib"] - r["rss_before_mib"]
                print(
                    f"  {r['jobs']:>7} jobs: before {r['rss_before_mib']:7.1f}  peak {r['rss_peak_mib']:7.1f}"
                    f"  (+{grown:.1f})  at {r['rate']:.0f} req/s"
                )
            if len(rows) >= 2:
                a, b = rows[0], rows[-1]
                growth = (b["rss_peak_mib"] - b["rss_before_mib"]) / max(
                    a["rss_peak_mib"] - a["rss_before_mib"], 1e-9
                )
                print(f"  jobs x{b['jobs'] / a['jobs']:.0f} -> memory growth x{growth:.2f}")
    finally:
        server.terminate()
        server.join(timeout=5)


if __name__ == "__main__":
    main()

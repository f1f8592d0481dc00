"""Runner throughput, memory, resume and start-up time, against an HTTP server on 127.0.0.1.

Prints, measured in the same run:
  1. requests/s of a bare httpx.AsyncClient loop (POST + JSON parse) and of the full runner
     (limits, retries, image decode check, content-addressed store, fsynced journal), as a ratio
     (goal: >= 0.8). Every answer carries different image bytes, so the store writes one file per
     request as with a real model (one shared image would be written once and hide that cost);
     whether `sniffio` is importable is printed beside it (without it httpcore fails an import on
     every request);
  2. peak RSS of the runner for 10,000 and 100,000 jobs (goal: grows far slower than the job count,
     because jobs are generated lazily and records stream to disk);
  3. `bench run` of an already finished 10,000-request run, end to end (goal: < 3 s), and the time
     from the "run folder" line to the first request of a 100,000-request plan (goal: < 2 s).

Run: .venv/bin/python tests/benchmarks/bench_runner.py [--requests 3000] [--memory-jobs 10000 100000]
     [--resume-jobs 10000] [--plan-jobs 100000]
The server runs in its own process so that client and server do not share one interpreter's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import multiprocessing
import os
import re
import resource
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib
from pathlib import Path
from typing import Any

CONCURRENCY = 64


def _png_b64() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _unique_png(base: bytes, serial: int) -> bytes:
    """The same picture with a tEXt chunk holding `serial`: different bytes, still a valid PNG."""
    text = b"serial\x00" + str(serial).encode()
    chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(">I", zlib.crc32(b"tEXt" + text))
    ihdr_end = 8 + 25  # signature + IHDR chunk
    return base[:ihdr_end] + chunk + base[ihdr_end:]


def _serve(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    base = base64.b64decode(_png_b64())
    served = {"n": 0, "first_at": 0.0}

    async def generate(request: Request) -> Response:
        await request.body()
        served["n"] += 1
        if served["first_at"] == 0.0:
            served["first_at"] = time.time()  # wall clock: compared with the client process's
        image = base64.b64encode(_unique_png(base, served["n"])).decode()
        body = json.dumps({"data": [{"b64_json": image}], "meta": {"usage": {"usd_spent": 0.0}}})
        return Response(body, media_type="application/json")

    async def first(request: Request) -> Response:
        """When the first request since the last reset arrived (0 if none); POST resets."""
        if request.method == "POST":
            served["first_at"] = 0.0
        return JSONResponse({"first_at": served["first_at"], "served": served["n"]})

    app = Starlette(
        routes=[
            Route("/v1/images/generations", generate, methods=["POST"]),
            Route("/first", first, methods=["GET", "POST"]),
        ]
    )
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
    cfg["sweep"].update(sizes=["512x512"], seeds=list(range(1, 1 + -(-n_jobs // 12))))
    return cfg


def run_config(cfg: dict[str, Any], run_dir: Path) -> tuple[int, float]:
    """Runner.run over the composed config into run_dir (records.parquet written after the clock):
    (requests ok, seconds)."""
    import os

    from bench.cli.run import prepare
    from bench.runner import Runner
    from bench.store import RunStore

    os.environ["T2I_BENCH_PERF_KEY"] = "perf-test-key"
    config, providers, plan = prepare(cfg, require_keys=True)
    for provider in providers.values():
        provider.prepare_transport()  # as `bench run` does, before its event loop (and this clock)
    store = RunStore(run_dir)
    runner = Runner(
        run_id=run_dir.name,
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
    return ok, elapsed


def runner_rate(url: str, n_jobs: int, transport: str | None = None) -> tuple[float, int]:
    """Requests/s of Runner.run over n_jobs (12 prompts x seeds), and how many it sent."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = runner_config(url, n_jobs, Path(tmp))
        if transport:
            cfg["runner"]["http_transport"] = transport
        ok, elapsed = run_config(cfg, Path(tmp) / "run")
    return ok / elapsed, ok


def memory_child(url: str, n_jobs: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rate, ok = runner_rate(url, n_jobs)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps({"jobs": ok, "rss_before_mib": before / 1024, "rss_peak_mib": peak / 1024, "rate": rate})
    )


def cli_args(url: str, n_jobs: int, results: Path, run_name: str) -> list[str]:
    """`bench run` overrides: the aimlapi adapter pointed at the benchmark server, 12 prompts x repeats."""
    port = url.rsplit(":", 1)[1]
    return [
        "sweep=quick",
        "sweep.sizes=[512x512]",
        f"sweep.repeats={-(-n_jobs // 12)}",
        "targets=[aimlapi:flux/schnell]",
        f"providers.aimlapi.base_url=http://127.0.0.1:{port}",
        f"providers.aimlapi.concurrency={CONCURRENCY}",
        "runner.progress=log",
        f"results_dir={results}",
        f"run_name={run_name}",
    ]


def bench_cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())", *args]


def cli_env() -> dict[str, str]:
    return {**os.environ, "AIMLAPI_API_KEY": "perf-test-key"}


def resume_finished_run_s(url: str, n_jobs: int, results: Path) -> tuple[float, float, str]:
    """Wall and CPU time of `bench run` re-run on a finished n_jobs run (the process, start to exit)."""
    args = cli_args(url, n_jobs, results, "finished")
    subprocess.run(bench_cli("run", *args), env=cli_env(), capture_output=True, check=True, timeout=3600)
    cpu0 = _children_cpu_s()
    t0 = time.perf_counter()
    done = subprocess.run(bench_cli("run", *args), env=cli_env(), capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    line = next((ln for ln in done.stderr.splitlines() if "requests finished" in ln), "")
    return elapsed, _children_cpu_s() - cpu0, line.removeprefix("bench: ")


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of the finished child processes: on shared cores, wall time
    measures the neighbours too; CPU time is what the process itself needed."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _server_first_at(url: str, reset: bool = False) -> float:
    req = urllib.request.Request(f"{url}/first", method="POST" if reset else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return float(json.loads(resp.read())["first_at"])


def time_to_first_request(url: str, n_jobs: int, results: Path) -> tuple[float, float]:
    """(process start -> first request, "run folder" log line -> first request), seconds, of a new n_jobs run."""
    _server_first_at(url, reset=True)
    log_path = results / "ttfr.log"
    with open(log_path, "w") as log:
        started = time.time()
        proc = subprocess.Popen(
            bench_cli("run", *cli_args(url, n_jobs, results, "ttfr")), env=cli_env(), stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 300
            first = 0.0
            while first == 0.0 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.02)
                first = _server_first_at(url)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    text = log_path.read_text()
    if first == 0.0:
        raise RuntimeError(f"no request arrived: {text[-2000:]}")
    m = re.search(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]\[bench\]\[INFO\] - run folder", text)
    if not m:
        raise RuntimeError(f"no 'run folder' line: {text[-2000:]}")
    import datetime as dt

    folder_at = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return first - started, first - folder_at


def sniffio_state() -> str:
    try:
        import sniffio
    except ImportError:
        return "MISSING (httpcore fails an import on every request: install sniffio)"
    return f"present ({getattr(sniffio, '__version__', '?')})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--memory-jobs", type=int, nargs="*", default=[10_000, 100_000])
    parser.add_argument("--resume-jobs", type=int, default=10_000, help="0 skips the resume benchmark")
    parser.add_argument("--plan-jobs", type=int, default=100_000, help="0 skips time-to-first-request")
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
        ours, sent = runner_rate(url, args.requests, "aiohttp")
        ours_httpx, _ = runner_rate(url, args.requests, "httpx")
        bare_again = asyncio.run(bare_loop(url, args.requests))  # the machine is shared: bracket it
        baseline = (bare + bare_again) / 2
        print(f"machine load average (1 min) at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"throughput over {sent} requests, concurrency {CONCURRENCY}, unique image bytes per request:")
        print(f"  sniffio           {sniffio_state()}")
        print(f"  bare httpx loop   {baseline:8.1f} req/s  (runs: {bare:.1f}, {bare_again:.1f})")
        for transport, rate in (("aiohttp", ours), ("httpx", ours_httpx)):
            verdict = "meets" if rate / baseline >= 0.8 else "MISSES"
            print(
                f"  bench runner, runner.http_transport={transport:<7} {rate:8.1f} req/s"
                f"  ratio {rate / baseline:5.2f}  (goal >= 0.80: {verdict})"
            )
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
        if args.resume_jobs:
            with tempfile.TemporaryDirectory() as tmp:
                elapsed, cpu, line = resume_finished_run_s(url, args.resume_jobs, Path(tmp))
            verdict = "meets" if elapsed < 3.0 else "MISSES"
            print(f"re-running a finished {args.resume_jobs}-request run (`bench run`, whole process):")
            print(f"  {elapsed:6.2f} s wall, {cpu:.2f} s CPU  (goal < 3 s: {verdict})  [{line}]")
        if args.plan_jobs:
            with tempfile.TemporaryDirectory() as tmp:
                from_start, from_folder = time_to_first_request(url, args.plan_jobs, Path(tmp))
            verdict = "meets" if from_folder < 2.0 else "MISSES"
            print(f"time to the first request of a {args.plan_jobs}-request plan:")
            print(f"  {from_folder:6.2f} s from the 'run folder' line  (goal < 2 s: {verdict})")
            print(f"  {from_start:6.2f} s from process start (imports, Hydra, planning included)")
    finally:
        server.terminate()
        server.join(timeout=5)


if __name__ == "__main__":
    main()

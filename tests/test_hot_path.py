"""Hot-path leftovers (issue 14): sniffio present, keys derived once, counts equal the journal."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import bench.sweep
from bench.cli.run import prepare
from bench.runner import Runner
from bench.store import RunStore

SMOKE = ["experiment=smoke", "metrics=off", "runner.progress=off", "sweep.seeds=[0,1,2]"]


def test_sniffio_is_importable_and_sees_asyncio() -> None:
    """httpcore asks sniffio for the running library on every request; a failed import costs a third of the CPU."""
    import sniffio

    async def which() -> str:
        return sniffio.current_async_library()

    assert asyncio.run(which()) == "asyncio"


def make_runner(cfg: dict[str, Any], store: RunStore) -> tuple[Runner, Any]:
    config, providers, plan = prepare(cfg, require_keys=True)
    runner = Runner(
        run_id="hot",
        providers=providers,
        store=store,
        settings=config.runner,
        prices=config.prices,
        max_cost_usd=None,
    )
    return runner, plan


def test_each_job_key_is_derived_once_per_run(
    bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RunStore(tmp_path / "run")
    runner, plan = make_runner(bench_cfg(SMOKE), store)
    calls: list[str] = []
    real_key = bench.sweep.request_key

    def counting_key(*args: Any) -> str:
        key = real_key(*args)
        calls.append(key)
        return key

    monkeypatch.setattr(bench.sweep, "request_key", counting_key)
    summary = asyncio.run(runner.run(plan))
    assert summary.ok == plan.total == 12
    assert len(calls) == plan.total and len(set(calls)) == plan.total

    # A resume of the finished run keys each job once too, and counts them all as stored.
    runner, plan = make_runner(bench_cfg(SMOKE), store)
    calls.clear()  # planning keys each setting (to drop duplicates), not each job
    summary = asyncio.run(runner.run(plan))
    assert (summary.finished, summary.already_done) == (0, plan.total)
    assert len(calls) == plan.total


class GatedStore(RunStore):
    """Holds every journal write until released, so requests finish with their line still queued."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(run_dir)
        self.release = threading.Event()

    def _write_batch(self, batch: Any) -> None:
        self.release.wait(timeout=60)
        super()._write_batch(batch)


def test_ctrl_c_counts_what_reached_the_journal(bench_cfg: Any, tmp_path: Path) -> None:
    store = GatedStore(tmp_path / "run")
    runner, plan = make_runner(bench_cfg(SMOKE), store)

    async def run_and_interrupt() -> Any:
        run = asyncio.create_task(runner.run(plan))
        # Wait until some requests have generated and queued their lines (none is written yet).
        while store._queue is None or store._queue.qsize() < 3:
            await asyncio.sleep(0.01)
        runner.interrupt()  # cancels the tasks that wait for their queued writes
        await asyncio.sleep(0.05)
        store.release.set()
        return await run

    summary = asyncio.run(run_and_interrupt())
    lines = [json.loads(line) for line in (tmp_path / "run" / "journal.jsonl").read_text().splitlines()]
    ok_in_journal = sum(1 for rows in lines if rows[0]["status"] == "ok")
    assert summary.interrupted
    assert ok_in_journal >= 3  # the queued writes were kept...
    assert summary.ok == ok_in_journal  # ...and counted
    assert summary.images == sum(len(rows) for rows in lines if rows[0]["status"] == "ok")

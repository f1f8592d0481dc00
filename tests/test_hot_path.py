"""Hot-path leftovers (issue 14): sniffio present, keys derived once, counts equal the journal."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import pytest

import bench.runner
import bench.store
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


def test_resume_reads_the_journal_once(
    bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repair, finished keys and the folder's spend come from one parse of each journal line."""
    store = RunStore(tmp_path / "run")
    runner, plan = make_runner(bench_cfg(SMOKE), store)
    asyncio.run(runner.run(plan))
    lines = store.journal_path.read_bytes().count(b"\n")
    assert lines == plan.total

    parsed: list[bytes] = []
    real_rows = bench.store.journal_rows

    def counting_rows(line: bytes) -> Any:
        parsed.append(line)
        return real_rows(line)

    monkeypatch.setattr(bench.store, "journal_rows", counting_rows)
    store = RunStore(tmp_path / "run")
    runner, plan = make_runner(bench_cfg(SMOKE), store)
    summary = asyncio.run(runner.run(plan))
    assert summary.already_done == plan.total
    assert len(parsed) == lines


def _noisy_png(side: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(side).integers(0, 255, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def test_large_images_are_checked_off_the_event_loop(
    bench_cfg: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full decode of a real-sized image takes tens of ms; done inline it would stall every
    other request. Large answers go to a worker thread, with the same verdicts as inline."""
    from bench.errors import MalformedResponseError
    from bench.images import check_images
    from bench.providers.base import GeneratedImage

    runner, _ = make_runner(bench_cfg(SMOKE), RunStore(tmp_path / "run"))
    big = _noisy_png(256)
    assert len(big) > 64 * 1024
    loop_thread = threading.get_ident()
    seen_threads: list[int] = []
    real_check = bench.runner.check_images

    def recording(datas: list[bytes]) -> Any:
        seen_threads.append(threading.get_ident())
        return real_check(datas)

    async def check(data: bytes) -> Any:
        return await runner._check([GeneratedImage(data)])

    monkeypatch.setattr(bench.runner, "check_images", recording)
    checked = asyncio.run(check(big))
    assert checked == check_images([big])
    assert seen_threads[-1] != loop_thread
    asyncio.run(check(_noisy_png(8)))
    assert seen_threads[-1] == loop_thread
    with pytest.raises(MalformedResponseError, match="does not decode"):
        asyncio.run(check(big[: len(big) // 2]))


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


def bench_run(tmp_path: Path, *extra: str) -> int:
    from bench.cli import main

    return main(["run", *SMOKE, f"results_dir={tmp_path}", "run_name=run", *extra])


def mtimes(run_dir: Path) -> dict[str, int]:
    names = ("records.parquet", "summary.parquet", "report.html")
    return {name: (run_dir / name).stat().st_mtime_ns for name in names}


def test_resuming_a_finished_run_rebuilds_nothing_unless_something_changed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    assert bench_run(tmp_path) == 0
    built = mtimes(run_dir)
    capsys.readouterr()

    assert bench_run(tmp_path) == 0
    err = capsys.readouterr().err
    assert "0 requests finished" in err and "12 already stored" in err
    assert "nothing new" in err
    assert mtimes(run_dir) == built

    # A config that changes an output (the report's bootstrap) rebuilds the report...
    assert bench_run(tmp_path, "report.n_boot=200") == 0
    assert "nothing new" not in capsys.readouterr().err
    rebuilt = mtimes(run_dir)
    assert rebuilt["report.html"] != built["report.html"]
    # ...and so does a deleted output or a journal that grew.
    (run_dir / "report.html").unlink()
    assert bench_run(tmp_path, "report.n_boot=200") == 0
    assert (run_dir / "report.html").is_file()
    assert "nothing new" not in capsys.readouterr().err
    assert bench_run(tmp_path, "report.n_boot=200", "sweep.seeds=[0,1,2,3]") == 0
    err = capsys.readouterr().err
    assert "4 requests finished" in err and "nothing new" not in err
    assert len(pd_read(run_dir)) == 16


def pd_read(run_dir: Path) -> Any:
    import pandas as pd

    return pd.read_parquet(run_dir / "records.parquet")


def test_bench_run_composes_the_config_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hydra._internal.hydra import Hydra

    calls: list[list[str]] = []
    real = Hydra.compose_config

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(list(kwargs.get("overrides", args[1] if len(args) > 1 else [])))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Hydra, "compose_config", counting)
    assert bench_run(tmp_path) == 0
    assert len(calls) == 1
    assert (tmp_path / "run" / ".hydra" / "overrides.yaml").is_file()  # Hydra's job files as before


def test_no_metric_can_run_is_decided_without_importing_torch(tmp_path: Path) -> None:
    # The local preset scores with the emulated judge; without it no metric can run offline.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from bench.cli import main\n"
        f"rc = main(['run', 'experiment=smoke', 'runner.progress=off', 'results_dir={tmp_path}', "
        "'run_name=run', 'metrics.clip.allow_download=false', 'metrics.judge.enabled=false'])\n"
        "print('exit', rc, 'torch' in sys.modules, 'open_clip' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert "exit 0 False False" in done.stdout, done.stdout + done.stderr
    assert "not scored: CLIP weights ViT-B-32/openai are not in the local cache" in done.stderr
    assert "FID/KID need metrics.fid.reference" in done.stderr


def test_each_metric_is_judged_on_its_own() -> None:
    from bench.metrics.availability import unavailable_metrics

    offline_clip = {"clip": {"pretrained": "openai", "allow_download": False}}
    assert unavailable_metrics(offline_clip) is not None
    # Random-init CLIP (tests) can run; so can FID against a target of the run (its own images).
    assert unavailable_metrics({"clip": {"pretrained": None}}) is None
    target_ref = {"reference": {"kind": "target", "target": "local:shapes-fast"}}
    assert unavailable_metrics({**offline_clip, "fid": target_ref}) is None
    # A metric block this check does not know about is left to the scorer.
    assert unavailable_metrics({**offline_clip, "judge": {"enabled": True}}) is None
    off = {"clip": {"enabled": False}, "fid": {"enabled": False}, "kid": {"enabled": False}}
    assert unavailable_metrics(off) == "CLIP disabled; FID/KID disabled"


class HeldDisk(RunStore):
    """A store whose writer thread waits until the test lets it go: commits pile up as pending."""

    def __init__(self, run_dir: Path, max_pending_writes: int | None = None) -> None:
        super().__init__(run_dir, max_pending_writes)
        self.release = threading.Event()

    def _write_batch(self, batch: Any) -> None:
        self.release.wait(timeout=60)
        super()._write_batch(batch)


async def _pending_allowed(store: HeldDisk, commits: int) -> tuple[int, bool]:
    """Queue `commits` one-row commits while the disk is held: (pending, would a send wait?)."""
    await store.open()
    try:
        tasks = [asyncio.create_task(store.commit([{"request_key": f"k{i}"}])) for i in range(commits)]
        await asyncio.sleep(0)
        sends_wait = not store._room.is_set() if store._room else True
        return store._pending, sends_wait
    finally:
        store.release.set()
        await asyncio.gather(*tasks)
        await store.close()


def test_two_waves_of_answers_may_wait_for_the_disk_without_stopping_sends(tmp_path: Path) -> None:
    """At concurrency 1000 the fixed 256 places filled while the writer fsynced one batch, and every
    send waited for the disk (a fifth of the throughput). The runner sizes them to two waves."""
    store = HeldDisk(tmp_path / "a")
    store.absorb_bursts(600)  # two waves: one being written while the next arrives
    assert asyncio.run(_pending_allowed(store, 1199)) == (1199, False)
    store = HeldDisk(tmp_path / "b")
    store.absorb_bursts(600)
    assert asyncio.run(_pending_allowed(store, 1200)) == (1200, True)
    # A small concurrency keeps the default floor; a limit given to the store is kept as given.
    store = HeldDisk(tmp_path / "c")
    store.absorb_bursts(4)
    assert store.max_pending_writes == bench.store.MAX_PENDING_WRITES
    store = HeldDisk(tmp_path / "d", max_pending_writes=2)
    store.absorb_bursts(600)
    assert asyncio.run(_pending_allowed(store, 2)) == (2, True)


def test_the_runner_sizes_the_stores_backpressure_to_its_providers(bench_cfg: Any, tmp_path: Path) -> None:
    store = RunStore(tmp_path / "run")
    runner, plan = make_runner(bench_cfg([*SMOKE, "providers.local.concurrency=700"]), store)
    assert asyncio.run(runner.run(plan)).ok == plan.total
    assert store.max_pending_writes == 1400


def test_a_run_tunes_the_cyclic_gc_only_while_it_runs(bench_cfg: Any, tmp_path: Path) -> None:
    """During the run the pre-run heap is frozen and young objects are collected less often
    (the requests in flight are most of them); a program that embeds the runner gets its own
    collector settings back afterwards, also when the run fails."""
    import gc

    seen: list[tuple[tuple[int, int, int], int]] = []
    runner, plan = make_runner(bench_cfg(SMOKE), RunStore(tmp_path / "run"))
    real_dispatch = runner._dispatch

    async def observing(*args: Any) -> None:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        await real_dispatch(*args)

    runner._dispatch = observing  # type: ignore[method-assign]
    before = gc.get_threshold()
    gc.set_threshold(123, 4, 5)
    try:
        asyncio.run(runner.run(plan))
        assert gc.get_threshold() == (123, 4, 5) and gc.get_freeze_count() == 0
        assert seen[0][0] == bench.runner._RUN_GC_THRESHOLDS and seen[0][1] > 0

        async def failing(*_: Any) -> None:
            raise RuntimeError("dispatch failed")

        runner, plan = make_runner(bench_cfg(SMOKE), RunStore(tmp_path / "run2"))
        runner._dispatch = failing  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="dispatch failed"):
            asyncio.run(runner.run(plan))
        assert gc.get_threshold() == (123, 4, 5) and gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(*before)

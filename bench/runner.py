"""Execute a sweep: limits, retries with backoff, the budget cap, progress, clean stops.

One asyncio task per request (thousands can be in flight; no threads), each
waiting for its provider's lane (concurrency + requests per minute). A request
is finished when its rows are durably in the journal; nothing finished is lost
on a crash, Ctrl-C or a provider fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import gc
import logging
import math
import os
import random
import signal
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bench.cache import CachedAnswer, ResponseCache, format_age
from bench.cache_claims import Claim, Claims
from bench.catalog.spec import ModelSpec
from bench.config import RunnerSettings
from bench.errors import (
    BenchError,
    DownloadError,
    MalformedResponseError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitedError,
)
from bench.images import CheckedImage, check_images
from bench.limits import Budget, Clock, CostKey, MonotonicClock, ProviderLane, cost_key
from bench.prices import PriceTable, estimate_cost, price_entry_hint
from bench.progress import RunProgress, cost_text
from bench.providers import observe
from bench.providers.base import GeneratedImage, GenerationResult, Provider
from bench.record_rows import StoredOutcomeImage, failed_row, ok_rows, replayed_rows, skipped_row
from bench.redact import redact
from bench.spend import FolderSpend
from bench.store import LatestStatus, RunStore, StoreWriteError
from bench.sweep import Job, SweepPlan

log = logging.getLogger("bench.runner")
NAN = math.nan
# The adapter enforces settings.timeout_s itself (and cancels the remote job); this outer
# guard only catches an adapter that hangs past it.
_GUARD_FACTOR, _GUARD_EXTRA_S = 1.5, 10.0
_DISPATCH_BATCH = 64
_BUDGET_WAIT_S = 0.05  # how often a request waiting for the budget to settle looks again
_RUN_GC_THRESHOLDS = (10_000, 10, 100)  # the cyclic GC's, during a run (see Runner.run)


@dataclass
class _Attempt:
    """One send's outcome. `billed`: the provider made the image(s), so the attempt cost money."""

    result: GenerationResult | None
    images: list[CheckedImage]
    error: ProviderError | None
    latency_s: float
    billed: bool


def job_cost_key(job: Job) -> CostKey:
    request = job.request
    width = float(request.width) if request.width else None
    height = float(request.height) if request.height else None
    return cost_key(job.target.id, job.spec, job.payload, width, height)


# Answers with more image bytes than this are decode-checked and hashed in a worker thread
# (Pillow and hashlib release the GIL): a full decode of a 1024x1024 PNG takes tens of ms,
# which on the event loop would delay every other request's send and timing. Smaller ones
# are checked inline, where a thread hop would cost more than the work.
_INLINE_CHECK_BYTES = 64 * 1024


def _latency_since(slot_at: float) -> float:
    """Seconds from when the attempt's first request left (so our own client's waiting for a
    connection is not the provider's latency; it is recorded as client_wait_s), else from the slot."""
    seen = observe.current()
    left = seen.left_at if seen is not None else NAN
    return time.perf_counter() - (slot_at if math.isnan(left) else left)


class InternalAdapterError(ProviderError):
    """An adapter raised something that is not a ProviderError (a bug or an unforeseen answer)."""

    error_type = "internal"


@dataclass
class RunSummary:
    total: int = 0
    already_done: int = 0
    ok: int = 0
    error: int = 0
    refused: int = 0
    skipped: int = 0
    cached: int = 0  # of ok + refused: replayed from the response cache, not sent
    cached_oldest_s: float = NAN  # the age of the oldest answer replayed
    images: int = 0
    cost_usd: float = 0.0
    cost_priced: int = 0  # ok requests with a known cost (priced, reported, or free)
    # ok requests whose cost nobody knows (no price entry, not reported), per target
    unknown_cost: dict[str, int] = field(default_factory=dict)
    interrupted: bool = False
    stop_reason: str = ""
    error_types: dict[str, int] = field(default_factory=dict)
    error_examples: dict[str, str] = field(default_factory=dict)  # the first message of each error type
    # Targets refused because nobody can price them and their probe was billed at an unknown cost
    # (a cap is set): target -> the one-line fix. Their requests are skipped, the others go on.
    unpriced: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> int:
        return self.ok + self.error + self.refused

    def line(self) -> str:
        parts = [
            f"{self.finished} requests finished ({self.ok} ok, {self.error} error, {self.refused} refused)",
            f"{self.already_done} already stored",
        ]
        if self.cached:
            parts.append(
                f"{self.cached} replayed from the cache, oldest {format_age(self.cached_oldest_s)}"
                " (not sent, $0 this run)"
            )
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        unpriced = sum(self.unknown_cost.values())
        parts.append(f"cost {cost_text(self.cost_usd, self.cost_priced, unpriced)}")
        if unpriced:
            targets = ", ".join(sorted(self.unknown_cost))
            parts.append(
                f"no price known for {targets} (no price-table entry, and the API did not report one): "
                "add one with prices.entries=[{provider: ..., model: ..., unit: image, usd: ..., "
                "effective_date: ..., source_url: ...}] to count it"
            )
        if self.stop_reason:
            parts.append(f"stopped: {self.stop_reason}")
        return "; ".join(parts)


def backoff_delay_s(attempt: int, settings: RunnerSettings, retry_after_s: float | None) -> float:
    """Seconds to wait before retry `attempt`+1: Retry-After when given, else capped exponential with jitter.

    Both are capped by backoff_max_s: a `Retry-After: 3600` must not park the run for an hour.
    """
    if retry_after_s is not None:
        jittered = retry_after_s + random.uniform(0, min(0.1 * retry_after_s, 1.0))
        return float(min(jittered, settings.backoff_max_s))
    ceiling = min(settings.backoff_max_s, math.ldexp(settings.backoff_base_s, attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)  # "equal jitter": spread, but never near zero


def waits_past_timeout(err: ProviderError, timeout_s: float) -> bool:
    """True for a rate limit that asks us to wait longer than a request may take: fail it now instead."""
    return (
        isinstance(err, RateLimitedError) and err.retry_after_s is not None and err.retry_after_s > timeout_s
    )


def expected_cost_usd(prices: PriceTable, provider: Provider, job: Job) -> float | None:
    """Expected cost before sending: the price table at the requested size, else the adapter's guess."""
    request = job.request
    cost = estimate_cost(
        prices,
        job.target.provider,
        job.target.model,
        payload=job.payload,
        n_images=request.num_images,
        megapixels=request.width * request.height / 1e6 if request.width and request.height else None,
    )
    if cost is not None and not math.isnan(cost):
        return cost
    return provider.estimate_cost_usd(job.spec, request)


_HEARTBEATS_PER_STALE = 4  # a claimant touches its claims this often within claim_stale_after


class Runner:
    def __init__(
        self,
        *,
        run_id: str,
        providers: Mapping[str, Provider],
        store: RunStore,
        settings: RunnerSettings,
        prices: PriceTable,
        max_cost_usd: float | None,
        cache: ResponseCache | None = None,
        clock: Clock | None = None,
        unpriced_units: Mapping[str, str] | None = None,
        claim_clock: Clock | None = None,
    ) -> None:
        self.run_id = run_id
        self.cache = cache
        # Claims on a shared cache (bench.cache_claims): one job sends a request, others wait for it.
        self._claim_clock = claim_clock or MonotonicClock()
        self._claims = (
            Claims(cache.root, owner=run_id, clock=self._claim_clock.now)
            if cache is not None and cache.settings.claims
            else None
        )
        self._scopes: dict[tuple[str, str], asyncio.Future[str | None]] = {}
        self.providers = providers
        self.store = store
        self.settings = settings
        self.prices = prices
        self.budget = Budget(max_cost_usd)
        # Targets whose published price is in a unit we cannot count (target id -> that unit).
        self.unpriced_units = dict(unpriced_units or {})
        self.summary = RunSummary()
        self._lanes = {
            name: ProviderLane(p.settings.concurrency, p.settings.requests_per_minute, clock)
            for name, p in providers.items()
        }
        self._secrets = [s for p in providers.values() for s in p.secrets()]
        self._stopping = False
        self._budget_stop = False
        self._store_error: StoreWriteError | None = None
        self._specs: dict[tuple[str, str], ModelSpec | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._progress: RunProgress | None = None
        self._checker: ThreadPoolExecutor | None = None  # image decode checks of large answers

    # ---- public ----------------------------------------------------------------------
    async def run(self, plan: SweepPlan) -> RunSummary:
        # One read of the journal: a torn or unreadable line is moved aside (never fused or lost)
        # while what was finished and what was spent are gathered from the lines kept.
        latest, history = LatestStatus(), FolderSpend()

        def visit(rows: list[dict[str, Any]]) -> None:
            latest(rows)
            history.add(rows)

        self.store.scan(visit)
        history.add_judge(self.store.run_dir)  # judge calls of earlier passes spent from the same cap
        finished = latest.finished(retry_billed=self.settings.retry_billed)
        if latest.billed_failed and not self.settings.retry_billed:
            log.info(
                "%d requests were billed but their images could not be had; they are not sent again "
                "(bench run --retry-billed buys them again, within max_cost_usd)",
                len(latest.billed_failed),
            )
        elif latest.billed_failed:
            log.info(
                "--retry-billed: %d requests billed before without an image are sent again "
                "(each is bought again, within max_cost_usd)",
                len(latest.billed_failed),
            )
        history.seed(self.budget, self._spec_for)
        if self.budget.enabled and history.spent_usd:
            log.info(
                "this run folder has already spent $%.4f; max_cost_usd=%g leaves $%.4f",
                history.spent_usd,
                self.budget.max_cost_usd,
                self.budget.remaining_usd,
            )
        self.summary.total = plan.total
        # Counted without keying every job (a second key pass over a 100k plan costs seconds
        # before the first request); exact unless the journal holds keys from another sweep,
        # and corrected once dispatch has walked the whole plan.
        todo = max(plan.total - len(finished), 0)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Not possible off the main thread (tests) or on some platforms: interrupt() still works.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.interrupt)
        self.store.absorb_bursts(sum(p.settings.concurrency for p in self.providers.values()))
        await self.store.open()
        # Everything alive now (imported libraries, the config, the plan) outlives the run: kept
        # out of the cyclic collector's full passes, which otherwise re-walk that whole heap while
        # requests wait (measured: ~17% of the event loop's CPU per request at concurrency 1000).
        gc.freeze()
        # And collect young objects less often: at concurrency 1000 most of them belong to requests
        # still in flight, so each pass re-walks them only to keep them. Measured at C=1000 (3,000
        # requests, 4.6 s): 0.51 s of collection with Python's (700, 10, 10), 0.2-0.28 s with these.
        thresholds = gc.get_threshold()
        gc.set_threshold(*_RUN_GC_THRESHOLDS)
        try:
            for provider in self.providers.values():
                await provider.warm_up()
            heartbeat = asyncio.create_task(self._heartbeat()) if self._claims is not None else None
            try:
                with RunProgress(todo, self.settings.progress) as progress:
                    self._progress = progress
                    await self._dispatch(plan, finished)
            finally:
                if heartbeat is not None:
                    heartbeat.cancel()
                if self._claims is not None:
                    self._claims.release_all()  # claims a cancelled task took in its thread
        finally:
            gc.set_threshold(*thresholds)
            gc.unfreeze()
            await self.store.close()
            if self._checker is not None:
                self._checker.shutdown(wait=False, cancel_futures=True)
                self._checker = None
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)
        return self.summary

    def interrupt(self) -> None:
        """Ctrl-C: stop sending, cancel what is in flight, keep everything finished."""
        if not self._stopping:
            log.warning("interrupted: cancelling requests in flight; finished results are kept")
        self._stopping = True
        self.summary.interrupted = True
        self.summary.stop_reason = self.summary.stop_reason or "interrupted"
        for task in list(self._tasks):
            task.cancel()

    def _spec_for(self, provider: str, model: str) -> ModelSpec | None:
        """The spec of a model the journal names (to key its reported costs), if this run knows it."""
        if (provider, model) not in self._specs:
            spec = None
            if provider in self.providers:
                with contextlib.suppress(BenchError):
                    spec = self.providers[provider].model_spec(model)
            self._specs[(provider, model)] = spec
        return self._specs[(provider, model)]

    # ---- dispatch --------------------------------------------------------------------
    def _pending(self, plan: SweepPlan, finished: set[str]) -> Iterator[Job]:
        """The plan's jobs not yet finished; each job's key is derived once, here."""
        for job in plan.jobs():
            if job.key in finished:
                self.summary.already_done += 1
            else:
                yield job
        assert self._progress is not None
        self._progress.set_total(self.summary.total - self.summary.already_done)

    async def _dispatch(self, plan: SweepPlan, finished: set[str]) -> None:
        slots = asyncio.Semaphore(self.settings.max_in_flight)
        jobs = self._pending(plan, finished)
        for job in jobs:
            if self._stopping:
                break
            await slots.acquire()
            if self._stopping:
                slots.release()
                break
            task = asyncio.create_task(self._run_guarded(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda _: slots.release())
            if len(self._tasks) % _DISPATCH_BATCH == 0:
                # Let the tasks made so far send their requests: without this, thousands of tasks
                # are created (max_in_flight) before the first request leaves.
                await asyncio.sleep(0)
        if self._tasks:
            outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
            # A request's own failures are records; anything escaping a task (the journal could
            # not be written: disk full, folder removed) must stop the run loudly, not vanish.
            failures = [o for o in outcomes if isinstance(o, Exception)]
            if failures:
                self.interrupt()
                raise failures[0]
        if self._store_error is not None:
            raise self._store_error
        if self._budget_stop:
            # What the cap kept from running is recorded as skipped, so totals stay honest
            # and a re-run with a larger cap picks exactly these up.
            for job in jobs:
                await self._commit_skipped(job, "budget", self.summary.stop_reason)
        elif self._stopping:
            # Ctrl-C before the plan was walked: keying the rest only to count it would delay the
            # exit by seconds on a big plan; what this folder held before the run is the count.
            self.summary.already_done = max(self.summary.already_done, len(finished))

    async def _run_guarded(self, job: Job) -> None:
        try:
            await self._run_job(job)
        except StoreWriteError as exc:
            self._stop_for_store(exc)
            raise

    async def _run_job(self, job: Job) -> None:
        scope: str | None = None
        claim: Claim | None = None
        if self.cache is not None and self.cache.settings.covers(job.target.provider):
            scope = await self._cache_scope(job)
            if scope is not None:
                found = await self._from_cache(job, scope)
                if found is True:
                    return
                claim = found if isinstance(found, Claim) else None
        try:
            await self._send(job, scope)
        finally:
            if claim is not None and self._claims is not None:
                # After the answer is in the cache (or at once on an error, never cached): a
                # waiting job then replays it, or sends the request itself. In a thread, not
                # awaited: an unlink waits for the file system's journal (measured: ~5 ms while
                # the store fsyncs), which on the event loop would hold up every request.
                asyncio.get_running_loop().run_in_executor(None, self._claims.release, claim)

    async def _send(self, job: Job, scope: str | None) -> None:
        provider = self.providers[job.target.provider]
        lane = self._lanes[job.target.provider]
        started_at: dt.datetime | None = None  # when the first attempt was sent, not when it was queued
        priced = expected_cost_usd(self.prices, provider, job)
        key = job_cost_key(job)
        if self.budget.refuses_unpriced(job.target.id, self.budget.estimate(key, priced)):
            await self._refuse_unpriced(job)
            return
        attempts = 0
        while True:
            attempt: _Attempt | None = None
            async with lane.slot():
                # Backpressure: while max_pending_writes results wait for the disk, send nothing
                # more (raises StoreWriteError once the store has failed: nothing more is bought).
                await self.store.wait_for_room()
                # Reserve only while holding the provider's slot: queued requests hold no money,
                # and the estimate includes every cost reported until this moment.
                estimate, allowed, why = self._reserve(job, key, priced)
                while why == "wait":
                    # Waiting here, slot held: only `concurrency` requests poll, the rest queue
                    # quietly on the slot, and whoever is in flight (the one the wait is for)
                    # holds a slot already.
                    await asyncio.sleep(_BUDGET_WAIT_S)
                    estimate, allowed, why = self._reserve(job, key, priced)
                if allowed:
                    await lane.pace()
                    attempts += 1
                    started_at = started_at or dt.datetime.now(dt.UTC)
                    attempt = await self._attempt(provider, job)
            if attempt is None:
                if why == "unpriced":
                    await self._refuse_unpriced(job)
                    return
                if why != "stopping":
                    self._stop_for_budget(why)
                if self._budget_stop:
                    await self._commit_skipped(job, "budget", self.summary.stop_reason)
                return
            assert started_at is not None
            err = attempt.error
            if err is None:
                assert attempt.result is not None
                await self._commit_ok(job, key, estimate, started_at, attempts, attempt, scope)
                return
            if attempt.billed:
                # The provider generated (and billed) it; sending it again would buy it again.
                cost_usd, cost_source = self._billed_failure_cost(attempt, estimate)
                self.budget.charge(key, estimate, cost_usd, reported=cost_source == "reported")
                await self._commit_failure(
                    job,
                    started_at,
                    attempts,
                    err,
                    attempt.latency_s,
                    scope,
                    cost_usd,
                    cost_source,
                    billed=True,
                )
                return
            self.budget.release(job.target.id, estimate, key.setting)
            too_long = waits_past_timeout(err, provider.settings.timeout_s)
            if too_long:
                err.message += (
                    f" (Retry-After {err.retry_after_s:g}s is longer than"
                    f" timeout_s={provider.settings.timeout_s:g}: not waiting)"
                )
            retry = err.retryable and not too_long
            if retry and attempts < self.settings.max_attempts and not self._stopping:
                delay = backoff_delay_s(attempts, self.settings, err.retry_after_s)
                log.debug("%s: %s, retry %d in %.2fs", job.target.id, err.error_type, attempts, delay)
                await asyncio.sleep(delay)
                continue
            await self._commit_failure(job, started_at, attempts, err, attempt.latency_s, scope)
            return

    def _reserve(self, job: Job, key: CostKey, priced: float | None) -> tuple[float | None, bool, str]:
        """(estimate, allowed, why): why is "wait", "stopping" or the budget's reason to stop."""
        estimate, basis = self.budget.estimate_with_basis(key, priced)
        if self._stopping:
            return estimate, False, "stopping"
        if self.budget.refuses_unpriced(job.target.id, estimate):
            return estimate, False, "unpriced"
        # An estimate guessed from another setting (scaled by megapixels, or the target's last
        # cost as is) is checked by one request before others at this setting rely on it.
        guessed = basis in ("scaled", "target")
        allowed, why = self.budget.try_reserve(
            job.target.id, estimate, probe_setting=key.setting if guessed else None
        )
        return estimate, allowed, why

    async def _refuse_unpriced(self, job: Job) -> None:
        """A cap is set, nobody can price this target, and a probe of it was billed at an unknown
        cost: its requests are skipped (the rest of the run goes on), with the fix in one line."""
        target = job.target
        message = self.summary.unpriced.get(target.id)
        if message is None:
            unit = self.unpriced_units.get(target.id)
            why = (
                f"{target.provider} prices it per {unit!r}, a unit bench cannot count"
                if unit
                else "no price entry, and its answers report no cost"
            )
            message = (
                f"{target.id}: cost unknown ({why}), so max_cost_usd={self.budget.max_cost_usd:g} "
                f"cannot be enforced; {price_entry_hint(target.provider, target.model)}"
            )
            self.summary.unpriced[target.id] = message
            log.warning("budget: %s; its requests are skipped", message)
        await self._commit_skipped(job, "no_price", message)

    async def _attempt(self, provider: Provider, job: Job) -> _Attempt:
        """One send, with the images decoded; never raises a ProviderError (it is returned)."""
        t0 = time.perf_counter()
        try:
            result = await self._generate(provider, job)
        except DownloadError as err:
            return _Attempt(None, [], err, _latency_since(t0), billed=True)
        except ProviderError as err:
            return _Attempt(None, [], err, _latency_since(t0), billed=False)
        latency_s = _latency_since(t0)  # the provider's time: our decode check is not part of it
        try:
            if not result.images:
                raise MalformedResponseError("the answer held no image")
            images = await self._check(result.images)
        except MalformedResponseError as err:
            # The provider answered with a generation: it is billed even if the bytes are unusable.
            return _Attempt(result, [], err, latency_s, billed=True)
        return _Attempt(result, images, None, latency_s, billed=False)

    async def _check(self, images: Sequence[GeneratedImage]) -> list[CheckedImage]:
        datas = [img.data for img in images]
        if sum(len(d) for d in datas) <= _INLINE_CHECK_BYTES:
            return check_images(datas)
        if self._checker is None:
            self._checker = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="bench-decode")
        return await asyncio.get_running_loop().run_in_executor(self._checker, check_images, datas)

    def _billed_failure_cost(self, attempt: _Attempt, estimate: float | None) -> tuple[float, str]:
        """What a generation that failed after it was made cost: reported if said, else estimated."""
        err = attempt.error
        if isinstance(err, DownloadError) and not math.isnan(err.billed_cost_usd):
            return err.billed_cost_usd, "reported"
        if attempt.result is not None and not math.isnan(attempt.result.cost_usd):
            return attempt.result.cost_usd, "reported"
        if estimate is not None and not math.isnan(estimate):
            return estimate, "estimated"
        return NAN, "unknown"

    async def _commit_ok(
        self,
        job: Job,
        key: CostKey,
        estimate: float | None,
        started_at: dt.datetime,
        attempts: int,
        attempt: _Attempt,
        scope: str | None,
    ) -> None:
        result = attempt.result
        assert result is not None
        pixels = [image.info.width * image.info.height for image in attempt.images]
        cost_usd, cost_source, unit, rule = self._resolve_cost(job, result, pixels)
        self.budget.charge(
            key,
            estimate,
            cost_usd,
            reported=cost_source == "reported",
            megapixels=sum(pixels) / len(pixels) / 1e6 if pixels else None,
        )
        stored, files = [], []
        for image in attempt.images:
            info = image.info
            path, rel = self.store.image_path(image.sha256, info.extension)
            files.append((path, image.data))
            stored.append(StoredOutcomeImage(rel, image.sha256, info.format, info.width, info.height))
        rows = ok_rows(
            job, self.run_id, started_at, attempts, result, stored, attempt.latency_s, cost_usd, cost_source
        )
        for row in rows:
            row.update(billed=True, price_unit=unit, price_rule=rule)
        await self.store.commit(
            rows, files, on_durable=functools.partial(self._count_ok, len(rows), cost_usd, job.target.id)
        )
        await self._remember(rows, scope)

    # ---- counting (from what reached the journal) ------------------------------------
    # Called by the store once a request's line is fsynced, even when the request's task was
    # cancelled (Ctrl-C) while its write was queued: the summary equals what the journal holds.
    def _count_ok(self, n_images: int, cost_usd: float, target: str) -> None:
        self.summary.ok += 1
        self.summary.images += n_images
        if math.isnan(cost_usd):
            self.summary.unknown_cost[target] = self.summary.unknown_cost.get(target, 0) + 1
        else:
            self.summary.cost_priced += 1
            self.summary.cost_usd += cost_usd
        assert self._progress is not None
        self._progress.advance("ok", cost_usd)

    def _count_failure(self, status: str, error_type: str, message: str, cost_usd: float) -> None:
        if not math.isnan(cost_usd):
            self.summary.cost_usd += cost_usd  # a billed failure (download, undecodable image)
        if status == "refused":
            self.summary.refused += 1
        else:
            self.summary.error += 1
        self.summary.error_types[error_type] = self.summary.error_types.get(error_type, 0) + 1
        self.summary.error_examples.setdefault(error_type, message)
        assert self._progress is not None
        self._progress.advance(status, cost_usd)

    def _count_skipped(self) -> None:
        self.summary.skipped += 1

    async def _generate(self, provider: Provider, job: Job) -> GenerationResult:
        guard_s = provider.settings.timeout_s * _GUARD_FACTOR + _GUARD_EXTRA_S
        # This attempt's emulated flag, poll interval and client wait, read back by record_rows.
        observe.start(slot_at=time.perf_counter())
        try:
            # asyncio.timeout, not wait_for: in 3.11 wait_for runs the coroutine in a task of its own,
            # one more task per request on the event loop.
            async with asyncio.timeout(guard_s):
                return await provider.generate(job.spec, job.payload, job.request)
        except ProviderError:
            raise
        except TimeoutError as exc:
            raise ProviderTimeoutError(f"no answer within {guard_s:.0f}s") from exc
        except Exception as exc:  # an adapter bug must cost one record, not the whole run
            log.debug("adapter %s raised", provider.name, exc_info=True)
            raise InternalAdapterError(f"{type(exc).__name__}: {exc}") from exc

    # ---- the cross-run response cache (bench.cache) -------------------------------------
    async def _cache_scope(self, job: Job) -> str | None:
        """Whose answers this job may replay (Provider.cache_scope), found once per model and run.

        In a thread: for a local model it hashes the weights (once per file; memoised on disk).
        """
        ident = (job.target.provider, job.target.model)
        found = self._scopes.get(ident)
        if found is None:
            provider = self.providers[job.target.provider]
            found = asyncio.ensure_future(asyncio.to_thread(provider.cache_scope, job.spec))
            self._scopes[ident] = found
        try:
            return await asyncio.shield(found)
        except OSError as exc:
            self._scopes[ident] = done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            log.warning(
                "%s: cannot fingerprint the model (%s); its answers are not cached", job.target.id, exc
            )
            return None

    async def _from_cache(self, job: Job, scope: str) -> bool | Claim | None:
        """True: a cached answer was written into this run. A Claim: send it, others wait for us.
        None: send it, unclaimed (this cache mode takes no claims)."""
        assert self.cache is not None
        name = self.cache.name(job.key, scope)
        while True:
            found = await asyncio.to_thread(self._look_or_claim, job.key, scope, name)
            if isinstance(found, CachedAnswer):
                await self._commit_replay(job, found)
                return True
            if found is not None or self._claims is None:
                return found
            if await self._wait_for_claimant(job, scope, name):
                return True
            # The claimant released without an answer (it failed) or died: look and claim again.

    def _look_or_claim(self, key: str, scope: str, name: str) -> CachedAnswer | Claim | None:
        """The cached answer; else our claim on the request; else None (another job holds it)."""
        assert self.cache is not None
        answer = self.cache.replay(key, scope, self.store.run_dir)
        if answer is not None or self._claims is None:
            return answer
        claim = self._claims.try_claim(name)
        if claim is None:
            return None
        # An answer may have landed between the look and the claim (its claimant just released).
        answer = self.cache.replay(key, scope, self.store.run_dir)
        if answer is not None:
            self._claims.release(claim)
            return answer
        return claim

    async def _wait_for_claimant(self, job: Job, scope: str, name: str) -> bool:
        """Wait while another job holds the claim; True once its answer was replayed here.

        False when the claim went away without an answer, or was stale (unchanged for
        cache.claim_stale_after on this job's clock) and was taken over.
        """
        assert self.cache is not None and self._claims is not None
        settings, clock = self.cache.settings, self._claim_clock
        seen = self._claims.observe(name)
        since = clock.now()
        log.debug(
            "%s: another job is sending request %s; waiting for its answer", job.target.id, job.key[:12]
        )
        while seen is not None:
            await clock.sleep(settings.claim_poll_s)
            answer = await asyncio.to_thread(self.cache.replay, job.key, scope, self.store.run_dir)
            if answer is not None:
                await self._commit_replay(job, answer)
                return True
            now_seen = self._claims.observe(name)
            if now_seen != seen:
                seen, since = now_seen, clock.now()
            elif clock.now() - since >= settings.claim_stale_after_s:
                self._claims.take_over(name, seen)
                return False
        return False

    async def _heartbeat(self) -> None:
        """Keep this run's claims fresh, so no waiting job takes over a request still in flight."""
        assert self._claims is not None and self.cache is not None
        every = self.cache.settings.claim_stale_after_s / _HEARTBEATS_PER_STALE
        while True:
            await asyncio.sleep(every)
            await asyncio.to_thread(self._claims.refresh)

    async def _commit_replay(self, job: Job, answer: CachedAnswer) -> None:
        rows = replayed_rows(job, self.run_id, answer)
        status, n_rows, age_s = str(rows[0]["status"]), len(rows), answer.age_s
        await self.store.commit(rows, on_durable=lambda: self._count_replay(status, n_rows, age_s))

    def _count_replay(self, status: str, n_rows: int, age_s: float) -> None:
        self.summary.cached += 1
        if not self.summary.cached_oldest_s >= age_s:  # NaN until the first replay
            self.summary.cached_oldest_s = age_s
        if status == "ok":
            self.summary.ok += 1
            self.summary.images += n_rows
        else:
            self.summary.refused += 1
        assert self._progress is not None
        self._progress.advance(status, 0.0)  # this run paid nothing for it

    async def _remember(self, rows: list[dict[str, Any]], scope: str | None) -> None:
        # In a thread: linking the image and writing the entry would hold up every other request.
        if self.cache is not None and scope is not None and self.cache.settings.writes:
            await asyncio.to_thread(self.cache.remember, rows, scope, self.store.run_dir)

    # ---- cost --------------------------------------------------------------------------
    def _resolve_cost(
        self, job: Job, result: GenerationResult, pixels: list[int]
    ) -> tuple[float, str, str | None, str | None]:
        """(cost, cost_source, price unit, billing rule): reported by the API if it said; else the
        price table on what came back, with the provider's billing rule; else unknown (NaN), with
        the unit the provider publishes when bench cannot count it."""
        if not math.isnan(result.cost_usd):
            return result.cost_usd, "reported", None, None
        cost = estimate_cost(
            self.prices,
            job.target.provider,
            job.target.model,
            payload=job.payload,
            n_images=len(pixels),
            megapixels=sum(pixels) / len(pixels) / 1e6 if pixels else None,
            seconds=result.timings.inference_s,
            usage=result.usage,
        )
        entry = self.prices.lookup(job.target.provider, job.target.model, job.payload)
        if cost is not None and not math.isnan(cost) and entry is not None:
            return cost, entry.source, entry.unit, entry.describe_rule()
        unit = self.unpriced_units.get(job.target.id)
        if unit is not None:
            return NAN, "unknown", unit, "not priced: bench cannot count this unit"
        return NAN, "unknown", entry.unit if entry else None, entry.describe_rule() if entry else None

    # ---- outcomes that are not images ------------------------------------------------
    def _stop_for_budget(self, why: str) -> None:
        if not self._budget_stop:
            log.warning("budget: %s; no further requests are sent", why)
        self._budget_stop = True
        self._stopping = True
        self.summary.stop_reason = why

    def _stop_for_store(self, exc: StoreWriteError) -> None:
        """Nothing more can be kept: stop sending and cancel what is in flight (it would be paid for nothing)."""
        if self._store_error is None:
            self._store_error = exc
            log.debug("store write failed: %s; cancelling requests in flight", exc)
        self._stopping = True
        self.summary.stop_reason = self.summary.stop_reason or f"cannot write results: {exc}"
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()

    async def _commit_failure(
        self,
        job: Job,
        started_at: dt.datetime,
        attempts: int,
        err: ProviderError,
        latency_s: float,
        scope: str | None,
        cost_usd: float = NAN,
        cost_source: str = "unknown",
        *,
        billed: bool = False,
    ) -> None:
        message = redact(err.message, self._secrets)
        row = failed_row(job, self.run_id, started_at, attempts, err, message, latency_s)
        row.update(cost_usd=cost_usd, cost_source=cost_source, billed=billed)
        status = str(row["status"])
        await self.store.commit(
            [row], on_durable=lambda: self._count_failure(status, err.error_type, message, cost_usd)
        )
        await self._remember([row], scope)

    async def _commit_skipped(self, job: Job, reason_type: str, message: str) -> None:
        row = skipped_row(job, self.run_id, reason_type, message)
        await self.store.commit([row], on_durable=self._count_skipped)

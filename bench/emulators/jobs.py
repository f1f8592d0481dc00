"""The job machine every emulator shares: one generation, from submission to bill.

A job is submitted (carrying the fault the knobs give it), waits in the queue, runs, and
ends done or cancelled; a hung job never leaves "running". The phase is read from a clock
(injectable, so a test can move time instead of sleeping), never from a timer thread.
The machine also keeps the counts tests check: submissions, cancel requests, billed jobs,
and how many generations run at once. Each protocol keeps only its own words for the
phases (Replicate's "starting", fal's "IN_QUEUE") and its own answer shapes.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bench.emulators.knobs import Knobs

Clock = Callable[[], float]
# Faults an API answers with an HTTP error instead of a job result: the client may retry them.
TRANSIENT_FAULTS = frozenset({"rate_limit", "server_error", "unavailable"})
# Where a queue API can answer with a transient fault (Knobs.fault_at).
FAULT_CALLS = ("submit", "status", "result")


class Phase(StrEnum):
    """Where a job is. A StrEnum, so a protocol's table of status words may key on plain strings."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Phase.DONE, Phase.CANCELLED)


# A protocol's word for each phase, e.g. Replicate's {QUEUED: "starting", ..., DONE: "succeeded"}.
StatusWords = Mapping[Phase, str]


def status_words(*, queued: str, running: str, done: str, cancelled: str) -> StatusWords:
    return {Phase.QUEUED: queued, Phase.RUNNING: running, Phase.DONE: done, Phase.CANCELLED: cancelled}


@dataclass
class Job:
    """One generation in an emulator: its inputs, its timing and the fault it carries."""

    id: str
    prompt: str
    width: int
    height: int
    seed: int
    steps: int
    num_images: int
    fault: str | None
    queue_s: float
    inference_s: float
    clock: Clock = field(default=time.monotonic, repr=False, compare=False)
    created: float = field(init=False)
    created_wall: float = field(default_factory=time.time)
    cancelled: bool = False
    outputs: list[str] | None = None  # file ids, rendered on first completion
    extra: dict[str, Any] = field(default_factory=dict)  # what the protocol wants to echo back
    model: str = ""  # as the request named it ("" where the protocol names it elsewhere)

    def __post_init__(self) -> None:
        self.created = self.clock()

    def elapsed_s(self) -> float:
        return self.clock() - self.created

    def phase(self) -> Phase:
        """Queued, running, done or cancelled, from the clock (a hung job never finishes)."""
        if self.cancelled:
            return Phase.CANCELLED
        elapsed = self.elapsed_s()
        if elapsed < self.queue_s:
            return Phase.QUEUED
        if self.fault == "hang" or elapsed < self.queue_s + self.inference_s:
            return Phase.RUNNING
        return Phase.DONE

    def status(self, words: StatusWords) -> str:
        return words[self.phase()]

    @property
    def refused(self) -> bool:
        return self.fault == "refuse"

    @property
    def transient_fault(self) -> str | None:
        """The rate limit or server error this job's submission answers with, if any."""
        return self.fault if self.fault in TRANSIENT_FAULTS else None


class JobMachine:
    """Every job of one emulator: submit, look up, cancel, bill, hold open, and the counts."""

    def __init__(self, knobs: Knobs, clock: Clock = time.monotonic) -> None:
        self.knobs = knobs
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.cancels: list[str] = []  # job ids a client asked to cancel
        self.submissions = 0  # generation requests received: what a test counts requests by
        self.submissions_by_model: dict[str, int] = {}
        # Jobs that produced images: what a real provider bills for, whether or not the client
        # then managed to download or decode them. Tests count money with these.
        self.billed: dict[str, Job] = {}  # job id -> job, in billing order
        # Generations being worked on at once, per requested size (sync protocols: while the
        # request is held), and the most there ever were: tests count concurrency here.
        self.active: dict[tuple[int, int], int] = {}
        self.peak_active: dict[tuple[int, int], int] = {}
        self._rng = random.Random(knobs.rng_seed)
        self._lock = threading.Lock()
        self._faulted_calls: set[tuple[str, str]] = set()  # (job id, call) that already failed once

    def new_job(
        self,
        prompt: str,
        *,
        width: int,
        height: int,
        seed: int | None = None,
        steps: int = 4,
        num_images: int = 1,
        model: str = "",
    ) -> Job:
        """Submit a generation: it gets an id, its timing, and the fault the knobs give it."""
        with self._lock:
            self.submissions += 1
            self.submissions_by_model[model] = self.submissions_by_model.get(model, 0) + 1
            fault = self._fault_for(self.submissions)
            if self.knobs.refuse_word and self.knobs.refuse_word in prompt:
                fault = "refuse"
            job = Job(
                id=uuid.uuid4().hex[:16],
                prompt=prompt,
                width=width,
                height=height,
                seed=seed if seed is not None and seed >= 0 else self._rng.randrange(2**31),
                steps=steps,
                num_images=max(1, num_images),
                fault=fault,
                queue_s=self._rng.uniform(*self.knobs.queue_s),
                inference_s=self._rng.uniform(*self.knobs.inference_s)
                + (self.knobs.slow_s if fault == "slow" else 0.0),
                clock=self.clock,
                model=model,
            )
            self.jobs[job.id] = job
        return job

    def _fault_for(self, n: int) -> str | None:
        knobs = self.knobs
        if knobs.fault is None:
            return None
        if knobs.fault_first is not None:
            return knobs.fault if n <= knobs.fault_first else None
        return knobs.fault if self._rng.random() < knobs.fault_rate else None

    def job(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def cancel(self, job: Job) -> None:
        """Record the request; a job not yet done stops (a done one keeps its images and bill)."""
        self.cancels.append(job.id)
        if job.phase() != Phase.DONE:
            job.cancelled = True

    def bill(self, job: Job) -> None:
        self.billed.setdefault(job.id, job)

    def fault_at(self, job: Job, call: str) -> str | None:
        """The transient fault `call` (submit, status or result) of `job` answers with, for a queue
        API that honours Knobs.fault_at. At status and result it fails once, as fal's do: the
        client's next call of the same kind gets an answer."""
        if job.transient_fault is None or self.knobs.fault_at != call:
            return None
        if call != "submit":
            with self._lock:
                if (job.id, call) in self._faulted_calls:
                    return None
                self._faulted_calls.add((job.id, call))
        return job.transient_fault

    async def wait_sync(self, job: Job) -> None:
        """For synchronous protocols: hold the request while the job queues and runs."""
        size = (job.width, job.height)
        with self._lock:
            self.active[size] = self.active.get(size, 0) + 1
            self.peak_active[size] = max(self.peak_active.get(size, 0), self.active[size])
        try:
            if job.fault == "hang":
                await asyncio.sleep(self.knobs.hang_s)
            await asyncio.sleep(job.queue_s + job.inference_s)  # a "slow" job's inference_s includes slow_s
        finally:
            with self._lock:
                self.active[size] -= 1

    async def wait_until_done(self, job: Job, limit_s: float) -> None:
        """`Prefer: wait` style: return when the job is done or `limit_s` has passed."""
        end = time.monotonic() + limit_s
        while not job.phase().finished and time.monotonic() < end:
            await asyncio.sleep(min(0.01, max(end - time.monotonic(), 0.0)))

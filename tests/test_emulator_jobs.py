"""The job machine every emulator shares (bench/emulators/jobs.py), driven by an injected clock."""

from __future__ import annotations

import pytest

from bench.emulators.common import EmulatorState
from bench.emulators.jobs import JobMachine, Phase, status_words
from bench.emulators.knobs import Knobs


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_job_queues_runs_and_finishes_on_the_clock() -> None:
    clock = Clock()
    machine = JobMachine(Knobs(queue_s=(2.0, 2.0), inference_s=(3.0, 3.0)), clock)
    job = machine.new_job("a cube", width=64, height=64)
    seen = []
    for t in (0.0, 1.9, 2.0, 4.9, 5.0, 500.0):
        clock.now = 100.0 + t
        seen.append(job.phase())
    assert seen == [Phase.QUEUED, Phase.QUEUED, Phase.RUNNING, Phase.RUNNING, Phase.DONE, Phase.DONE]
    assert machine.submissions == 1 and machine.job(job.id) is job and machine.job("nope") is None


def test_a_hung_job_never_finishes_and_a_slow_one_takes_longer() -> None:
    clock = Clock()
    hung = JobMachine(Knobs(fault="hang"), clock).new_job("x", width=8, height=8)
    slow = JobMachine(Knobs(fault="slow", slow_s=2.5), clock).new_job("x", width=8, height=8)
    clock.now += 2.4
    assert hung.phase() == Phase.RUNNING and slow.phase() == Phase.RUNNING
    clock.now += 1e6
    assert hung.phase() == Phase.RUNNING and slow.phase() == Phase.DONE


def test_cancel_stops_an_unfinished_job_and_is_counted_either_way() -> None:
    clock = Clock()
    machine = JobMachine(Knobs(inference_s=(1.0, 1.0)), clock)
    done = machine.new_job("a", width=8, height=8)
    clock.now += 5.0
    running = machine.new_job("b", width=8, height=8)
    machine.cancel(running)
    machine.cancel(done)
    assert running.phase() == Phase.CANCELLED and running.phase().finished
    assert done.phase() == Phase.DONE  # a finished job keeps its images and its bill
    assert machine.cancels == [running.id, done.id]


def test_a_status_or_result_fault_fails_once_per_job() -> None:
    machine = JobMachine(Knobs(fault="rate_limit", fault_at="status"))
    job = machine.new_job("x", width=8, height=8)
    assert machine.fault_at(job, "submit") is None  # injected at status, not at submit
    assert machine.fault_at(job, "status") == "rate_limit"
    assert machine.fault_at(job, "status") is None  # the client's next poll gets an answer
    assert machine.fault_at(job, "result") is None
    refused = machine.new_job("please REFUSE", width=8, height=8)
    assert refused.refused and refused.transient_fault is None


@pytest.mark.parametrize("fault", ["rate_limit", "server_error", "unavailable"])
def test_transient_faults_answer_at_submission(fault: str) -> None:
    job = JobMachine(Knobs(fault=fault)).new_job("x", width=8, height=8)
    assert job.transient_fault == fault


def test_billing_counts_a_job_once_and_status_words_cover_every_phase() -> None:
    emu = EmulatorState(Knobs())
    job = emu.new_job("x", width=1000, height=1000)
    emu.bill(job)
    emu.bill(job)
    assert list(emu.billed) == [job.id] and emu.billed_usd() == pytest.approx(0.003)
    words = status_words(queued="starting", running="processing", done="succeeded", cancelled="canceled")
    assert set(words) == set(Phase) and job.status(words) == "succeeded"

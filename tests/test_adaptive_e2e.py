"""study.mode=adaptive end to end against an emulated provider, requests counted at the server.

Four models of the AIML API emulator (bench/emulators/openai_compat.py, served on 127.0.0.1 by the
test): flux/schnell ($1/1k, drawn with every colour gray by the emulator's `gray_models` knob: clearly
worse on a suite of colour prompts), alibaba/z-image-turbo ($2/1k, as good as the dear ones),
flux/dev ($25/1k) and flux-pro ($50/1k). The in-process emulated judge scores adherence. The study
must drop flux/schnell, settle on z-image-turbo before the suite's end, and send fewer requests than
the grid, counted by the emulator (EmulatorState.submissions). A second study is killed with SIGKILL
in the middle of its second round and resumed against the same emulator: the server then has
received exactly the uninterrupted study's requests plus the ones in flight at the kill (sent, never
answered to the killed process), and none the killed run had recorded.

Kept fast: 40 prompts, rounds of 10 then 8, images rendered at 64 px, the response cache off (it
would replay the first study's answers to the second), the three studies run at once in one module
fixture, one `bench run` subprocess per study (two for the killed one: the kill and the resume),
the killed one writing no report, bad settings checked in-process.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from _report_runs import BENCH

from bench.emulators import openai_compat
from bench.emulators.common import EmulatorState, Knobs
from bench.emulators.serve import running

KEY_ENV = "X_ADAPTIVE_TEST_KEY"
GRAY, GOOD_CHEAP = "flux/schnell", "alibaba/z-image-turbo"
GROUP = "aimlapi:{} 1024x1024"
PROMPTS = 40
MODELS = 4
FIRST_ROUND = 10
PRICES = "prices.entries=[" + ",".join(
    f'{{provider:aimlapi,model:"{m}",unit:image,usd:{usd},effective_date:"2026-12-06",source_url:"test price"}}'
    for m, usd in ((GRAY, 0.001), (GOOD_CHEAP, 0.002), ("flux/dev", 0.025), ("flux-pro", 0.05))
) + "]"  # fmt: skip


def _prompts(path: Path) -> Path:
    # Chromatic colours only: a gray drawing answers black, white and gray questions right.
    colors = ["red", "blue", "green", "yellow", "purple", "orange"]
    objects = ["apple", "car", "umbrella", "chair", "ball", "bird", "house"]
    items = []
    for i, (c, o) in enumerate(itertools.islice(itertools.product(colors, objects), PROMPTS)):
        bg = colors[(colors.index(c) + 1 + i % 5) % len(colors)]  # never the object's colour
        items.append({"id": f"q{i:03d}", "category": "color", "text": f"a {c} {o} on a {bg} background"})
    path.write_text(yaml.safe_dump({"suite": "adaptive-e2e", "prompts": items}), encoding="utf-8")
    return path


def _args(root: Path, name: str, url: str) -> list[str]:
    return [
        "run", "models=aimlapi", "metrics=offline", f"providers.aimlapi.base_url={url}",
        f"providers.aimlapi.api_key_env={KEY_ENV}", "providers.aimlapi.poll_interval_s=0.01",
        "sweep=quick", "cache.mode=off", "runner.backoff_base_s=0.01", "runner.progress=off",
        "metrics.clip.enabled=false", "metrics.fid.enabled=false", "metrics.kid.enabled=false",
        "metrics.pickscore.enabled=false", "metrics.hpsv2.enabled=false", "metrics.judge.modes=[adherence]",
        "report.n_boot=200", "report.decide.n_boot=200", "report.decide.margins.judge_adherence=0.3", PRICES,
        f"prompts.path={root / 'prompts.yaml'}", "study.mode=adaptive", f"study.first_round={FIRST_ROUND}",
        "study.round_prompts=8", f"results_dir={root}", f"run_name={name}",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, KEY_ENV: "sk-adaptive-test"}


@pytest.fixture(scope="module")
def emulators() -> Iterator[dict[str, tuple[str, EmulatorState]]]:
    """One emulator per study (counts stay apart), all up for the module."""
    out: dict[str, tuple[str, EmulatorState]] = {}
    contexts = []
    try:
        for name in ("straight", "killed", "capped"):
            app = openai_compat.create_app(
                Knobs(max_side_px=64, report_cost=False, gray_models=(GRAY,)), profile="aimlapi"
            )
            ctx = running(app)
            out[name] = (ctx.__enter__(), app.state.emu)
            contexts.append(ctx)
        yield out
    finally:
        for ctx in reversed(contexts):
            ctx.__exit__(None, None, None)


def _journal_keys(run_dir: Path) -> list[str]:
    keys = []
    for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        rows = json.loads(line)
        keys.append(rows[0]["request_key"])
    return keys


def _looks(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "adaptive.jsonl").read_text(encoding="utf-8").splitlines()
    looks = [json.loads(x) for x in lines if json.loads(x).get("kind") == "look"]
    return [{k: x[k] for k in ("round", "prompts", "alive", "settled", "recommended")} | {
        "drops": [(d["group"], d["round"], d["kind"], d["against"]) for d in x["drops"]]} for x in looks]  # type: ignore[attr-defined]  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("adaptive_e2e")
    _prompts(path / "prompts.yaml")
    return path


@dataclass
class Studies:
    straight: Path
    killed: Path
    capped: Path
    capped_stdout: str
    recorded_at_kill: int  # requests in the killed study's journal when it was killed
    received_at_kill: int  # requests its emulator had received by then


def _launch(root: Path, name: str, url: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*BENCH, *_args(root, name, url), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def _kill_mid_round_two(proc: subprocess.Popen[str], run_dir: Path) -> None:
    """SIGKILL once the first look is on disk and 5 requests of round 2 are answered."""
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            journal, looks = run_dir / "journal.jsonl", run_dir / "adaptive.jsonl"
            n_looks = looks.read_text().count('"kind": "look"') if looks.exists() else 0
            lines = journal.read_text().count("\n") if journal.exists() else 0
            if n_looks == 1 and lines >= MODELS * FIRST_ROUND + 5:
                break
            assert proc.poll() is None, "the study finished before it could be killed mid-round"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def studies(root: Path, emulators: dict[str, tuple[str, EmulatorState]]) -> Studies:
    """The three studies run at once (each against its own emulator): the uninterrupted one (with
    its report), the one killed mid-round 2 and resumed (report.write=false: its journal and
    adaptive.jsonl are what is compared), and the one capped by max_cost_usd."""
    quiet = ("report.write=false",)
    straight = _launch(root, "straight", emulators["straight"][0])
    capped = _launch(root, "capped", emulators["capped"][0], "max_cost_usd=1.0")
    killed = _launch(root, "killed", emulators["killed"][0], *quiet)
    _kill_mid_round_two(killed, root / "killed")
    recorded_at_kill = len(_journal_keys(root / "killed"))
    received_at_kill = emulators["killed"][1].submissions
    resumed = _launch(root, "killed", emulators["killed"][0], *quiet)
    _finish(straight)
    capped_stdout = _finish(capped)
    _finish(resumed)
    return Studies(root / "straight", root / "killed", root / "capped", capped_stdout, recorded_at_kill,
                   received_at_kill)  # fmt: skip


def test_adaptive_drops_the_worse_model_names_the_cheap_one_and_sends_fewer_requests(
    studies: Studies, emulators: dict[str, tuple[str, EmulatorState]]
) -> None:
    _, emu = emulators["straight"]
    straight = studies.straight
    verdict = json.loads((straight / "verdict.json").read_text())
    trace = verdict["adaptive"]
    assert trace["status"] == "settled" and trace["recommended"] == GROUP.format(GOOD_CHEAP)
    assert trace["prompts"] < PROMPTS
    dropped = [d for r in trace["rounds"] for d in r["drops"]]
    assert [(d["group"], d["kind"]) for d in dropped] == [(GROUP.format(GRAY), "quality")]
    assert dropped[0]["high"] < -0.3  # its interval lay beyond the margin when it was dropped
    # Counted at the server: fewer requests than the grid, each one sent once.
    keys = _journal_keys(straight)
    assert emu.submissions == len(keys) == len(set(keys)) < MODELS * PROMPTS
    assert sum(emu.submissions_by_model.values()) == emu.submissions
    assert max(emu.submissions_by_model.values()) == trace["prompts"]  # no model asked past the stop
    spent = sum(trace["spent_usd"].values())
    assert spent < trace["grid_usd"]
    page = (straight / "report.html").read_text()
    assert "<section id='adaptive'>" in page and "dropped" in page and GROUP.format(GRAY) in page
    assert "Adaptive study: settled after" in page


def test_a_sigkill_mid_round_resumes_at_the_same_round_and_pays_nothing_twice(
    studies: Studies, emulators: dict[str, tuple[str, EmulatorState]]
) -> None:
    _, emu = emulators["killed"]
    first_round = MODELS * FIRST_ROUND
    assert first_round < studies.recorded_at_kill < first_round + MODELS * 8  # inside round 2
    keys = _journal_keys(studies.killed)
    assert len(keys) == len(set(keys))  # no request was recorded twice
    assert sorted(keys) == sorted(_journal_keys(studies.straight))  # the uninterrupted study's requests
    assert _looks(studies.killed) == _looks(studies.straight)  # the same rounds, drops and recommendation
    # At the server: the resumed run sent exactly what the killed one had not recorded, so the total is
    # the uninterrupted study's count plus the requests unrecorded at the kill: in flight (at most the
    # provider's concurrency, 4) or answered and waiting for the journal's fsync (at most two waves
    # of 4, bench.store.absorb_bursts). Those were billed to a process that died before it could keep
    # them; nothing it had recorded was sent again.
    straight_count = emulators["straight"][1].submissions
    in_flight = studies.received_at_kill - studies.recorded_at_kill
    assert 0 <= in_flight <= 3 * 4
    assert emu.submissions - studies.received_at_kill == straight_count - studies.recorded_at_kill
    assert emu.submissions == straight_count + in_flight


def test_a_bad_study_setting_is_refused_before_any_request(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from bench.cli.main import main

    assert main(["run", "study.mode=race", f"results_dir={tmp_path}", "run_name=bad"]) == 2
    err = capfd.readouterr().err
    assert "study.mode" in err and "race" in err and "adaptive" in err
    assert not (tmp_path / "bad" / "journal.jsonl").exists()
    code = main(
        ["run", "study.mode=adaptive", "study.round_prompts=0", f"results_dir={tmp_path}", "run_name=bad"]
    )
    assert code == 2 and "study.round_prompts" in capfd.readouterr().err


def test_max_cost_usd_covers_every_round_and_the_study_says_it_stopped_for_it(
    studies: Studies, emulators: dict[str, tuple[str, EmulatorState]]
) -> None:
    """Round 1 costs $0.78 (10 prompts x $0.078): a $1 cap stops the study in round 2."""
    _, emu = emulators["capped"]
    lines = [json.loads(x) for x in (studies.capped / "journal.jsonl").read_text().splitlines()]
    costs = [float(rows[0].get("cost_usd") or 0.0) for rows in lines]
    spent = sum(c for c in costs if c == c)  # skipped requests (not sent for the budget) have no cost
    assert 0.78 <= spent <= 1.0
    assert emu.submissions == sum(1 for c in costs if c > 0)  # the server saw only the paid requests
    trace = json.loads((studies.capped / "verdict.json").read_text())["adaptive"]
    assert trace["stopped_because"] == "budget" and trace["status"] != "settled"
    assert "budget" in studies.capped_stdout

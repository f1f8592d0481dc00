"""The VLM judge against the chat-completions emulator: scores, cost, cache, gate, errors.

The emulator is a crude stand-in for a VLM that measures the image it is sent (colour
shares, blob counts), so its answers follow the picture: the colour-blind local variant
(shapes-nocolor) fails the colour questions and the gate catches the planted drop.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _report_runs import bench, bench_in_process

from bench.emulators.chat import create_app
from bench.emulators.chat_vision import ImageMeasure, answer_question
from bench.emulators.common import Knobs
from bench.emulators.serve import running
from bench.judge.config import is_emulated
from bench.judge.questions import geneval_questions
from bench.providers.local_render import encode_png, render

KEY = "sk-judge-test-0123456789"
SWEEP = [
    "sweep.steps=[8]",
    "sweep.guidance=[7.0]",
    "sweep.seeds=[0]",
    'sweep.sizes=["128x128"]',
    "metrics.clip.enabled=false",
    "metrics.fid.enabled=false",
    "metrics.kid.enabled=false",
    "report.print_summary=false",
    "report.n_boot=200",
    "metrics.stats.n_boot=200",
]


def judge_overrides(url: str) -> list[str]:
    return [
        "metrics.judge.enabled=true",
        "metrics.judge.target=openai:gpt-4.1-mini",  # priced from configs/metrics/default.yaml
        f"metrics.judge.base_url={url}",
        "metrics.judge.backoff_base_s=0.01",
    ]


@pytest.fixture(scope="module")
def emulator() -> Iterator[tuple[str, Any]]:
    app = create_app(Knobs(api_key=KEY))
    with running(app) as url:
        yield url, app.state.emu


@pytest.fixture(scope="module")
def judged_runs(emulator: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    url, _emu = emulator
    root = tmp_path_factory.mktemp("judged")
    os.environ["OPENAI_API_KEY"] = KEY  # the subprocess inherits it; never written anywhere
    runs = {}
    for name, targets in (
        ("base", "targets=[local:shapes-fast]"),
        ("nocolor", 'targets=[{target:"local:shapes-nocolor",name:"local:shapes-fast"}]'),
    ):
        proc = bench("run", targets, *SWEEP, *judge_overrides(url), f"results_dir={root}", f"run_name={name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = root / name
    return runs


def png_of(prompt: str, variant: str) -> bytes:
    return encode_png(render(prompt, width=128, height=128, seed=0, steps=16, guidance=7.0, variant=variant))


def test_emulator_answers_follow_the_picture() -> None:
    colour = ImageMeasure(png_of("two red apples on a blue table", "fast"))
    gray = ImageMeasure(png_of("two red apples on a blue table", "nocolor"))
    assert answer_question(colour, "Are the apples red?").answer is True
    assert answer_question(gray, "Are the apples red?").answer is False  # a colour-blind model cannot fool it
    assert answer_question(colour, "Is the table blue?").answer is True
    assert answer_question(colour, "Are there exactly two red apples in the image?").answer is True
    assert answer_question(colour, "Are there exactly three red apples in the image?").answer is False
    stars = ImageMeasure(png_of("five orange stars on a blue background", "fast"))
    assert answer_question(stars, "Are there exactly five stars in the image?").answer is True
    assert answer_question(stars, "Are there exactly four stars in the image?").answer is False
    left = ImageMeasure(png_of("a red apple", "fast"))
    assert answer_question(left, "Is there an apple in the image?").answer is True
    assert answer_question(left, "Is the apple blue?").answer is False  # (its leaf is green: crude)


def test_official_openai_sdk_drives_the_emulator(emulator: tuple[str, Any]) -> None:
    openai = pytest.importorskip("openai")
    url, _ = emulator
    client = openai.OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0)
    uri = "data:image/png;base64," + base64.b64encode(png_of("a yellow banana", "fast")).decode()
    reply = client.chat.completions.create(
        model="gpt-4.1-mini",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Answer with yes or no.\nQuestion: Is the banana yellow?\n"},
                    {"type": "image_url", "image_url": {"url": uri, "detail": "low"}},
                ],
            }
        ],
        response_format={"type": "json_object"},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": "yes"}
    assert reply.usage is not None and reply.usage.prompt_tokens > 85 and reply.usage.completion_tokens > 0
    assert "crude stand-in" in reply.model  # never passes itself off as the model asked for
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(api_key="sk-wrong-key", base_url=f"{url}/v1", max_retries=0).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}]
        )
    limited = create_app(Knobs(fault="rate_limit", fault_first=1, retry_after_s=7))
    with running(limited) as other:
        sdk = openai.OpenAI(api_key=KEY, base_url=f"{other}/v1", max_retries=0)
        with pytest.raises(openai.RateLimitError) as info:
            sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert info.value.response.headers["retry-after"] == "7"
        refused = sdk.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "REFUSE this"}]
        )
        assert refused.choices[0].message.refusal and refused.choices[0].message.content is None


def test_geneval_metadata_gives_the_questions(shared_prompts: Path) -> None:
    rows = [json.loads(line) for line in (shared_prompts / "geneval_evaluation_metadata.jsonl").open()]
    position = next(r for r in rows if r["tag"] == "position")
    colour = next(r for r in rows if r["tag"] == "color_attr")
    counting = next(r for r in rows if r["tag"] == "counting")
    q = geneval_questions(position)
    a, b = position["include"][0]["class"], position["include"][1]["class"]
    rel = position["include"][1]["position"][0]
    assert [x.kind for x in q] == ["object", "object", "position"]
    assert q[-1].text == f"Is the {b} {rel} the {a}?"
    kinds = [x.kind for x in geneval_questions(colour)]
    assert kinds.count("color") == 2 and kinds.count("object") == 2
    n = counting["include"][0]["count"]
    assert geneval_questions(counting)[0].kind == ("count" if n > 1 else "object")


def test_run_scores_adherence_and_rubric_and_records_cost(judged_runs: dict[str, Path]) -> None:
    records = pd.read_parquet(judged_runs["base"] / "records.parquet")
    ok = records[records["status"] == "ok"]
    assert len(ok) == 12
    assert ok["judge_adherence"].between(0, 1).all() and ok["judge_rubric"].between(1, 10).all()
    assert ok["judge_adherence"].mean() > 0.8  # the colour model follows the project prompts
    assert (ok["judge_cost_usd"] > 0).all()  # priced from the token usage the endpoint returned
    assert ok["judge_fingerprint"].str.startswith("judge:openai:gpt-4.1-mini:").all()
    answers = pd.read_parquet(judged_runs["base"] / "judge_answers.parquet")
    assert set(answers["mode"]) == {"questions", "adherence", "rubric"}
    assert answers["answered_by"].str.contains("crude stand-in").all()
    per_image = answers[answers["mode"] != "questions"].groupby("image_sha256")["cost_usd"].sum()
    by_sha = ok.set_index("image_sha256")["judge_cost_usd"]
    assert np.allclose(by_sha.loc[per_image.index], per_image)
    adherence = answers[answers["mode"] == "adherence"]
    share = adherence.groupby("image_sha256")["answer"].apply(lambda s: float((s == "yes").mean()))
    assert np.allclose(by_sha.index.map(share), ok["judge_adherence"])
    metrics = pd.read_parquet(judged_runs["base"] / "metrics.parquet")
    assert metrics["judge_adherence_mean"].notna().all() and metrics["judge_rubric_mean"].notna().all()
    assert metrics["judge_cost_usd"].iloc[0] == pytest.approx(ok["judge_cost_usd"].sum())
    # the run's report plots its frontiers against the judge: the best quality signal it has, and
    # says the built-in emulator made it (never passed off as a VLM)
    html = (judged_runs["base"] / "report.html").read_text()
    assert "Quality axis: emulated judge (bench emulate chat, not a VLM) adherence" in html
    assert "Quality axis: VLM judge" not in html
    assert ok["judge_fingerprint"].map(is_emulated).all()
    assert metrics["judge_fingerprint"].map(is_emulated).all()
    nocolor = pd.read_parquet(judged_runs["nocolor"] / "records.parquet")
    assert nocolor["judge_adherence"].mean() < ok["judge_adherence"].mean() - 0.2
    for path in judged_runs["base"].rglob("*"):
        if path.is_file() and path.suffix in (".parquet", ".yaml", ".jsonl", ".log", ".html"):
            assert KEY.encode() not in path.read_bytes(), path


def test_rescore_comes_from_cache_with_zero_requests(
    emulator: tuple[str, Any], judged_runs: dict[str, Path]
) -> None:
    url, emu = emulator
    before = len(emu.calls)
    first = pd.read_parquet(judged_runs["base"] / "records.parquet")
    proc = bench("score", str(judged_runs["base"]), *SWEEP[4:], *judge_overrides(url))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(emu.calls) == before  # counted at the emulator: nothing was sent
    assert "0 requests sent" in proc.stdout
    again = pd.read_parquet(judged_runs["base"] / "records.parquet")
    pd.testing.assert_series_equal(first["judge_adherence"], again["judge_adherence"])
    pd.testing.assert_series_equal(first["judge_cost_usd"], again["judge_cost_usd"])


def test_gate_fails_the_planted_colour_drop(
    judged_runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # bench compare's exit codes through a process of its own are tested in test_gate.py.
    proc = bench_in_process(
        capsys,
        "compare",
        str(judged_runs["base"]),
        str(judged_runs["nocolor"]),
        f"gate.output_dir={tmp_path}",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    data = json.loads((tmp_path / "gate.json").read_text())
    checks = {(c["target"], c["metric"]): c for c in data["checks"]}
    adherence = checks[("local:shapes-fast", "judge_adherence")]
    assert adherence["status"] == "FAIL" and adherence["high"] < -0.05
    assert checks[("local:shapes-fast", "judge_rubric")]["status"] == "FAIL"
    same = bench_in_process(
        capsys, "compare", str(judged_runs["base"]), str(judged_runs["base"]), f"gate.output_dir={tmp_path}"
    )
    assert same.returncode == 0, same.stdout + same.stderr


def test_missing_key_is_exit_2_before_any_request(emulator: tuple[str, Any], tmp_path: Path) -> None:
    url, emu = emulator
    before = len(emu.calls)
    env_key = os.environ.pop("OPENAI_API_KEY", None)
    try:
        proc = bench(
            "run", "targets=[local:shapes-fast]", *SWEEP, *judge_overrides(url), f"results_dir={tmp_path}"
        )
    finally:
        if env_key is not None:
            os.environ["OPENAI_API_KEY"] = env_key
    assert proc.returncode == 2
    assert (
        "metrics.judge.api_key_env='OPENAI_API_KEY'" in proc.stderr and "export OPENAI_API_KEY" in proc.stderr
    )
    assert len(emu.calls) == before and not any(tmp_path.iterdir())


def _rescore(run: Path, tmp_path: Path, knobs: Knobs, **judge: Any) -> tuple[Any, Any, pd.DataFrame]:
    from bench.metrics.score import score_run

    copy = tmp_path / "run"
    import shutil

    shutil.copytree(run, copy)
    app = create_app(knobs)
    with running(app) as url:
        cfg = {
            "clip": {"enabled": False},
            "fid": {"enabled": False},
            "kid": {"enabled": False},
            "stats": {"n_boot": 100},
            "cache_dir": str(tmp_path / "cache"),  # a cold cache: every answer is requested
            "judge": {
                "enabled": True,
                "target": "openai:gpt-4.1-mini",
                "base_url": url,
                "api_key_env": "OPENAI_API_KEY",
                "backoff_base_s": 0.01,
                "prices": {
                    "openai:gpt-4.1-mini": {"input_usd_per_million": 0.4, "output_usd_per_million": 1.6}
                },
                **judge,
            },
        }
        report = score_run(copy, cfg)
    return report, app.state.emu, pd.read_parquet(copy / "records.parquet")


def judge_line(report: Any) -> str:
    return next(n for n in report.notes if "[judge:" in n)


def test_rate_limits_are_retried_with_retry_after(judged_runs: dict[str, Path], tmp_path: Path) -> None:
    report, emu, records = _rescore(
        judged_runs["base"],
        tmp_path,
        Knobs(api_key=KEY, fault="rate_limit", fault_first=3, retry_after_s=0.05),
    )
    line = judge_line(report)
    assert "rate_limited=3" in line and "adherence on 12/12 images" in line
    assert emu.submissions == len(emu.calls)  # every 429 was followed by a retry that succeeded
    assert records["judge_adherence"].notna().all()


def test_refusals_are_recorded_not_retried(judged_runs: dict[str, Path], tmp_path: Path) -> None:
    _report, emu, records = _rescore(judged_runs["base"], tmp_path, Knobs(api_key=KEY, refuse_word="apple"))
    answers = pd.read_parquet(tmp_path / "run" / "judge_answers.parquet")
    refused = answers[answers["status"] == "refused"]
    assert len(refused) > 0 and refused["error"].str.contains("refused").all()
    apple = records["prompt"].str.contains("apple")
    assert records.loc[apple, "judge_adherence"].isna().all()  # unknown, never a made-up 0
    assert records.loc[~apple, "judge_adherence"].notna().all()
    assert len(emu.calls) == emu.submissions == len(answers)  # one request per answer: no retry of a refusal


def test_judge_spend_stays_under_its_cap(judged_runs: dict[str, Path], tmp_path: Path) -> None:
    cap = 0.002  # about half of what judging the 12 images costs
    report, emu, records = _rescore(
        judged_runs["base"], tmp_path, Knobs(api_key=KEY), max_cost_usd=cap, concurrency=1
    )
    answers = pd.read_parquet(tmp_path / "run" / "judge_answers.parquet")
    sent = answers[~answers["cached"] & (answers["status"] == "ok")]
    assert 0 < sent["cost_usd"].sum() <= cap
    assert (answers["status"] == "skipped").any() and records["judge_adherence"].isna().any()
    assert "stopped: metrics.judge.max_cost_usd" in judge_line(report)
    # every call the emulator answered is in the folder's judge journal, with its cost
    journal = [json.loads(line) for line in (tmp_path / "run" / "judge_spend.jsonl").open()]
    copied = sum(1 for _ in (judged_runs["base"] / "judge_spend.jsonl").open())
    assert len(journal) - copied == len(emu.calls) == len(sent)
    assert sum(e["cost_usd"] for e in journal[copied:]) == pytest.approx(sent["cost_usd"].sum())


# ---- verdicts that cannot lie (issue 19 section 3): readable answers only, the endpoint in the key,
# ---- judge money inside max_cost_usd. Cheap run folders, scored in process against 127.0.0.1.


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three local images (three prompts), generated without metrics: the judge scores copies of it."""
    from bench.cli.main import main

    root = tmp_path_factory.mktemp("small")
    code = main(
        [
            "run",
            "targets=[local:shapes-fast]",
            "sweep=quick",
            "prompts.n=3",
            'sweep.sizes=["128x128"]',
            "metrics=off",
            "report.write=false",
            "report.print_summary=false",
            "runner.progress=off",
            f"results_dir={root}",
            "run_name=r",
        ]
    )
    assert code == 0
    return root / "r"


def _judge_cfg(url: str, cache: Path, **judge: Any) -> dict[str, Any]:
    return {
        "clip": {"enabled": False},
        "fid": {"enabled": False},
        "kid": {"enabled": False},
        "stats": {"n_boot": 50},
        "cache_dir": str(cache),
        "judge": {
            "enabled": True,
            "target": "openai:gpt-4.1-mini",
            "base_url": url,
            "api_key_env": "",  # a keyless local server
            "backoff_base_s": 0.001,
            "backoff_max_s": 0.01,
            "prices": {"openai:gpt-4.1-mini": {"input_usd_per_million": 0.4, "output_usd_per_million": 1.6}},
            **judge,
        },
    }


def _copy(run: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run, dest)
    return dest


def _cached_values(cache: Path) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(cache / "judge.sqlite") as conn:
        return [json.loads(v) for (v,) in conn.execute("SELECT value FROM answers")]


def test_tolerant_answer_forms_are_read_and_the_rest_refused() -> None:
    from bench.judge.answers import UnreadableAnswerError, read_questions, read_score, read_yes_no

    for raw, want in [
        ('{"answer": "yes"}', "yes"),
        ('{"answer": "Yes."}', "yes"),
        ('{"answer": " NO! "}', "no"),
        ('{"answer": "\'yes\'"}', "yes"),
        ('{"answer": true}', "yes"),
        ("Yes.", "yes"),
        ('"no"', "no"),
        ("  No  ", "no"),
    ]:
        assert read_yes_no(raw) == {"answer": want}, raw
    for raw, score in [
        ('{"score": 7, "reason": "ok"}', 7.0),
        ('{"score": "7/10"}', 7.0),
        ('{"score": "7 / 10"}', 7.0),
        ('{"score": "7."}', 7.0),
        ('{"score": "8 out of 10"}', 8.0),
        ("7/10", 7.0),
        ('{"score": 10}', 10.0),
    ]:
        assert read_score(raw)["score"] == score, raw
    assert read_questions('{"questions": ["Is there an apple?"]}') == {"questions": ["Is there an apple?"]}
    for reader, raw in [
        (read_yes_no, '{"answer": "maybe"}'),
        (read_yes_no, "maybe"),
        (read_yes_no, '{"answer": "yes and no"}'),
        (read_yes_no, '{"verdict": "yes"}'),
        (read_yes_no, ""),
        (read_yes_no, None),
        (read_score, '{"score": "7/5"}'),
        (read_score, '{"score": 11}'),
        (read_score, '{"score": true}'),
        (read_score, '{"score": "great"}'),
        (read_questions, '{"questions": "Is there an apple?"}'),
        (read_questions, '{"questions": [1, 2]}'),
    ]:
        with pytest.raises(UnreadableAnswerError):
            reader(raw)


def test_an_unreadable_answer_is_retried_and_never_cached(small_run: Path, tmp_path: Path) -> None:
    from scripted_server import scripted_chat

    from bench.metrics.score import score_run

    asked: list[int] = []

    def reply(text: str, index: int) -> str | None:
        if "Question:" in text and not asked:
            asked.append(index)
            return '{"answer": "maybe"}'  # the first yes/no question gets an unreadable answer
        if len(asked) == 1 and text == script.texts[asked[0]]:
            asked.append(index)
            return '{"answer": "Yes."}'  # its retry: a tolerant form, read as yes
        return None

    run = _copy(small_run, tmp_path / "run")
    with scripted_chat(reply) as (url, script):
        report = score_run(run, _judge_cfg(url, tmp_path / "cache", modes=["adherence"]))
    records = pd.read_parquet(run / "records.parquet")
    assert records["judge_adherence"].notna().all()  # every image scored
    answers = pd.read_parquet(run / "judge_answers.parquet")
    # one request per answer, plus exactly one retry of the unreadable one (counted at the server)
    assert len(script.texts) == len(answers) + 1
    assert script.texts[asked[0]] == script.texts[asked[1]]
    assert len(asked) == 2
    retried = answers[answers["question"] == script.texts[asked[0]].split("Question: ")[1].split("\n")[0]]
    assert list(retried["answer"]) == ["yes"]
    cached = _cached_values(tmp_path / "cache")
    assert len(cached) == len(answers)
    assert not any(v["content"].get("answer") == "maybe" for v in cached)
    assert all(v["content"].get("answer") in ("yes", "no") for v in cached if "answer" in v["content"])
    line = judge_line(report)
    assert "failures: unreadable_answer=1" in line and "answers unreadable after" not in line
    # the judge's billed calls, the unreadable one too, are in the run folder's judge journal
    journal = (run / "judge_spend.jsonl").read_text().splitlines()
    assert len(journal) == len(script.texts)


def test_garbage_answers_leave_images_unscored_until_a_healthy_server_scores_them(
    small_run: Path, tmp_path: Path
) -> None:
    from scripted_server import scripted_chat

    from bench.metrics.score import score_run

    healthy = {"on": False}

    def reply(text: str, index: int) -> str | None:
        if healthy["on"]:
            return None
        return '{"answer": "maybe"}' if "Question:" in text else None

    run = _copy(small_run, tmp_path / "run")
    cfg = _judge_cfg(url="", cache=tmp_path / "cache", modes=["adherence"], max_attempts=2)
    with scripted_chat(reply) as (url, script):
        cfg["judge"]["base_url"] = url
        report = score_run(run, cfg)
        records = pd.read_parquet(run / "records.parquet")
        assert records["judge_adherence"].isna().all()  # unknown, never a made-up score
        questions = sum("Question:" in t for t in script.texts)
        line = judge_line(report)
        assert f"{questions // 2} answers unreadable after every attempt" in line
        assert f"unreadable_answer={questions}" in line and "adherence on 0/3 images" in line
        assert not any("answer" in v["content"] for v in _cached_values(tmp_path / "cache"))
        # the same endpoint, now healthy: nothing was cached from the garbage, so all are asked again
        healthy["on"] = True
        before = len(script.texts)
        report = score_run(run, cfg)
        assert sum("Question:" in t for t in script.texts[before:]) == questions // 2
    records = pd.read_parquet(run / "records.parquet")
    assert records["judge_adherence"].notna().all()
    assert "adherence on 3/3 images" in judge_line(report)


def test_a_dead_endpoint_scores_nothing_from_another_endpoints_answers(
    small_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from bench.metrics.score import score_run

    run = _copy(small_run, tmp_path / "run")
    cache = tmp_path / "cache"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with running(create_app(Knobs(api_key=KEY))) as url:
        first = score_run(run, _judge_cfg(url, cache, api_key_env="OPENAI_API_KEY"))
    scored = pd.read_parquet(run / "records.parquet")
    assert scored["judge_adherence"].notna().all() and "adherence on 3/3" in judge_line(first)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    report = score_run(run, _judge_cfg(dead, cache, api_key_env="OPENAI_API_KEY", max_attempts=1))
    records = pd.read_parquet(run / "records.parquet")
    assert records["judge_adherence"].isna().all() and records["judge_rubric"].isna().all()
    line = judge_line(report)
    assert "0 answers from cache" in line and "transport=" in line
    assert not records["judge_fingerprint"].map(is_emulated).any()
    assert set(records["judge_fingerprint"]).isdisjoint(set(scored["judge_fingerprint"]))
    assert scored["judge_fingerprint"].map(is_emulated).all()  # stamped: the built-in emulator answered


def test_the_endpoint_in_the_key_holds_no_credentials() -> None:
    from bench.judge.config import endpoint_id

    assert endpoint_id("https://user:sk-secret@API.example.com:8443/v1/?key=sk-x") == (
        "https://api.example.com:8443/v1"
    )
    assert endpoint_id("http://127.0.0.1:8001") != endpoint_id("http://127.0.0.1:8002")


def test_a_real_judge_is_labelled_a_vlm_judge(small_run: Path, tmp_path: Path) -> None:
    from scripted_server import scripted_chat

    from bench.metrics.score import score_run
    from bench.report.quality import axis_of

    run = _copy(small_run, tmp_path / "run")
    with scripted_chat(lambda text, index: None) as (url, _script):  # no emulator header
        score_run(run, _judge_cfg(url, tmp_path / "cache"))
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert not metrics["judge_fingerprint"].map(is_emulated).any()
    assert axis_of(metrics.rename(columns={}), "judge_adherence").label.startswith("VLM judge adherence")
    emulated = metrics.assign(judge_fingerprint="judge:openai:gpt-4.1-mini:emulated:0123456789abcdef")
    assert axis_of(emulated, "judge_adherence").label.startswith("emulated judge")


def test_a_shared_image_counts_its_judge_cost_once(small_run: Path, tmp_path: Path) -> None:
    """Two groups that made the same bytes: the answers were bought once, and the sums say so."""
    from scripted_server import scripted_chat

    from bench.metrics.score import score_run

    run = _copy(small_run, tmp_path / "run")
    records = pd.read_parquet(run / "records.parquet")
    twin = records.copy()
    twin["target"] = "local:shapes-twin"  # another group with the same images
    pd.concat([records, twin], ignore_index=True).to_parquet(run / "records.parquet", index=False)
    with scripted_chat(lambda text, index: None) as (url, _script):
        score_run(run, _judge_cfg(url, tmp_path / "cache"))
    answers = pd.read_parquet(run / "judge_answers.parquet")
    bought = answers.loc[answers["mode"] != "questions", "cost_usd"].sum()
    scored = pd.read_parquet(run / "records.parquet")
    assert scored["judge_cost_usd"].sum() == pytest.approx(bought)
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert metrics["judge_cost_usd"].sum() == pytest.approx(bought)
    journal = [json.loads(line) for line in (run / "judge_spend.jsonl").open()]
    assert sum(e["cost_usd"] for e in journal) == pytest.approx(answers["cost_usd"].sum())


def _paid_run(
    gen_url: str, chat_url: str, root: Path, n: int, cap: float, *extra: str, command: str = "run"
) -> int:
    """`bench run` (in process): AIML API emulator images ($0.003 per megapixel), judged by the chat
    emulator under one max_cost_usd for the folder. `command="estimate"`: the same sweep estimated."""
    from _provider_harness import KEY_ENV

    from bench.cli.main import main

    return main(
        [
            command,
            "targets=[aimlapi:flux/schnell]",
            f"providers.aimlapi.base_url={gen_url}",
            f"providers.aimlapi.api_key_env={KEY_ENV}",
            "sweep=quick",  # one 1024x1024 request per prompt and seed: $0.0031 each
            f"prompts.n={n}",
            f"max_cost_usd={cap}",
            *(f"metrics.{m}.enabled=false" for m in ("clip", "fid", "kid", "pickscore", "hpsv2")),
            *judge_overrides(chat_url),
            "report.write=false",
            "report.print_summary=false",
            "runner.progress=off",
            "runner.backoff_base_s=0.01",
            f"results_dir={root}",
            "run_name=r",
            *extra,
        ]
    )


def _judge_journal_usd(run_dir: Path) -> float:
    path = run_dir / "judge_spend.jsonl"
    return sum(json.loads(line)["cost_usd"] for line in path.open()) if path.is_file() else 0.0


@pytest.fixture
def paid_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from _provider_harness import KEY as GEN_KEY
    from _provider_harness import KEY_ENV

    monkeypatch.setenv(KEY_ENV, GEN_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)


@pytest.mark.usefixtures("paid_keys")
def test_no_judge_call_goes_out_when_generation_left_too_little(tmp_path: Path) -> None:
    """The issue's case: cap $0.06, generation $0.0598; the judge's first call no longer goes out."""
    from _provider_harness import emulator, knobs

    from bench.emulators import openai_compat

    cap = 0.06
    chat = create_app(Knobs(api_key=KEY))
    with (
        emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (gen_url, gen),
        running(chat) as url,
    ):
        assert _paid_run(gen_url, url, tmp_path, 10, cap, "sweep.seeds=[1,2]") == 0
    assert len(gen.billed) == 19  # $0.0598; the 20th image did not fit
    assert chat.state.emu.calls == []  # counted at the judge's server: nothing was sent
    assert gen.billed_usd() + _judge_journal_usd(tmp_path / "r") <= cap
    records = pd.read_parquet(tmp_path / "r" / "records.parquet")
    assert records["judge_adherence"].isna().all()


@pytest.mark.usefixtures("paid_keys")
def test_judge_spend_counts_against_the_cap_on_resume_and_in_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from _provider_harness import emulator, knobs

    from bench.emulators import openai_compat

    # 4 images cost $0.0126 and judging them ~$0.0014: a 5th image ($0.0031) fits what generation
    # left, but not what generation and the judge left together.
    cap = 0.0165
    chat = create_app(Knobs(api_key=KEY))
    run_dir = tmp_path / "r"
    with (
        emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (gen_url, gen),
        running(chat) as url,
    ):
        assert _paid_run(gen_url, url, tmp_path, 4, cap) == 0
        judge_usd = _judge_journal_usd(run_dir)
        calls = len(chat.state.emu.calls)
        assert len(gen.billed) == 4 and calls > 0 and judge_usd > 0
        assert pd.read_parquet(run_dir / "records.parquet")["judge_adherence"].notna().all()
        # every judge call the server answered is in the journal, with the cost the answers list
        answers = pd.read_parquet(run_dir / "judge_answers.parquet")
        assert len(run_dir.joinpath("judge_spend.jsonl").read_text().splitlines()) == calls == len(answers)
        assert judge_usd == pytest.approx(answers["cost_usd"].sum())
        assert cap - gen.billed_usd() > 0.0031 > cap - gen.billed_usd() - judge_usd
        # resume one prompt larger under the same cap: the folder's judge spend is counted
        assert _paid_run(gen_url, url, tmp_path, 5, cap) == 0
        assert len(gen.billed) == 4  # the 5th image would pass the cap
        assert len(chat.state.emu.calls) == calls  # the 4 images re-scored from the judge cache
    assert gen.billed_usd() + _judge_journal_usd(run_dir) <= cap
    capsys.readouterr()
    assert _paid_run(gen_url, url, tmp_path, 5, cap, command="estimate") == 0
    out = capsys.readouterr().out
    assert "judge openai:gpt-4.1-mini: up to " in out and "counted against max_cost_usd" in out
    spent = gen.billed_usd() + judge_usd
    assert f"${spent:.4f} spent so far (judge ${judge_usd:.4f} in {calls} calls)" in out


def test_bench_score_spends_under_the_folders_cap(small_run: Path, tmp_path: Path) -> None:
    """`bench score` counts judge calls against max_cost_usd too: the recorded one, or one given."""
    import yaml
    from scripted_server import scripted_chat

    from bench.cli.main import main

    run = _copy(small_run, tmp_path / "run")
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**recorded, "max_cost_usd": 0.0}))
    with scripted_chat(lambda text, index: None) as (url, script):
        overrides = [
            *(f"metrics.{m}.enabled=false" for m in ("clip", "fid", "kid", "pickscore", "hpsv2")),
            *judge_overrides(url),
            "metrics.judge.api_key_env=",
            f"metrics.cache_dir={tmp_path / 'cache'}",
        ]
        assert main(["score", str(run), *overrides]) == 0
        assert script.texts == []  # the folder's recorded cap ($0) left nothing: nothing was sent
        assert main(["score", str(run), *overrides, "max_cost_usd=1.0"]) == 0
        assert len(script.texts) > 0
    assert pd.read_parquet(run / "records.parquet")["judge_adherence"].notna().all()
    assert main(["score", str(run), *overrides, "max_cost_usd=-1"]) == 2  # bad input, nothing sent

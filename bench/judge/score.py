"""Score a run's images with a VLM judge: adherence (share of yes answers) and a 1-10 rubric.

Per image: `judge_adherence`, `judge_rubric`, `judge_fingerprint`, `judge_cost_usd` (what
its answers cost when they were bought, divided among the records that share the image, so
sums over records or groups count each answer once). Per question: `judge_answers.parquet`
in the run folder. Every readable answer is cached (bench/judge/cache.py) under the judge's
endpoint, model and templates, so re-scoring an unchanged run at the same endpoint sends no
request; unreadable answers and errors are never cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

from bench.errors import ProviderError
from bench.judge.answers import READERS, UnreadableAnswerError
from bench.judge.cache import JudgeCache, answer_key
from bench.judge.client import (
    EMULATED_SUFFIX,
    BudgetStop,
    ChatAnswer,
    ChatJudgeClient,
    JudgeBudget,
    png_data_uri,
)
from bench.judge.config import EMULATED_MARK, JudgeConfig
from bench.judge.journal import JudgeJournal
from bench.judge.questions import Question, geneval_questions, judge_written
from bench.judge.templates import ANSWER, QUESTIONS, RUBRIC, template_hash
from bench.metrics.fingerprint import fingerprint_id

log = logging.getLogger("bench.judge")
ANSWERS_FILE = "judge_answers.parquet"
COLUMNS = ("judge_adherence", "judge_rubric", "judge_fingerprint", "judge_cost_usd")


def judge_details(cfg: JudgeConfig, endpoint_kind: str | None = None) -> dict[str, Any]:
    """What a judge score depends on. Without `endpoint_kind`: the cache's fingerprint (known before
    any answer); with it ("emulator" or "remote", learnt from the answers): the records' fingerprint."""
    details: dict[str, Any] = {
        "backbone": cfg.target,
        "endpoint": cfg.endpoint,
        "template_hash": template_hash(
            {
                "temperature": cfg.temperature,
                "image_detail": cfg.image_detail,
                "max_image_side": cfg.max_image_side,
            }
        ),
        "modes": list(cfg.modes),
        "adherence": "share of yes over GenEval-metadata questions, else judge-written (DSG-style) questions",
        "rubric": "integer 1-10",
    }
    if endpoint_kind is not None:
        details["endpoint_kind"] = endpoint_kind
    return details


def judge_fingerprint(details: Mapping[str, Any]) -> str:
    """The fingerprint id; answers from the built-in chat emulator carry EMULATED_MARK after the target."""
    fp = fingerprint_id("judge", details)
    if details.get("endpoint_kind") == "emulator":
        prefix, digest = fp.rsplit(":", 1)
        fp = f"{prefix}:{EMULATED_MARK}:{digest}"
    return fp


@dataclass
class JudgeReport:
    fingerprint: str
    images: int = 0
    adherence_scored: int = 0
    rubric_scored: int = 0
    requests: int = 0
    cached: int = 0
    cost_now_usd: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    stopped: str = ""
    unreadable: int = 0  # answers still unreadable after every attempt (not cached)
    emulated: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # the fingerprint's details

    def line(self) -> str:
        who = "emulated judge (bench emulate chat, not a VLM)" if self.emulated else "judge"
        text = (
            f"{who} [{self.fingerprint}]: adherence on {self.adherence_scored}/{self.images} images, "
            f"rubric on {self.rubric_scored}/{self.images}; {self.requests} requests sent "
            f"(${self.cost_now_usd:.4f}), {self.cached} answers from cache"
        )
        if self.unreadable:
            text += (
                f"; {self.unreadable} answers unreadable after every attempt "
                f"({self.failures.get('unreadable_answer', 0)} unreadable replies in all; "
                "not cached: the next run asks again)"
            )
        if self.failures:
            text += "; failures: " + ", ".join(f"{k}={v}" for k, v in sorted(self.failures.items()))
        if self.stopped:
            text += f"; stopped: {self.stopped}"
        return text


@dataclass
class _Outcome:
    status: str  # ok | refused | error | skipped
    content: dict[str, Any] = field(default_factory=dict)
    answered_by: str = ""
    cost_usd: float = math.nan
    cost_source: str = "unknown"
    prompt_tokens: float = math.nan
    completion_tokens: float = math.nan
    error: str = ""
    cached: bool = False

    def to_cache(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "content": self.content,
            "answered_by": self.answered_by,
            "cost_usd": None if math.isnan(self.cost_usd) else self.cost_usd,
            "cost_source": self.cost_source,
            "prompt_tokens": None if math.isnan(self.prompt_tokens) else self.prompt_tokens,
            "completion_tokens": None if math.isnan(self.completion_tokens) else self.completion_tokens,
            "error": self.error,
        }

    @classmethod
    def from_cache(cls, value: Mapping[str, Any]) -> _Outcome:
        def num(v: Any) -> float:
            return math.nan if v is None else float(v)

        return cls(
            status=str(value["status"]),
            content=dict(value.get("content") or {}),
            answered_by=str(value.get("answered_by", "")),
            cost_usd=num(value.get("cost_usd")),
            cost_source=str(value.get("cost_source", "unknown")),
            prompt_tokens=num(value.get("prompt_tokens")),
            completion_tokens=num(value.get("completion_tokens")),
            error=str(value.get("error", "")),
            cached=True,
        )

    @classmethod
    def from_answer(cls, answer: ChatAnswer) -> _Outcome:
        return cls(
            status="ok",
            content=answer.content,
            answered_by=answer.answered_by,
            cost_usd=answer.cost_usd,
            cost_source=answer.cost_source,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
        )


def yes_no(content: Mapping[str, Any]) -> bool | None:
    value = str(content.get("answer", "")).strip().lower()
    return True if value in ("yes", "true") else False if value in ("no", "false") else None


def rubric_score(content: Mapping[str, Any]) -> float:
    score = content.get("score")
    if isinstance(score, bool) or not isinstance(score, int | float | str):
        return math.nan
    try:
        value = float(score)
    except ValueError:
        return math.nan
    return value if 1.0 <= value <= 10.0 else math.nan


def cached_outcome(task: str, value: Mapping[str, Any]) -> _Outcome | None:
    """A cached answer, re-read with today's reader; None (a miss) if it cannot be read."""
    try:
        outcome = _Outcome.from_cache(value)
        if outcome.status == "ok":
            outcome.content = READERS[task](json.dumps(outcome.content))
        elif outcome.status != "refused":
            return None  # only answers and refusals are ever stored
    except (KeyError, TypeError, ValueError, UnreadableAnswerError):
        return None
    return outcome


class _Session:
    """One scoring pass: the cache, the client and the tasks that missed the cache."""

    def __init__(self, cfg: JudgeConfig, cache: JudgeCache, fingerprint: str, report: JudgeReport) -> None:
        self.cfg, self.cache, self.fp, self.report = cfg, cache, fingerprint, report
        self.client: ChatJudgeClient | None = None
        self._uris: dict[str, tuple[str, tuple[int, int]]] = {}
        self._stop: str = ""

    def lookup(self, tasks: Mapping[str, str]) -> dict[str, _Outcome]:
        """key -> cached outcome, for the keys (key -> task) the cache holds readable answers for."""
        found: dict[str, _Outcome] = {}
        for key, value in self.cache.get_many(list(tasks)).items():
            outcome = cached_outcome(tasks[key], value)
            if outcome is not None:
                found[key] = outcome
        return found

    async def ask(self, task: str, key: str, text: str, image: tuple[str, Path] | None) -> _Outcome:
        assert self.client is not None
        if self._stop:
            return _Outcome("skipped", error=self._stop)
        uri, size = None, None
        if image is not None:
            sha, path = image
            if sha not in self._uris:
                self._uris[sha] = png_data_uri(path.read_bytes(), self.cfg.max_image_side)
            uri, size = self._uris[sha]
        try:
            outcome = _Outcome.from_answer(await self.client.ask(task, text, uri, size))
        except BudgetStop as exc:
            self._stop = str(exc)
            return _Outcome("skipped", error=self._stop)
        except ProviderError as exc:
            status = "refused" if exc.error_type == "refused" else "error"
            self.report.unreadable += int(exc.error_type == UnreadableAnswerError.error_type)
            outcome = _Outcome(status, error=f"{exc.error_type}: {exc.message}")
        if outcome.status in ("ok", "refused"):  # never an error: the next run asks again
            self.cache.put(key, outcome.to_cache())
        return outcome


def _prompt_metadata(run_dir: Path) -> dict[str, Mapping[str, Any]]:
    """prompt_id -> GenEval metadata, re-read from the prompt file named in the run's config.yaml."""
    import yaml

    from bench.prompts import load_prompts

    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    cfg = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    prompts_cfg = cfg.get("prompts") or {}
    if prompts_cfg.get("suite") != "geneval":
        return {}
    try:
        items = load_prompts(prompts_cfg)
    except Exception as exc:  # the file moved: fall back to judge-written questions, and say so
        log.warning("judge: GenEval metadata not readable (%s); the judge writes the questions instead", exc)
        return {}
    return {p.id: p.metadata for p in items if p.metadata and p.metadata.get("include")}


async def _score(
    cfg: JudgeConfig,
    session: _Session,
    ok: pd.DataFrame,
    items: dict[str, Path],
    metadata: Mapping[str, Mapping[str, Any]],
) -> tuple[
    dict[str, list[Question]],
    dict[tuple[str, str], _Outcome],
    dict[tuple[str, str], _Outcome],
    dict[str, _Outcome],
]:
    fp = session.fp
    prompts = dict(zip(ok["prompt_id"].astype(str), ok["prompt"].astype(str), strict=False))
    # 1. Questions per prompt: GenEval metadata, else written by the judge (cached per prompt).
    questions: dict[str, list[Question]] = {}
    written: dict[str, _Outcome] = {}
    need_written: dict[str, str] = {}
    if "adherence" in cfg.modes:
        for pid, prompt in prompts.items():
            if pid in metadata:
                questions[pid] = geneval_questions(metadata[pid])
            else:
                need_written[pid] = answer_key("questions", prompt, "", fp)
    cached = session.lookup(dict.fromkeys(need_written.values(), "questions"))
    todo_q = {pid: key for pid, key in need_written.items() if key not in cached}
    results = await asyncio.gather(
        *(
            session.ask(
                "questions", key, QUESTIONS.format(prompt=prompts[pid], max_questions=cfg.max_questions), None
            )
            for pid, key in todo_q.items()
        )
    )
    fresh_q = dict(zip(todo_q, results, strict=True))
    for pid, key in need_written.items():
        outcome = cached[key] if key in cached else fresh_q[pid]
        written[pid] = outcome
        raw = outcome.content.get("questions") if outcome.status == "ok" else None
        questions[pid] = judge_written(list(raw) if isinstance(raw, list) else [], cfg.max_questions)
    # 2. Answers per (image, question) and rubric per image.
    images = ok.drop_duplicates("image_sha256")
    answer_keys: dict[tuple[str, str], str] = {}
    rubric_keys: dict[tuple[str, str], str] = {}
    for row in images.itertuples(index=False):
        sha, pid = str(row.image_sha256), str(row.prompt_id)
        for q in questions.get(pid, []):
            answer_keys[(sha, q.text)] = answer_key("answer", sha, q.text, fp)
        if "rubric" in cfg.modes:
            rubric_keys[(sha, pid)] = answer_key("rubric", sha, prompts[pid], fp)
    cached = session.lookup(
        {**dict.fromkeys(answer_keys.values(), "answer"), **dict.fromkeys(rubric_keys.values(), "rubric")}
    )
    jobs: list[tuple[str, tuple[str, str], Any]] = []
    for ident, key in answer_keys.items():
        if key not in cached:
            jobs.append(
                (
                    "answer",
                    ident,
                    session.ask("answer", key, ANSWER.format(question=ident[1]), (ident[0], items[ident[0]])),
                )
            )
    for ident, key in rubric_keys.items():
        if key not in cached:
            jobs.append(
                (
                    "rubric",
                    ident,
                    session.ask(
                        "rubric", key, RUBRIC.format(prompt=prompts[ident[1]]), (ident[0], items[ident[0]])
                    ),
                )
            )
    fresh = dict(
        zip(
            [(kind, ident) for kind, ident, _ in jobs],
            await asyncio.gather(*(j for _, _, j in jobs)),
            strict=True,
        )
    )
    answers = {
        ident: fresh[("answer", ident)] if ("answer", ident) in fresh else cached[key]
        for ident, key in answer_keys.items()
    }
    rubrics = {
        ident: fresh[("rubric", ident)] if ("rubric", ident) in fresh else cached[key]
        for ident, key in rubric_keys.items()
    }
    return questions, answers, rubrics, written


def judge_images(
    ok: pd.DataFrame,
    run_dir: Path,
    cfg: JudgeConfig,
    cache_dir: Path,
    max_cost_usd: float | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, JudgeReport]:
    """(per-image columns aligned with `ok`, judge_answers rows, report). `ok`: ok records with images.

    `max_cost_usd` is the run folder's cap: what the folder already spent (generation and every
    earlier judge pass, from its journals) counts against it; metrics.judge.max_cost_usd caps
    this pass on top. Every billed call is journaled in the run folder (bench/judge/journal.py).
    """
    from bench.spend import folder_spend
    from bench.store import RunStore

    cache_fp = fingerprint_id("judge", judge_details(cfg))  # the cache's key: endpoint, model, templates
    report = JudgeReport(fingerprint=cache_fp, images=int(ok["image_sha256"].nunique()))
    folder_spent = folder_spend(RunStore(run_dir)).spent_usd if max_cost_usd is not None else 0.0
    budget = JudgeBudget(max_cost_usd, folder_spent, cfg.max_cost_usd)
    journal = JudgeJournal(run_dir)
    cache = JudgeCache(cache_dir)
    session = _Session(cfg, cache, cache_fp, report)
    items = {str(s): run_dir / str(p) for s, p in zip(ok["image_sha256"], ok["image_path"], strict=True)}
    metadata = _prompt_metadata(run_dir) if "adherence" in cfg.modes else {}

    async def go() -> Any:
        async with httpx.AsyncClient(trust_env=False) as http:
            session.client = ChatJudgeClient(cfg, budget, http, on_billed=journal.append)
            try:
                return await _score(cfg, session, ok, items, metadata)
            finally:
                report.requests = session.client.stats.requests
                report.cost_now_usd = session.client.stats.cost_usd
                report.failures = dict(session.client.stats.failures)

    try:
        questions, answers, rubrics, written = asyncio.run(go())
    finally:
        cache.close()
    report.stopped = session._stop
    # Answers stamped by the built-in chat emulator (its header, kept in the cache) make an
    # "emulated judge" signal: its own fingerprint, labelled so in the report and plots.
    everything = [*written.values(), *answers.values(), *rubrics.values()]
    report.emulated = any(o.answered_by.endswith(EMULATED_SUFFIX) for o in everything)
    report.details = judge_details(cfg, "emulator" if report.emulated else "remote")
    fingerprint = report.fingerprint = judge_fingerprint(report.details)
    rows: list[dict[str, Any]] = []

    def row(outcome: _Outcome, **extra: Any) -> dict[str, Any]:
        report.cached += int(outcome.cached)
        return {
            **extra,
            "status": outcome.status,
            "answered_by": outcome.answered_by,
            "cost_usd": outcome.cost_usd,
            "cost_source": outcome.cost_source,
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "cached": outcome.cached,
            "error": outcome.error or None,
            "judge_fingerprint": fingerprint,
        }

    for pid, outcome in written.items():
        rows.append(
            row(
                outcome,
                mode="questions",
                prompt_id=pid,
                image_sha256=None,
                question=None,
                kind=None,
                answer=None,
                score=np.nan,
                reason=None,
            )
        )
    adherence: dict[str, float] = {}
    rubric: dict[str, float] = {}
    cost: dict[str, float] = {}
    for img in ok.drop_duplicates("image_sha256").itertuples(index=False):
        sha, pid = str(img.image_sha256), str(img.prompt_id)
        spent: list[float] = []
        qs = questions.get(pid, [])
        yes: list[bool | None] = []
        for q in qs:
            outcome = answers[(sha, q.text)]
            value = yes_no(outcome.content) if outcome.status == "ok" else None
            yes.append(value)
            spent.append(outcome.cost_usd)
            rows.append(
                row(
                    outcome,
                    mode="adherence",
                    prompt_id=pid,
                    image_sha256=sha,
                    question=q.text,
                    kind=q.kind,
                    answer=None if value is None else ("yes" if value else "no"),
                    score=np.nan,
                    reason=None,
                )
            )
        if qs and all(v is not None for v in yes):
            adherence[sha] = float(np.mean([bool(v) for v in yes]))
        if (sha, pid) in rubrics:
            outcome = rubrics[(sha, pid)]
            score = rubric_score(outcome.content) if outcome.status == "ok" else math.nan
            spent.append(outcome.cost_usd)
            rubric[sha] = score
            rows.append(
                row(
                    outcome,
                    mode="rubric",
                    prompt_id=pid,
                    image_sha256=sha,
                    question=None,
                    kind=None,
                    answer=None,
                    score=score,
                    reason=str(outcome.content.get("reason", "")) or None,
                )
            )
        # Unknown is NaN: one unpriced answer makes the image's judge cost unknown.
        cost[sha] = float(np.sum(spent)) if spent else math.nan
    shas = ok["image_sha256"].astype(str)
    # An image shared by several records (two groups that made the same bytes) was judged once:
    # its cost is divided among them, so any sum over records or groups counts it once.
    sharing = shas.map(shas.value_counts()).astype(float)
    columns = pd.DataFrame(
        {
            "judge_adherence": shas.map(adherence).astype(float),
            "judge_rubric": shas.map(rubric).astype(float),
            "judge_fingerprint": fingerprint,
            "judge_cost_usd": shas.map(cost).astype(float) / sharing,
        },
        index=ok.index,
    )
    report.adherence_scored = len([v for v in adherence.values() if math.isfinite(v)])
    report.rubric_scored = len([v for v in rubric.values() if math.isfinite(v)])
    return columns, pd.DataFrame(rows), report


def write_answers(run_dir: Path, answers: pd.DataFrame, ok: pd.DataFrame) -> Path:
    """judge_answers.parquet, with each image's target and request key for reading beside records."""
    import os

    ident = ok.drop_duplicates("image_sha256")[["image_sha256", "target", "prompt"]]
    out = answers.merge(ident, on="image_sha256", how="left") if not answers.empty else answers
    path = run_dir / ANSWERS_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    out.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path

"""The judge's share of `bench estimate`: how many calls scoring a sweep's images makes, at most, and
what they cost at most, priced the way the client reserves them (bench/judge/client.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.judge.client import MAX_TOKENS, image_tokens, text_tokens
from bench.judge.config import JudgeConfig
from bench.judge.questions import geneval_questions
from bench.judge.templates import ANSWER, QUESTIONS, RUBRIC

LONGEST_QUESTION = "Are there exactly three red apples to the left of the blue table in the image?"


@dataclass(frozen=True)
class JudgeEstimate:
    target: str
    calls: int  # at most: every question asked, none answered from the judge cache
    max_cost_usd: float  # NaN when the judge has no price entry

    def line(self, generation_usd: float) -> str:
        if math.isnan(self.max_cost_usd):
            cost = f"cost unknown (no metrics.judge.prices entry for {self.target})"
        else:
            whole = generation_usd + self.max_cost_usd  # NaN when some generation cost is unknown
            share = f", {self.max_cost_usd / whole:.0%} of generation + judge" if whole > 0 else ""
            cost = f"at most ${self.max_cost_usd:.4f}{share}"
        return (
            f"judge {self.target}: up to {self.calls} calls, {cost} "
            "(every question asked, output at max_tokens, none from the judge cache; "
            "counted against max_cost_usd with generation)"
        )


def estimate_judge(
    cfg: JudgeConfig, images: Iterable[tuple[str, Mapping[str, Any] | None, tuple[int, int] | None]]
) -> JudgeEstimate:
    """`images`: (prompt text, GenEval metadata or None, generated size or None) per image to judge."""
    price = cfg.price
    calls = 0
    cost = 0.0
    side = cfg.max_image_side

    def add(task: str, text: str, size: tuple[int, int] | None) -> None:
        nonlocal calls, cost
        calls += 1
        if price is not None:
            image = (
                0 if task == "questions" else image_tokens(_fit(size or (side, side), side), cfg.image_detail)
            )
            cost += price.cost_usd(text_tokens(text) + image, MAX_TOKENS[task])

    written: set[str] = set()
    for prompt, metadata, size in images:
        if "adherence" in cfg.modes:
            if metadata and metadata.get("include"):
                n_questions = len(geneval_questions(metadata))
            else:
                n_questions = cfg.max_questions
                if prompt not in written:  # the judge writes a prompt's questions once
                    written.add(prompt)
                    add("questions", QUESTIONS.format(prompt=prompt, max_questions=cfg.max_questions), None)
            for _ in range(n_questions):
                add("answer", ANSWER.format(question=LONGEST_QUESTION), size)
        if "rubric" in cfg.modes:
            add("rubric", RUBRIC.format(prompt=prompt), size)
    return JudgeEstimate(cfg.target or "", calls, cost if price is not None else math.nan)


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    w, h = size
    scale = min(1.0, side / max(w, h))
    return max(1, round(w * scale)), max(1, round(h * scale))

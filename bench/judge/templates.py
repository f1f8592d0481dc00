"""The judge's prompt templates. Their hash is part of every judge fingerprint and cache key.

Changing a word here changes what the judge is asked, so scores made with the old
wording are never averaged or compared with new ones.
"""

from __future__ import annotations

import hashlib
import json

TEMPLATE_VERSION = 1

QUESTIONS = (
    "You check whether an image follows a text-to-image prompt. Write the atomic yes/no questions "
    "(Davidsonian Scene Graph style: one fact per question) that an image following the prompt must "
    "answer with yes: each object, its count, its colour, its position relative to the others. "
    "Ask about objects before their attributes. At most {max_questions} questions.\n"
    "Prompt: {prompt}\n"
    'Answer only with JSON: {{"questions": ["...?", "...?"]}}'
)

ANSWER = (
    "Look at the image and answer this question about it with yes or no.\n"
    "Question: {question}\n"
    'Answer only with JSON: {{"answer": "yes"}} or {{"answer": "no"}}'
)

RUBRIC = (
    "Rate how well the image follows this text-to-image prompt on a scale of 1 (not at all) to 10 "
    "(every object, count, colour and position right), and give a one-line reason.\n"
    "Prompt: {prompt}\n"
    'Answer only with JSON: {{"score": <integer 1-10>, "reason": "<one line>"}}'
)

TEMPLATES = {"questions": QUESTIONS, "answer": ANSWER, "rubric": RUBRIC}


def template_hash(extra: dict[str, object] | None = None) -> str:
    """sha256 over the templates and the request settings that change answers (temperature, image size)."""
    blob = json.dumps(
        {"version": TEMPLATE_VERSION, "templates": TEMPLATES, **(extra or {})}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]

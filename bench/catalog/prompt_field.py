"""Which input field carries the text prompt, when a schema does not call it `prompt`.

Replicate's text-to-image collection names it `text`, `texts`, `sentence`, `prompts`,
`text_prompt`, ... (12 of its 38 models, replicate-python's recorded collections answer). A
field is a candidate when it is a string that is not an image, mask, URL or negative prompt,
and its name or description says prompt, text, caption or sentence; a required one beats an
optional one, a name beats a description. One best candidate is chosen and said; a tie is an
error naming the candidates, to be settled with `prompt_field` (catalog.prompt_fields).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

WORDS = re.compile(r"prompt|text|caption|sentence", re.I)
NOT_TEXT = re.compile(r"negative|image|mask|init|url|file|settings|seed|style|format|size", re.I)
EXACT = ("prompt", "text", "caption", "sentence", "prompts", "texts", "text_prompt")


class FieldLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def description(self) -> str: ...


class PromptFieldError(ValueError):
    """No text field, or several equally likely; the message says which and how to choose."""


def choose_prompt_field(params: Sequence[FieldLike], named: str | None = None) -> tuple[str, str]:
    """(field, how it was chosen). `named` (the user's prompt_field) wins when it is a string field."""
    strings = {p.name: p for p in params if p.type == "string"}
    if named:
        if named not in strings:
            listed = ", ".join(strings) or "none"
            raise PromptFieldError(
                f"prompt_field {named!r} is not a string field of this model (its strings: {listed})"
            )
        return named, f"named by prompt_field: {named}"
    if "prompt" in strings:
        return "prompt", "prompt"

    def score(p: FieldLike) -> int:
        if NOT_TEXT.search(p.name):
            return 0
        points = 6 if p.name.lower() in EXACT else 4 if WORDS.search(p.name) else 0
        points += 2 if WORDS.search(p.description or "") else 0
        return points + (1 if p.required and points else 0)

    scores = {name: score(p) for name, p in strings.items()}  # in the schema's order
    top = max(scores.values(), default=0)
    if top == 0:
        raise PromptFieldError(
            "no text prompt field (no string field named or described as prompt/text/caption)"
        )
    best = [name for name, points in scores.items() if points == top]
    if len(best) > 1:
        raise PromptFieldError(
            f"several fields may carry the prompt ({', '.join(best)}); name one with "
            "prompt_field: catalog.prompt_fields=['PROVIDER:MODEL=FIELD']"
        )
    return best[0], f"chosen from the schema: {best[0]}"

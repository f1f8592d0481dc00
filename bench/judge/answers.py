"""Reading the judge's answers: the tolerant forms that can be read one way only, and nothing else.

The templates (bench/judge/templates.py) ask for JSON: {"answer": "yes"|"no"},
{"score": <integer 1-10>, "reason": "..."} and {"questions": [...]}. Models drift from
that in harmless ways ("Yes.", " NO ", "'yes'", true, "7/10", "7 / 10", "7 out of 10",
a bare "yes" instead of JSON) and in ways nobody can read ("maybe", "yes and no",
"7/5", 11). The first are normalised here; the second raise UnreadableAnswerError,
which the client retries within its attempt budget and the score never caches: a
re-run asks again instead of replaying an answer that scored nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from bench.errors import MalformedResponseError

_QUOTES = "\"'`“”‘’"
_TRAILING = ".!,;:"
_YES = {"yes": True, "true": True, "no": False, "false": False}
_SCORE = re.compile(r"^(\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*10)?$")
EXCERPT_CHARS = 120


class UnreadableAnswerError(MalformedResponseError):
    """The judge answered (and was billed) in a form that cannot be read one way only."""

    error_type = "unreadable_answer"
    retryable = True


def _clean(text: str) -> str:
    """Lower case, without surrounding whitespace, quotes or trailing punctuation."""
    value = text.strip()
    while value and (value[0] in _QUOTES or value[-1] in _QUOTES or value[-1] in _TRAILING):
        if value[0] in _QUOTES:
            value = value[1:]
        if value and value[-1] in _QUOTES + _TRAILING:
            value = value[:-1]
        value = value.strip()
    return value.lower()


def _content(raw: str | None) -> Any:
    """The message content as JSON when it is JSON, else as the plain text it is."""
    text = (raw or "").strip()
    try:
        return json.loads(text)
    except ValueError:
        return text


def _field(content: Any, name: str) -> Any:
    """`content[name]` of a JSON object; a bare value (not an object) is the field itself."""
    if isinstance(content, dict):
        if name not in content:
            raise _unreadable(f"no {name!r} field", content)
        return content[name]
    return content


def _unreadable(why: str, content: Any) -> UnreadableAnswerError:
    shown = json.dumps(content, default=str) if not isinstance(content, str) else repr(content)
    return UnreadableAnswerError(f"judge answer unreadable ({why}): {shown[:EXCERPT_CHARS]}")


def read_yes_no(raw: str | None) -> dict[str, Any]:
    """{"answer": "yes"|"no"} from "yes", "Yes.", ' "NO" ', true, {"answer": "Yes."}, ..."""
    content = _content(raw)
    value = _field(content, "answer")
    if isinstance(value, bool):
        return {"answer": "yes" if value else "no"}
    if isinstance(value, str) and _clean(value) in _YES:
        return {"answer": "yes" if _YES[_clean(value)] else "no"}
    raise _unreadable("expected yes or no", content)


def read_score(raw: str | None) -> dict[str, Any]:
    """{"score": 1-10, "reason": ...} from 7, "7", "7.", "7/10", "7 / 10", "7 out of 10", ..."""
    content = _content(raw)
    value = _field(content, "score")
    number = math.nan
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and (match := _SCORE.match(_clean(value))):
        number = float(match.group(1))
    if not (1.0 <= number <= 10.0):
        raise _unreadable("expected a score from 1 to 10", content)
    reason = content.get("reason", "") if isinstance(content, dict) else ""
    return {"score": number, "reason": str(reason or "")}


def read_questions(raw: str | None) -> dict[str, Any]:
    """{"questions": [...]}: a list of question strings (possibly empty: nothing to ask)."""
    content = _content(raw)
    value = _field(content, "questions") if isinstance(content, dict) else None
    if not isinstance(value, list) or not all(isinstance(q, str) and q.strip() for q in value):
        raise _unreadable("expected a list of questions", content)
    return {"questions": [q.strip() for q in value]}


READERS: dict[str, Callable[[str | None], dict[str, Any]]] = {
    "questions": read_questions,
    "answer": read_yes_no,
    "rubric": read_score,
}

"""Yes/no questions for question-based adherence (TIFA / DSG / GenEval style).

GenEval's metadata names every object, its count, colour and position, so its questions
are written here without asking anyone. Free prompts get theirs from the judge itself
(the QUESTIONS template), cached per prompt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NUMBER_WORDS = {
    2: "two",
    3: "three",
    4: "four",
    5: "five",
    6: "six",
    7: "seven",
    8: "eight",
    9: "nine",
    10: "ten",
}
KINDS = ("object", "count", "color", "position", "free")


@dataclass(frozen=True)
class Question:
    text: str
    kind: str  # object | count | color | position | free (written by the judge)


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def plural(noun: str) -> str:
    if noun.endswith(("s", "sh", "ch", "x")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _subject(obj: Mapping[str, Any]) -> str:
    cls, n = str(obj["class"]), int(obj.get("count", 1))
    return f"the {cls}" if n == 1 else f"the {plural(cls)}"


def geneval_questions(meta: Mapping[str, Any]) -> list[Question]:
    """Questions from one GenEval metadata row: `include` lists {class, count, color?, position?}."""
    includes = [o for o in (meta.get("include") or []) if isinstance(o, Mapping) and o.get("class")]
    out: list[Question] = []
    for obj in includes:
        cls, n = str(obj["class"]), int(obj.get("count", 1))
        if n == 1:
            out.append(Question(f"Is there {article(cls)} {cls} in the image?", "object"))
        else:
            word = NUMBER_WORDS.get(n, str(n))
            out.append(Question(f"Are there exactly {word} {plural(cls)} in the image?", "count"))
        if obj.get("color"):
            verb = "Is" if n == 1 else "Are"
            out.append(Question(f"{verb} {_subject(obj)} {obj['color']}?", "color"))
    for obj in includes:
        pos = obj.get("position")
        if isinstance(pos, list | tuple) and len(pos) == 2 and 0 <= int(pos[1]) < len(includes):
            other = includes[int(pos[1])]
            verb = "Is" if int(obj.get("count", 1)) == 1 else "Are"
            out.append(Question(f"{verb} {_subject(obj)} {pos[0]} {_subject(other)}?", "position"))
    return out


def judge_written(texts: list[Any], max_questions: int) -> list[Question]:
    """The judge's own questions, cleaned: strings ending in '?', deduplicated, at most max_questions."""
    seen: dict[str, None] = {}
    for t in texts:
        if isinstance(t, str) and t.strip().endswith("?"):
            seen.setdefault(" ".join(t.split()), None)
    return [Question(t, "free") for t in list(seen)[:max_questions]]

"""Prompt suites: the project's own, PartiPrompts (TSV) and GenEval (JSONL), with sampling.

Public datasets are loaded from a path the user gives; none is copied into the project.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.errors import ConfigError

PROJECT_SUITE = Path(__file__).resolve().parent.parent / "prompts" / "project.yaml"
SUITES = ("project", "parti", "geneval", "yaml")


@dataclass(frozen=True)
class PromptItem:
    id: str
    text: str
    suite: str
    category: str = ""
    metadata: Mapping[str, Any] | None = None


def _stable_id(prefix: str, index: int, text: str) -> str:
    # Index alone shifts when a dataset is edited; the text hash keeps ids honest.
    return f"{prefix}{index:05d}-{hashlib.sha256(text.encode()).hexdigest()[:6]}"


def read_utf8(path: Path) -> str:
    """The file's text; a file that is not UTF-8 (latin-1, binary) is a config error naming the byte."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            "prompts.path",
            str(path),
            f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8",
        ) from None


def load_yaml_suite(path: Path) -> list[PromptItem]:
    try:
        data = yaml.safe_load(read_utf8(path))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise ConfigError(
            "prompts.path", str(path), f"not valid YAML{where} ({problem}); fix the syntax"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list):
        raise ConfigError("prompts.path", str(path), "a YAML suite needs a top-level `prompts:` list")
    suite = str(data.get("suite", path.stem))
    items = []
    for i, row in enumerate(data["prompts"]):
        if not isinstance(row, dict) or "text" not in row:
            raise ConfigError(
                f"prompts.path[{i}]", row, "each prompt needs at least `text` (and ideally `id`)"
            )
        items.append(
            PromptItem(
                id=str(row.get("id", _stable_id("y", i, row["text"]))),
                text=str(row["text"]),
                suite=suite,
                category=str(row.get("category", "")),
            )
        )
    return items


def load_parti(path: Path) -> list[PromptItem]:
    """PartiPrompts TSV: columns Prompt, Category, Challenge, Note.

    Read without CSV quoting: the file is plain tab-separated, and prompts such as
    `"G I G G L E" painted in thick colorful lettering...` begin with a literal quote
    that a CSV reader would strip (changing the prompt and its id).
    """
    with io.StringIO(read_utf8(path), newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or "Prompt" not in reader.fieldnames:
            raise ConfigError(
                "prompts.path", str(path), "PartiPrompts TSV needs a header with a `Prompt` column"
            )
        return [
            PromptItem(
                id=_stable_id("parti", i, row["Prompt"]),
                text=row["Prompt"],
                suite="parti",
                category=row.get("Category") or "",
                metadata={"challenge": row.get("Challenge") or "", "note": row.get("Note") or ""},
            )
            for i, row in enumerate(reader)
            if row.get("Prompt")
        ]


def load_geneval(path: Path) -> list[PromptItem]:
    """GenEval evaluation metadata JSONL: one object per line with `tag` and `prompt`."""
    items = []
    for i, line in enumerate(read_utf8(path).splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                "prompts.path", str(path), f"line {i + 1} is not JSON ({exc.msg}); one JSON object per line"
            ) from None
        if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
            raise ConfigError(
                "prompts.path",
                str(path),
                f'line {i + 1} has no "prompt" string; GenEval metadata lines look like '
                '{"tag": "single_object", "prompt": "a photo of a cat"}',
            )
        items.append(
            PromptItem(
                id=_stable_id("geneval", i, row["prompt"]),
                text=row["prompt"],
                suite="geneval",
                category=str(row.get("tag", "")),
                metadata={k: v for k, v in row.items() if k not in ("prompt", "tag")},
            )
        )
    return items


def sample(
    items: Sequence[PromptItem],
    *,
    n: int | None = None,
    per_category: int | None = None,
    categories: Iterable[str] | None = None,
    seed: int = 0,
) -> list[PromptItem]:
    """Deterministic sampling; the result keeps the dataset's order so runs read naturally."""
    chosen = list(items)
    if categories is not None:
        wanted = set(categories)
        chosen = [p for p in chosen if p.category in wanted]
    rng = random.Random(seed)
    if per_category is not None:
        by_cat: dict[str, list[int]] = defaultdict(list)
        for idx, p in enumerate(chosen):
            by_cat[p.category].append(idx)
        keep = sorted(i for idxs in by_cat.values() for i in rng.sample(idxs, min(per_category, len(idxs))))
        chosen = [chosen[i] for i in keep]
    if n is not None and n < len(chosen):
        keep = sorted(rng.sample(range(len(chosen)), n))
        chosen = [chosen[i] for i in keep]
    return chosen


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError("prompts.seed", value, "use a whole number, e.g. prompts.seed=0")
    return value


def _categories(value: Any) -> list[str] | None:
    """None (all), one category name, or a list of names."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and value and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(
        "prompts.categories", value, "give a list of category names, e.g. prompts.categories=[Animals,Food]"
    )


def load_prompts(cfg: Mapping[str, Any]) -> list[PromptItem]:
    """Load and sample the suite described by the `prompts` config block."""
    suite = cfg.get("suite", "project")
    path_value = cfg.get("path")
    if suite not in SUITES:
        raise ConfigError("prompts.suite", suite, f"use one of {', '.join(SUITES)}")
    if suite == "project":
        path = Path(path_value) if path_value else PROJECT_SUITE
    elif not path_value:
        raise ConfigError(
            "prompts.path", None, f"suite {suite} is loaded from a file: set prompts.path=/path/to/it"
        )
    else:
        path = Path(str(path_value)).expanduser()
    if not path.is_file():
        raise ConfigError("prompts.path", str(path), "no such file; give the path to the prompt file")
    loader = {
        "project": load_yaml_suite,
        "yaml": load_yaml_suite,
        "parti": load_parti,
        "geneval": load_geneval,
    }
    items = loader[suite](path)
    for key in ("n", "per_category"):
        value = cfg.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"prompts.{key}", value, "use a positive whole number, or null for all")
    items = sample(
        items,
        n=cfg.get("n"),
        per_category=cfg.get("per_category"),
        categories=_categories(cfg.get("categories")),
        seed=_seed(cfg.get("seed", 0)),
    )
    if not items:
        raise ConfigError("prompts", dict(cfg), "the suite and filters select no prompt; loosen the filters")
    ids = [p.id for p in items]
    if len(set(ids)) != len(ids):
        raise ConfigError("prompts.path", str(path), "prompt ids must be unique")
    return items

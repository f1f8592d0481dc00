"""Turn the Eachlabs seed (a markdown reference of text-to-image models) into bench/catalog/data/eachlabs.json.

Usage: python tools/generate_eachlabs.py SEED_PATH [-o OUT] [--check]

The seed has one `## Title` section per model with a `**Slug:** \\`slug\\`` line and a
table `Parameter | Type | Required | Default | Options / Constraints | Description`.
Every section is checked: a section without a slug or a table, an unknown type, a
default that does not parse as its declared type, or a duplicate slug stops the
generator with the line number, so a changed seed cannot silently lose a model.

How the seed's cells are read:
- defaults are quoted strings (`"1"`, `"False"`): they become the declared type;
- options are comma lists ("a,b,c" or "a, b, c"); empty entries are dropped; a
  list the seed cut short with "..." keeps the entries shown, drops the cut one,
  and is marked `options_complete: false` (shown in errors, not enforced);
- numeric ranges in the constraints column ("min 1, max 50", "1-50", ">= 0")
  become min/max; the seed has none today, but some descriptions state hard
  limits ("(1-5)", "Values from 1 to 4", "from 0 to 100"), which are read too.
  "Recommended range is 28-50" is advice, not a limit, and is not read;
- steps and image-count parameters get min 1 when the seed gives none: a count
  or a number of steps below one is meaningless on every model.

The normalized parameters and the size are assigned by bench.catalog.model_entries
(model_entry), which fetched schemas go through as well.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args

from bench.catalog.model_entries import (  # noqa: F401  (re-exported: the names a seed is read with)
    COUNT_NAMES,
    GUIDANCE_NAMES,
    NEGATIVE_NAMES,
    SEED_NAMES,
    STEPS_NAMES,
    Model,
    Param,
    SeedFormatError,
    model_entry,
)
from bench.catalog.spec import ParamType

GENERATOR_VERSION = 1
DEFAULT_MODEL_VERSION = "0.0.1"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "bench" / "catalog" / "data" / "eachlabs.json"

TABLE_HEADER = ("Parameter", "Type", "Required", "Default", "Options / Constraints", "Description")
EMPTY_CELLS = ("", "—", "-", "–")
PARAM_TYPES: frozenset[str] = frozenset(get_args(ParamType))

_NUM = r"-?\d+(?:\.\d+)?"
_CONSTRAINT_RANGES = (
    re.compile(rf"^min(?:imum)?\s*:?\s*(?P<min>{_NUM})\s*,\s*max(?:imum)?\s*:?\s*(?P<max>{_NUM})$", re.I),
    re.compile(rf"^(?P<min>{_NUM})\s*(?:-|–|\.\.|to)\s*(?P<max>{_NUM})$", re.I),
    re.compile(rf"^(?:min(?:imum)?\s*:?|>=)\s*(?P<min>{_NUM})$", re.I),
    re.compile(rf"^(?:max(?:imum)?\s*:?|<=)\s*(?P<max>{_NUM})$", re.I),
)
# Hard limits stated in prose. Deliberately narrow: "(1-5)", "Values from 1 to 4",
# "from 0 to 100". Sentences that recommend a range are skipped (see the module doc).
_DESCRIPTION_RANGES = (
    re.compile(rf"\((?P<min>{_NUM})\s*-\s*(?P<max>{_NUM})\)"),
    re.compile(rf"\bfrom (?P<min>{_NUM}) to (?P<max>{_NUM})\b", re.I),
)
_SLUG_LINE = re.compile(r"^\*\*Slug:\*\*\s*`(?P<slug>[^`]+)`\s*$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- reading the seed -------------------------------------------------------------------


def parse_seed(text: str) -> tuple[str, list[Model]]:
    """The model version the seed states for all models, and its models in seed order."""
    lines = text.splitlines()
    version_match = re.search(r"version `([^`]+)`", text)
    version = version_match.group(1) if version_match else DEFAULT_MODEL_VERSION
    models: list[Model] = []
    current: Model | None = None
    in_table = False
    header_seen = False
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line.startswith("## "):
            if current is not None:
                _finish_section(current, header_seen)
            # Titles in the seed have stray double spaces ("Gemini 3  | Pro").
            current = Model(slug="", title=" ".join(line[3:].split()), line_no=line_no)
            models.append(current)
            in_table = header_seen = False
            continue
        if current is None:
            continue  # the document's own heading and introduction
        slug_match = _SLUG_LINE.match(line)
        if slug_match:
            if current.slug:
                raise SeedFormatError(line_no, f"second slug in section {current.title!r}")
            current.slug = slug_match.group("slug").strip()
            continue
        if line.startswith("|"):
            cells = _cells(line)
            if not in_table:
                if tuple(cells[: len(TABLE_HEADER)]) != TABLE_HEADER:
                    raise SeedFormatError(line_no, f"unexpected table header {cells!r}")
                in_table = header_seen = True
                continue
            if all(set(c) <= set("-: ") for c in cells):
                continue  # the |---|---| separator row
            current.params.append(_parse_row(current, cells, line_no))
        else:
            in_table = False
    if current is not None:
        _finish_section(current, header_seen)
    if not models:
        raise SeedFormatError(1, "no '## ' model sections found")
    seen: dict[str, int] = {}
    for model in models:
        if model.slug in seen:
            raise SeedFormatError(
                model.line_no, f"slug {model.slug!r} already used at line {seen[model.slug]}"
            )
        seen[model.slug] = model.line_no
    return version, models


def _finish_section(model: Model, header_seen: bool) -> None:
    if not model.slug:
        raise SeedFormatError(model.line_no, f"section {model.title!r} has no **Slug:** line")
    if not header_seen or not model.params:
        raise SeedFormatError(model.line_no, f"section {model.slug!r} has no parameter table")
    names = [p.name for p in model.params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SeedFormatError(model.line_no, f"{model.slug}: parameters listed twice: {duplicates}")


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    cells = [c.strip() for c in inner.split("|")]
    if len(cells) > len(TABLE_HEADER):
        # A "|" inside the description: it is the last column, so rejoin it.
        cells = [*cells[: len(TABLE_HEADER) - 1], "|".join(cells[len(TABLE_HEADER) - 1 :]).strip()]
    return cells


def _parse_row(model: Model, cells: list[str], line_no: int) -> Param:
    if len(cells) != len(TABLE_HEADER):
        raise SeedFormatError(line_no, f"{model.slug or model.title}: expected 6 cells, got {len(cells)}")
    raw_name, raw_type, raw_required, raw_default, raw_constraints, raw_description = cells
    name = raw_name.strip("`").strip()
    type_ = raw_type.strip().lower()
    if type_ not in PARAM_TYPES:
        raise SeedFormatError(line_no, f"{model.slug}: parameter {name!r} has unknown type {raw_type!r}")
    if not _NAME.match(name):
        # The seed has `enable_safety_checker boolean`: the type leaked into the
        # name cell. Keep the first word when the rest is just the type again.
        first, _, rest = name.partition(" ")
        if _NAME.match(first) and rest.strip().lower() == type_:
            model.notes.append(f"parameter name {name!r} in the seed read as {first!r}")
            name = first
        else:
            raise SeedFormatError(line_no, f"{model.slug}: unreadable parameter name {raw_name!r}")
    required = raw_required.strip().lower()
    if required not in ("yes", "no"):
        raise SeedFormatError(line_no, f"{model.slug}: {name}: Required is {raw_required!r}, not Yes/No")
    try:
        default = _parse_default(raw_default, type_)
    except ValueError as exc:
        raise SeedFormatError(line_no, f"{model.slug}: {name}: default {raw_default!r}: {exc}") from None
    options, complete, minimum, maximum = _parse_constraints(model, name, type_, raw_constraints, line_no)
    description = "" if raw_description in EMPTY_CELLS else raw_description
    if minimum is None and maximum is None and type_ in ("integer", "number"):
        minimum, maximum = _description_range(model, name, description)
    return Param(name, type_, required == "yes", default, options, complete, minimum, maximum, description)


def _unquote(cell: str) -> str:
    text = cell.strip()
    if len(text) >= 2 and text[0] == text[-1] == "`":
        text = text[1:-1]
    # Only the outer pair: Sana's default prompt has quotes inside ("... says "Sana"").
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text


def _parse_default(cell: str, type_: str) -> Any:
    if cell.strip() in EMPTY_CELLS:
        return None
    return _convert(_unquote(cell), type_)


def _convert(text: str, type_: str) -> Any:
    """A seed string as the declared type; ValueError when it is not one."""
    if type_ == "boolean":
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{text!r} is not a boolean")
        return lowered == "true"
    if type_ == "integer":
        return int(text.strip())
    if type_ == "number":
        return float(text.strip())
    if type_ in ("array", "object"):
        value = json.loads(text)
        if not isinstance(value, list if type_ == "array" else dict):
            raise ValueError(f"{text!r} is not an {type_}")
        return value
    return text


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


def _parse_constraints(
    model: Model, name: str, type_: str, cell: str, line_no: int
) -> tuple[list[Any] | None, bool, float | None, float | None]:
    text = cell.strip()
    if text in EMPTY_CELLS:
        return None, True, None, None
    if type_ in ("integer", "number"):
        for pattern in _CONSTRAINT_RANGES:
            match = pattern.match(text)
            if match:
                found = match.groupdict()
                lo = _number(found["min"]) if found.get("min") is not None else None
                hi = _number(found["max"]) if found.get("max") is not None else None
                return None, True, lo, hi
    complete = True
    for ellipsis in ("...", "…"):
        if text.endswith(ellipsis):
            complete = False
            text = text[: -len(ellipsis)].rstrip()
    items = [item.strip() for item in text.split(",")]
    if not complete:
        if items[-1]:
            # The last entry was cut mid-word ("960*1", "digit"): it may not exist.
            model.notes.append(f"{name}: option list cut short in the seed; partial {items[-1]!r} dropped")
        else:
            model.notes.append(f"{name}: option list cut short in the seed")
        items = items[:-1]
    if "" in items:
        model.notes.append(f"{name}: empty entries in the seed's option list dropped")
    items = [item for item in items if item]
    if not items:
        raise SeedFormatError(line_no, f"{model.slug}: {name}: unreadable constraints {cell!r}")
    try:
        options = [_convert(item, type_) for item in items]
    except ValueError as exc:
        raise SeedFormatError(line_no, f"{model.slug}: {name}: option {exc}") from None
    return options, complete, None, None


def _description_range(model: Model, name: str, description: str) -> tuple[float | None, float | None]:
    for sentence in re.split(r"(?<=[.;])\s+", description):
        if "recommend" in sentence.lower():
            continue
        for pattern in _DESCRIPTION_RANGES:
            match = pattern.search(sentence)
            if match:
                lo, hi = _number(match.group("min")), _number(match.group("max"))
                if lo < hi:
                    model.notes.append(f"{name}: range {lo}..{hi} read from its description")
                    return lo, hi
    return None, None


def render(seed_text: str, source_name: str) -> str:
    """The catalog JSON for a seed: deterministic, so the shipped file can be checked against it."""
    version, models = parse_seed(seed_text)
    entries = [model_entry(m, version) for m in models]
    document = {
        "provider": "eachlabs",
        "source": source_name,
        "source_sha256": hashlib.sha256(seed_text.encode("utf-8")).hexdigest(),
        "generator": "tools/generate_eachlabs.py",
        "generator_version": GENERATOR_VERSION,
        "model_count": len(entries),
        "models": entries,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/generate_eachlabs.py", description=__doc__)
    parser.add_argument("seed", type=Path, help="the Eachlabs seed markdown file")
    parser.add_argument("-o", "--out", default=str(DEFAULT_OUT), help="output JSON path, or - for stdout")
    parser.add_argument("--check", action="store_true", help="exit 1 if OUT differs from what the seed gives")
    args = parser.parse_args(argv)
    try:
        text = render(args.seed.read_text(encoding="utf-8"), args.seed.name)
    except (OSError, SeedFormatError) as exc:
        print(f"generate_eachlabs: {exc}", file=sys.stderr)
        return 2
    if args.check:
        current = sys.stdin.read() if args.out == "-" else Path(args.out).read_text(encoding="utf-8")
        if current != text:
            print(f"generate_eachlabs: {args.out} is out of date; re-run without --check", file=sys.stderr)
            return 1
        return 0
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

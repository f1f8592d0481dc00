"""Render the config and CLI reference pages from the code (called by docs/hooks/reference.py).

The config reference reads the typed config classes (their fields, types, defaults and the
comments written beside each field) and the shipped config files; the CLI reference prints each
command's parser. Run it alone to see a page: `python tools/docs_reference.py config|cli`.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

from bench.cache import CacheSettings
from bench.cli.parsers import PARSERS
from bench.config import RunnerSettings, SweepAxes
from bench.gate.compare import GateConfig
from bench.judge.config import JudgeConfig
from bench.metrics.config import (
    ClipConfig,
    FidConfig,
    KidConfig,
    PreferenceConfig,
    ReferenceConfig,
    StatsConfig,
)
from bench.providers.base import ProviderSettings

# (config key, typed class, fields the user does not set under that key, what the block is for)
# and where the shipped config sets that block: (file under configs/, key path in the file).
TYPED_BLOCKS: list[tuple[str, type, frozenset[str], str]] = [
    (
        "sweep",
        SweepAxes,
        frozenset(),
        "the grid every target is swept over (a target's own `sweep` overrides it)",
    ),
    (
        "runner",
        RunnerSettings,
        frozenset(),
        "how requests are sent: retries, backoff, progress, failure rule",
    ),
    (
        "providers.<name>",
        ProviderSettings,
        frozenset({"name", "http_transport"}),
        "one block per provider; `adapter` names its protocol; optional keys are added with `+`",
    ),
    ("cache", CacheSettings, frozenset(), "the cross-run response cache"),
    ("metrics.clip", ClipConfig, frozenset(), "CLIP score per image"),
    ("metrics.fid", FidConfig, frozenset(), "FID per group (computed only with a reference)"),
    ("metrics.fid.reference", ReferenceConfig, frozenset(), "what FID/KID compare against"),
    ("metrics.kid", KidConfig, frozenset(), "KID per group"),
    ("metrics.stats", StatsConfig, frozenset(), "the metrics' bootstrap intervals"),
    ("metrics.pickscore", PreferenceConfig, frozenset(), "PickScore, a preference model"),
    ("metrics.hpsv2", PreferenceConfig, frozenset(), "HPSv2.1, a preference model"),
    ("metrics.judge", JudgeConfig, frozenset(), "the VLM judge"),
]
SHIPPED_IN: dict[str, tuple[str, str]] = {
    "sweep": ("sweep/default.yaml", ""),
    "runner": ("config.yaml", "runner"),
    "cache": ("config.yaml", "cache"),
    "metrics.clip": ("metrics/default.yaml", "clip"),
    "metrics.fid": ("metrics/default.yaml", "fid"),
    "metrics.kid": ("metrics/default.yaml", "kid"),
    "metrics.stats": ("metrics/default.yaml", "stats"),
    "metrics.pickscore": ("metrics/default.yaml", "pickscore"),
    "metrics.hpsv2": ("metrics/default.yaml", "hpsv2"),
    "metrics.judge": ("metrics/default.yaml", "judge"),
}
_YAML_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z_][\w-]*):(?P<rest>.*)$")


def yaml_keys(text: str) -> dict[str, tuple[str, str]]:
    """Dotted key path -> (the value as written, its comment) for a block-style YAML file.

    The comment is the one on the key's line, else the comment lines right above it.
    """
    found: dict[str, tuple[str, str]] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            above = []
            continue
        if stripped.startswith("#"):
            above.append(stripped.lstrip("#").strip())
            continue
        match = _YAML_KEY.match(line)
        if not match:
            above = []
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        value, _, comment = match["rest"].partition(" #")
        path = ".".join(k for _, k in stack)
        found[path] = (value.strip(), comment.strip() or " ".join(above))
        above = []
    return found


# Blocks read as plain mappings (or flattened into a class under other names): their shipped
# files are the reference, shown as they are.
PLAIN_BLOCKS: list[tuple[str, str]] = [
    ("prompts", "prompts/project.yaml"),
    ("providers", "providers/default.yaml"),
    ("report", "report/default.yaml"),
    ("gate", "gate/default.yaml"),
]


def _field_comments(cls: type) -> dict[str, str]:
    """The comment on a field's line, or the comment lines right above it, from the class source."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    tree = ast.parse(source)
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    comments: dict[str, str] = {}
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        found: list[str] = []
        row = node.lineno - 2  # the line above the field (0-based)
        while row >= 0 and lines[row].strip().startswith("#"):
            found.insert(0, lines[row].strip().lstrip("#").strip())
            row -= 1
        for line in lines[node.lineno - 1 : (node.end_lineno or node.lineno)]:
            code, hash_, comment = line.partition("  #")
            if hash_ and code.count('"') % 2 == 0:
                found.append(comment.strip())
        comments[node.target.id] = " ".join(found)
    return comments


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        factory = f.default_factory
        if dataclasses.is_dataclass(factory):
            return f"see `{factory.__name__}` below"
        if not isinstance(factory, type):
            return f"computed by `{getattr(factory, '__name__', repr(factory))}()`"
        value = factory()
    else:
        return "(required)"
    if isinstance(value, frozenset):
        value = sorted(value)
    return f"`{value!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def typed_block_markdown(
    key: str, cls: type, hidden: frozenset[str], purpose: str, configs: Path | None = None
) -> str:
    comments = _field_comments(cls)
    shipped: dict[str, tuple[str, str]] = {}
    where = ""
    if configs is not None and key in SHIPPED_IN:
        rel, prefix = SHIPPED_IN[key]
        where = f" Shipped values: `configs/{rel}`."
        for path, entry in yaml_keys((configs / rel).read_text(encoding="utf-8")).items():
            if not prefix:
                shipped[path] = entry
            elif path.startswith(prefix + "."):
                shipped[path.removeprefix(prefix + ".")] = entry
    rows = []
    for f in dataclasses.fields(cls):
        if f.name in hidden:
            continue
        value, yaml_comment = shipped.get(f.name, ("", ""))
        # The config file's comment is written for users; the class's comment is the fallback.
        note = yaml_comment or comments.get(f.name, "")
        shipped_cell = f"`{value}`" if value else ""
        rows.append(
            f"| `{f.name}` | `{_cell(str(f.type))}` | {_cell(_default(f))} | {_cell(shipped_cell)} | {_cell(note)} |"
        )
    module = cls.__module__
    return "\n".join(
        [
            f"### `{key}`",
            "",
            f"{purpose}. Typed by `{module}.{cls.__name__}` (its defaults apply to keys a config leaves out).{where}",
            "",
            "| key | type | default | shipped | note |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def groups_markdown(configs: Path) -> str:
    rows = []
    for group in sorted(p for p in configs.iterdir() if p.is_dir()):
        options = sorted(p.stem for p in group.glob("*.yaml"))
        rows.append(f"| `{group.name}/` | {', '.join(f'`{o}`' for o in options)} |")
    return "\n".join(["| group | options |", "|---|---|", *rows, ""])


def config_reference_markdown(configs: Path) -> str:
    parts = [
        "# Config reference",
        "",
        "Generated from the code at every docs build (`tools/docs_reference.py`): the typed config",
        "classes with their defaults and the comments beside their fields, and the shipped config files.",
        "Set any key on the command line as a Hydra override (`bench run runner.max_attempts=2`);",
        "pick a group's option with `GROUP=OPTION` (`bench run models=fal sweep=quick`).",
        "",
        "## Config groups",
        "",
        f"`configs/config.yaml` composes these groups (options found in `{configs.name}/` now):",
        "",
        groups_markdown(configs),
        "## The top-level config, as shipped",
        "",
        "```yaml",
        (configs / "config.yaml").read_text(encoding="utf-8").rstrip(),
        "```",
        "",
        "## Typed blocks",
        "",
    ]
    parts += [typed_block_markdown(*block, configs=configs) for block in TYPED_BLOCKS]
    parts += ["## Blocks read as mappings, as shipped", ""]
    for key, rel in PLAIN_BLOCKS:
        text = (configs / rel).read_text(encoding="utf-8").rstrip()
        parts += [f"### `{key}` (`configs/{rel}`)", "", "```yaml", text, "```", ""]
    gate_fields = ", ".join(f"`{f.name}`" for f in dataclasses.fields(GateConfig))
    parts += [f"The gate's file is parsed into `bench.gate.compare.GateConfig` ({gate_fields}).", ""]
    return "\n".join(parts)


def cli_reference_markdown() -> str:
    parts = [
        "# CLI reference",
        "",
        "Generated at every docs build from the parsers the commands parse with",
        "(`bench/cli/parsers.py`): what `bench COMMAND --help` prints.",
        "",
    ]
    for name, build in PARSERS.items():
        parser = build()
        # A fixed width, so the page does not depend on the terminal the docs were built in.
        parser.formatter_class = lambda prog: _wide_formatter(prog)
        parts += [f"## `bench {name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


WALKTHROUGH_HEADING = "## Choose a model in five commands"


def readme_walkthrough(readme: str) -> str:
    """The first ```bash block under the README's walkthrough heading (what the walkthrough test runs)."""
    _, found, rest = readme.partition(WALKTHROUGH_HEADING)
    if not found:
        raise ValueError(f"README.md has no {WALKTHROUGH_HEADING!r} section")
    _, fence, after = rest.partition("```bash\n")
    if not fence:
        raise ValueError("README.md's walkthrough section has no ```bash block")
    block, end, _ = after.partition("\n```")
    if not end:
        raise ValueError("README.md's walkthrough block is not closed")
    return block


def _wide_formatter(prog: str) -> Any:
    import argparse

    return argparse.HelpFormatter(prog, width=100, max_help_position=32)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "config"
    root = Path(__file__).resolve().parents[1]
    print(config_reference_markdown(root / "configs") if which == "config" else cli_reference_markdown())

"""The generated references cover the code they describe, and every command answers --help."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli.parsers import PARSERS
from tools.docs_reference import (
    TYPED_BLOCKS,
    cli_reference_markdown,
    config_reference_markdown,
    readme_walkthrough,
)

ROOT = Path(__file__).resolve().parents[1]
BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())"]


def _dispatched_commands() -> set[str]:
    """The command names `bench` dispatches, read from main()'s handler table."""
    source = inspect.getsource(importlib.import_module("bench.cli.main").main)
    table = source.split("handlers = {", 1)[1].split("}", 1)[0]
    return {line.split(":", 1)[0].strip().strip('"') for line in table.splitlines() if ":" in line}


def test_every_dispatched_command_has_a_parser_in_the_reference() -> None:
    commands = _dispatched_commands()
    assert commands and commands == set(PARSERS), commands ^ set(PARSERS)
    page = cli_reference_markdown()
    for name in commands:
        assert f"## `bench {name}`" in page
        assert f"usage: bench {name}" in page


def test_config_reference_lists_every_field_with_its_default() -> None:
    page = config_reference_markdown(ROOT / "configs")
    for key, cls, hidden, _ in TYPED_BLOCKS:
        section = page.split(f"### `{key}`", 1)[1].split("\n### ", 1)[0]
        for f in dataclasses.fields(cls):
            if f.name in hidden:
                continue
            assert f"| `{f.name}` |" in section, (key, f.name)
    # a default and a field comment, read from the source
    assert "| `max_attempts` | `int` | `4` |" in page
    assert "the *name* of the environment variable" in page
    for group in ("models/", "sweep/", "metrics/", "gate/"):
        assert f"| `{group}` |" in page


def test_readme_walkthrough_block_is_found() -> None:
    block = readme_walkthrough((ROOT / "README.md").read_text())
    assert "bench estimate" in block and "bench compare" in block
    with pytest.raises(ValueError, match="no '## Choose a model"):
        readme_walkthrough("# a README without it\n")


@pytest.mark.parametrize("command", ["estimate", "run"])
def test_hydra_commands_answer_help(command: str) -> None:
    # `bench estimate --help` used to be read as a Hydra override and fail.
    done = subprocess.run([*BENCH, command, "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if command == "estimate":
        assert done.stdout.startswith("usage: bench estimate")
        assert "sending nothing" in done.stdout

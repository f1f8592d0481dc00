"""Shared fixtures: in-process `bench` runs, composed configs, scripted HTTP servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_PROMPTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"


@pytest.fixture
def shared_prompts() -> Path:
    if not SHARED_PROMPTS.is_dir():
        pytest.skip(f"the shared prompt datasets are not beside the checkout ({SHARED_PROMPTS})")
    return SHARED_PROMPTS


@pytest.fixture
def bench_cfg() -> Iterator[Any]:
    """compose(overrides) -> the resolved config dict `bench run` would use."""
    from bench.cli.hydra_config import compose_config

    yield compose_config

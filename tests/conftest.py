"""Shared fixtures: in-process `bench` runs, composed configs, scripted HTTP servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SHARED_PROMPTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "prompts"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--http-transport",
        choices=("aiohttp", "httpx"),
        default=None,
        help="transport under the providers' httpx client for this test session "
        "(sets $T2I_BENCH_HTTP_TRANSPORT; default: aiohttp)",
    )


def pytest_configure(config: pytest.Config) -> None:
    import os

    chosen = config.getoption("--http-transport")
    if chosen:
        # An environment variable, so providers built by tests, composed configs and the
        # `bench` subprocesses some tests start all use the same transport.
        os.environ["T2I_BENCH_HTTP_TRANSPORT"] = chosen


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`make pytest` runs -n 2 --dist loadscope --no-loadscope-reorder), each
    module runs whole on one worker, so its module-scoped fixtures (a `bench run`, a SLURM
    cluster, a loaded model) are made once. Modules holding a test marked slow are handed out
    first, so no long module starts last while the other worker has nothing left to do."""
    if not hasattr(config, "workerinput"):
        return
    slow_modules = {item.nodeid.split("::", 1)[0] for item in items if item.get_closest_marker("slow")}
    items.sort(
        key=lambda item: item.nodeid.split("::", 1)[0] not in slow_modules
    )  # stable: same order within


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


@pytest.fixture(autouse=True, scope="session")
def _private_metrics_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the tests' embedding caches out of the user's ~/.cache (subprocesses inherit it too)."""
    import os

    previous = os.environ.get("T2I_BENCH_CACHE")
    os.environ["T2I_BENCH_CACHE"] = str(tmp_path_factory.mktemp("t2i-cache"))
    yield
    if previous is None:
        os.environ.pop("T2I_BENCH_CACHE", None)
    else:
        os.environ["T2I_BENCH_CACHE"] = previous

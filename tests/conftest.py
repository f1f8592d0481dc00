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


# Fixture scopes that outlive one test: tests sharing one run on a single xdist worker.
_SHARED_SCOPES = frozenset({"module", "package", "class"})


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist's loadgroup (`make pytest` runs -n 2 --dist loadgroup), the tests of a
    module that share a module-scoped fixture (a `bench run`, a SLURM cluster, a loaded model) go
    to one worker, so the fixture is made once; the other tests are handed out one by one.
    Tests that must not run beside each other name a group of their own (xdist_group)."""
    if config.getoption("dist", default=None) != "loadgroup":
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info is not None else []
        if any(defs and defs[-1].scope in _SHARED_SCOPES for defs in definitions):
            module = item.module.__name__ if isinstance(item, pytest.Function) else item.nodeid
            item.add_marker(pytest.mark.xdist_group(module))


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

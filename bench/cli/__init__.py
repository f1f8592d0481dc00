"""The `bench` command: the only place that wires config, providers, runner, store, metrics and reports."""

from bench.cli.main import main

__all__ = ["main"]

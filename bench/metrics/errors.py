"""Errors raised by the metrics stage. All are BenchErrors, so the CLI prints them without a traceback."""

from __future__ import annotations

from bench.errors import BenchError


class MetricsError(BenchError):
    """A metric cannot be computed as configured (bad reference, unreadable image, ...)."""


class FingerprintMismatch(MetricsError):
    """Two scores computed differently were about to be averaged or compared."""


class WeightsError(MetricsError):
    """Model weights are missing, unreadable, or not the file they claim to be."""

"""The quality signals a report can plot: defined once in bench.decide.signals (the decision rests on
the same ones), re-exported here for the report's modules."""

from __future__ import annotations

from bench.decide.signals import AXES, CHOICES, QUALITY_ORDER

__all__ = ["AXES", "CHOICES", "QUALITY_ORDER"]

"""Caveats about a scoring pass: kept as notes for the report and raised as a MetricsWarning
for programs that call the scorers directly (the CLI prints the notes and silences the warning,
so a user reads each once).
"""

from __future__ import annotations

import warnings


class MetricsWarning(UserWarning):
    """A metric could not be computed as configured, or its value is unreliable."""


def note(notes: list[str], message: str, *, stacklevel: int = 3) -> None:
    """Record a caveat and warn about it (stacklevel: the scorer's caller, not this helper)."""
    notes.append(message)
    warnings.warn(message, MetricsWarning, stacklevel=stacklevel + 1)

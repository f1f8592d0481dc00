"""Keep other libraries' routine chatter off the user's terminal.

open_clip reports every model config and tokenizer it loads with `logging.info` on the root
logger, and `bench run` (Hydra's job logging) and `bench score` show the root logger's INFO
lines: three lines a run about a tokenizer, even when CLIP is not scored. Its warnings and
errors still come through.
"""

from __future__ import annotations

import importlib.util
import logging
import os


class DropBelowWarningFrom(logging.Filter):
    """Drops records below WARNING whose source file is inside one of these folders."""

    def __init__(self, folders: tuple[str, ...]) -> None:
        super().__init__("bench-library-chatter")
        self.folders = folders

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not record.pathname.startswith(self.folders)


def _package_folder(name: str) -> str | None:
    spec = importlib.util.find_spec(name)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(next(iter(spec.submodule_search_locations)), "")


def quiet_open_clip() -> None:
    """Filter open_clip's INFO lines out of the root logger (its records are made there). Idempotent."""
    root = logging.getLogger()
    if any(isinstance(f, DropBelowWarningFrom) for f in root.filters):
        return
    folder = _package_folder("open_clip")
    if folder is not None:
        # A filter on the root logger itself (not on a handler), so Hydra replacing the
        # handlers when a job starts does not remove it.
        root.addFilter(DropBelowWarningFrom((folder,)))

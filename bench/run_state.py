"""Whether a run folder's derived outputs are current, so re-running a finished run rebuilds nothing.

records.parquet, the scores and the report are all derived from the journal and the
config. After they are written, the journal's size and mtime and a digest of the
config are stamped into the folder; a later run that sent nothing and finds the
same stamp keeps them (rebuilding a 10k-request run's records and report costs seconds).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.store import JOURNAL, RECORDS

STAMP = ".outputs.json"
# Keys that differ between invocations without changing any output: the run and sweep names
# resolve `${now:}` on every call, and progress display does not touch the results.
_VOLATILE_KEYS = ("run_name", "sweep_name")
_VOLATILE_RUNNER_KEYS = ("progress",)


def config_digest(cfg: Mapping[str, Any]) -> str:
    stable = {k: v for k, v in cfg.items() if k not in _VOLATILE_KEYS}
    if isinstance(stable.get("runner"), Mapping):
        stable["runner"] = {k: v for k, v in stable["runner"].items() if k not in _VOLATILE_RUNNER_KEYS}
    text = json.dumps(stable, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _file_state(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _current(run_dir: Path, cfg: Mapping[str, Any], outputs: list[str]) -> dict[str, Any]:
    return {
        "config_sha256": config_digest(cfg),
        "files": {name: _file_state(run_dir / name) for name in [JOURNAL, RECORDS, *outputs]},
    }


def record_outputs(run_dir: Path, cfg: Mapping[str, Any], outputs: list[str], summary_table: str) -> None:
    """Stamp the folder after records, scores and report were written from this journal and config.

    The printed summary table is kept too, so an unchanged re-run prints it without loading pandas.
    """
    state = _current(run_dir, cfg, outputs)
    tmp = run_dir / f"{STAMP}.tmp"
    tmp.write_text(
        json.dumps({**state, "outputs": outputs, "summary_table": summary_table}), encoding="utf-8"
    )
    os.replace(tmp, run_dir / STAMP)


def stored_summary_table(run_dir: Path, cfg: Mapping[str, Any]) -> str | None:
    """The stamped summary table when the journal, records.parquet and every stamped output are
    exactly as stamped under the same config; None when anything must be rebuilt."""
    try:
        stamped = json.loads((run_dir / STAMP).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    outputs, table = stamped.get("outputs"), stamped.get("summary_table")
    if not isinstance(outputs, list) or not isinstance(table, str):
        return None
    now = _current(run_dir, cfg, [str(o) for o in outputs])
    files = now["files"]
    if any(state is None for state in files.values()):
        return None  # an output was deleted: rebuild it
    if stamped.get("config_sha256") != now["config_sha256"] or stamped.get("files") != files:
        return None
    return table

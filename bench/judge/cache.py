"""Judge answers on disk, keyed by (image sha256 or prompt, question, judge fingerprint).

The judge fingerprint carries the judge model and the template hash, so an answer
from another model or another wording is never reused. Refusals are cached too (the
same request would be refused again, and billed again); errors are not.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any


def answer_key(task: str, subject: str, question: str, fingerprint: str) -> str:
    return hashlib.sha256("\x1f".join((task, subject, question, fingerprint)).encode()).hexdigest()


class JudgeCache:
    def __init__(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(cache_dir / "judge.sqlite", timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._conn.commit()

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self._conn.execute(
                f"SELECT key, value FROM answers WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            found.update({k: json.loads(v) for k, v in rows})
        return found

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._conn:
            self._conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?)", (key, json.dumps(value)))

    def close(self) -> None:
        self._conn.close()

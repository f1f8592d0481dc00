"""On-disk caches: embeddings by (content sha256, fingerprint id), reference statistics by fingerprint.

One SQLite file holds all vectors: it is safe when two `bench score` processes
share a cache, and a few hundred small rows load faster than as many files.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


class EmbeddingCache:
    def __init__(self, cache_dir: Path) -> None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        self.path = cache_dir / "embeddings.sqlite"
        self._conn = sqlite3.connect(self.path, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS vectors ("
            " fingerprint TEXT NOT NULL, key TEXT NOT NULL, dim INTEGER NOT NULL, data BLOB NOT NULL,"
            " PRIMARY KEY (fingerprint, key))"
        )
        self._conn.commit()

    def get_many(self, fingerprint: str, keys: Iterable[str]) -> dict[str, F32]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, F32] = {}
        for start in range(0, len(wanted), 500):  # SQLite caps the number of bound parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT key, dim, data FROM vectors WHERE fingerprint = ? AND key IN ({marks})",
                [fingerprint, *chunk],
            )
            for key, dim, data in rows:
                found[key] = np.frombuffer(data, dtype=np.float32).reshape(dim).copy()
        return found

    def put_many(self, fingerprint: str, items: dict[str, F32]) -> None:
        rows = [
            (fingerprint, k, int(v.shape[0]), np.ascontiguousarray(v, np.float32).tobytes())
            for k, v in items.items()
        ]
        with self._conn:
            self._conn.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._conn.close()


def atomic_save_npz(path: Path, **arrays: npt.NDArray[np.generic]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)

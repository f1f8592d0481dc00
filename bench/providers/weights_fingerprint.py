"""What a local model *is*: a content fingerprint of its pipeline folder.

The response cache keys a local model's answers by this, not by its folder's name, so a
folder overwritten with other weights is a miss. Every file under the folder counts
(configs too: another scheduler config makes other images), except hidden ones (download
tools keep locks and metadata there). Each file's sha256 is memoised on disk by its
resolved path, size, mtime, ctime and inode: a 5 GB folder is read once, and re-runs only
stat it; overwriting, replacing or touching a file changes one of them, so it is hashed
again. The memo is machine-local (paths are), under $T2I_BENCH_CACHE or ~/.cache/t2i-bench.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

DEFAULT_ROOT = "~/.cache/t2i-bench"
_CHUNK = 8 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


def memo_root() -> Path:
    return Path(os.environ.get("T2I_BENCH_CACHE") or DEFAULT_ROOT).expanduser() / "weights-sha256"


def file_sha256(path: Path, memo_dir: Path) -> str:
    """The file's sha256, read from the memo when the file is unchanged since it was hashed."""
    real = path.resolve(strict=True)
    st = real.stat()
    stamp = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0{st.st_ino}"
    slot = hashlib.sha256(stamp.encode()).hexdigest()
    memo = memo_dir / slot[:2] / slot
    with contextlib.suppress(OSError):
        known = memo.read_text(encoding="ascii").strip()
        if _HEX64.fullmatch(known):
            return known
    digest = hashlib.sha256()
    with real.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # an unwritable memo only costs the next run a re-hash
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(value)
        os.replace(tmp, memo)
    return value


def folder_fingerprint(folder: Path, memo_dir: Path | None = None) -> str:
    """sha256 over (relative path, sha256) of every non-hidden file under `folder`."""
    memo_dir = memo_dir or memo_root()
    files: list[tuple[str, str]] = []
    for here, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(here) / name
            files.append((path.relative_to(folder).as_posix(), file_sha256(path, memo_dir)))
    files.sort()
    return hashlib.sha256(json.dumps(files, separators=(",", ":")).encode()).hexdigest()

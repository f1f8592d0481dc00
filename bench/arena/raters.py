"""Rater tokens: `bench rate PATH --raters alice,bob` gives each person a link that carries their token.

With tokens, the arena attributes every vote to the token's rater and refuses a request without a
valid one (no name box to mistype or borrow). Tokens are kept in PATH/arena-raters.json (readable
by the owner only) so the links stay valid when the server restarts; a new name gets a new token.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from bench.errors import BenchError

RATERS_FILE = "arena-raters.json"


class BadRaters(BenchError):
    """A `--raters` value that is not a comma-separated list of distinct names."""


def parse_raters(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",")]
    if not value.strip() or any(not n or len(n) > 80 for n in names) or len(set(names)) != len(names):
        raise BadRaters(
            f"--raters {value!r}: give distinct names of 1-80 characters separated by commas, e.g. --raters alice,bob"
        )
    return names


def rater_tokens(folder: Path, names: list[str]) -> dict[str, str]:
    """token -> rater for `names`, reusing the tokens already issued to them in FOLDER/arena-raters.json."""
    path = folder / RATERS_FILE
    issued: dict[str, str] = {}
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            issued = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        except ValueError:
            issued = {}  # a damaged file: issue fresh tokens (old links stop working)
    changed = False
    for name in names:
        if name not in issued:
            issued[name] = secrets.token_urlsafe(18)
            changed = True
    if changed:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(issued, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    return {issued[name]: name for name in names}


def rater_of(tokens: dict[str, str], given: object) -> str | None:
    """The rater whose token is `given` (compared in constant time), or None."""
    value = str(given or "")
    found = None
    for token, name in tokens.items():
        if secrets.compare_digest(token.encode(), value.encode()):
            found = name
    return found

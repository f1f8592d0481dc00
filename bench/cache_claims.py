"""Claims on a shared response cache: a request is sent by one job, the others wait for its answer.

Before sending a request the cache has no answer for, a job creates
`claims/ab/<name>.claim` with O_CREAT|O_EXCL (atomic on local file systems and on NFSv3+;
exactly one creator wins). Another job asking for the same request finds the claim and
waits, polling for the claimant's answer. The claimant releases the claim after its answer
is in the cache, or at once when it ended in error (errors are never cached), so a waiter
that finds the claim gone and no answer claims the request itself and sends it.

A claimant that died leaves its claim behind. A live claimant touches its claims' mtime
every `stale_after_s / 4` (Claims.refresh); a waiter that sees a claim's (token, mtime)
unchanged for `stale_after_s` on its *own* clock takes it over, so no two machines'
clocks are ever compared. The takeover renames the claim aside (atomic: of two waiters
taking over at once, one wins) and puts back a claim that turned out to be fresh.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bench.cache")

Observation = tuple[str, int]  # (the claim's token, its mtime_ns)


@dataclass(frozen=True)
class Claim:
    path: Path
    token: str


class Claims:
    """The claim files under `<cache>/claims`; `clock` is monotonic seconds (injectable for tests)."""

    def __init__(self, root: Path, owner: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root / "claims"
        self.owner = owner  # the run id, shown to whoever waits
        self.clock = clock
        self._held: dict[Path, Claim] = {}

    def path(self, name: str) -> Path:
        return self.root / name[:2] / f"{name}.claim"

    def try_claim(self, name: str) -> Claim | None:
        """Claim `name`, or None when another job holds it."""
        path = self.path(name)
        token = uuid.uuid4().hex
        body = json.dumps(
            {"token": token, "run": self.owner, "host": socket.gethostname(), "pid": os.getpid()}
        ).encode()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return None
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
        claim = Claim(path, token)
        self._held[path] = claim
        return claim

    def release(self, claim: Claim) -> None:
        """Remove our claim (only if it is still ours: a stale one may have been taken over)."""
        self._held.pop(claim.path, None)
        if self._token(claim.path) == claim.token:
            with contextlib.suppress(FileNotFoundError):
                claim.path.unlink()

    def release_all(self) -> None:
        for claim in list(self._held.values()):
            self.release(claim)

    def refresh(self) -> None:
        """The claimant's heartbeat: touch every claim held, so waiters see it alive."""
        for claim in list(self._held.values()):
            with contextlib.suppress(FileNotFoundError):
                # Strictly later than before, even within the file system's timestamp granularity.
                now_ns = max(time.time_ns(), claim.path.stat().st_mtime_ns + 1)
                os.utime(claim.path, ns=(now_ns, now_ns))

    def observe(self, name: str) -> Observation | None:
        """(token, mtime_ns) of the claim on `name`, or None when there is none."""
        path = self.path(name)
        try:
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        token = self._token(path)
        return None if token is None else (token, mtime_ns)

    def take_over(self, name: str, seen: Observation) -> None:
        """Remove the stale claim `seen` (unchanged for stale_after_s); the caller then claims anew."""
        path = self.path(name)
        aside = path.with_name(f"{path.name}.{uuid.uuid4().hex}.stale")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            return  # released or taken over by another waiter meanwhile
        if self._token(aside) != seen[0]:
            # A fresh claim was made between our look and the rename: put it back.
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
        else:
            log.warning("took over a stale claim on a cached request (%s): its claimant stopped", name[:16])
        with contextlib.suppress(FileNotFoundError):
            aside.unlink()

    @staticmethod
    def _token(path: Path) -> str | None:
        try:
            body = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return ""  # half-written or garbled: a claim all the same, with no token
        token = body.get("token") if isinstance(body, dict) else None
        return str(token) if token is not None else ""

"""The run folder: content-addressed images, a crash-safe journal, records.parquet.

Layout of a run folder:
    config.yaml          the resolved config of the (last) run into this folder
    journal.jsonl        one line per finished request (its record rows), fsynced
    journal.jsonl.torn   the cut-off last line of a crashed write, kept for inspection
    journal.rejects.jsonl  unreadable journal lines, moved out (their line numbers are logged)
    bench.lock           held (flock) by the one `bench run`/`bench score` using the folder
    images/ab/<sha256>.<ext>   every image, by content, in the format the provider sent
    records.parquet      built from the journal: the latest outcome per request

The journal is the source of truth. A request counts as finished once its line
is on disk; a SIGKILL loses at most the requests still in flight. Writes are
group-committed by one writer task (many lines, one fsync) so durability does
not cap throughput at the disk's fsync rate. A batch's new images are made durable
first, together (bench.durable_files: one syncfs on Linux), so no journal line ever
names an image that a crash could lose.

On open the journal is repaired so appends start on a line boundary: a torn last
line (crash mid-write) is copied to journal.jsonl.torn and truncated away; a line
that does not parse (bad JSON, bad UTF-8, wrong shape) is moved to
journal.rejects.jsonl and reported by line number. Nothing is skipped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.durable_files import write_files_durably
from bench.records import COLUMNS, RECORD_SCHEMA

log = logging.getLogger("bench.store")
JOURNAL = "journal.jsonl"
TORN = "journal.jsonl.torn"
REJECTS = "journal.rejects.jsonl"
RECORDS = "records.parquet"
IMAGES = "images"
DONE_STATUSES = frozenset({"ok", "refused"})  # errors and skips are tried again on resume
_PARQUET_BATCH_ROWS = 10_000
# Requests whose rows wait for the writer. When the disk lags this far behind, the runner stops
# dispatching new requests (paid images must not pile up in memory, or be bought faster than kept).
# The runner raises it to twice the providers' total concurrency (RunStore.absorb_bursts).
MAX_PENDING_WRITES = 256


class StoreWriteError(OSError):
    """A journal or image write failed (disk full, folder removed): nothing more can be kept."""


class BrokenRecords(FileNotFoundError):
    """records.parquet exists but cannot be read; it can be rebuilt from the journal."""

    def __init__(self, path: Path, reason: str) -> None:
        run_dir = path.parent
        super().__init__(
            f"{path} is unreadable ({reason}); rebuild it from the journal with "
            f"`bench report --rebuild {run_dir}`"
            + ("" if (run_dir / JOURNAL).is_file() else f" (but {run_dir / JOURNAL} is missing)")
        )


@dataclass(frozen=True)
class StoredImage:
    relative_path: str
    sha256: str


def image_relative_path(sha256: str, extension: str) -> str:
    return f"{IMAGES}/{sha256[:2]}/{sha256}.{extension}"


def journal_rows(line: bytes) -> list[dict[str, Any]] | None:
    """The rows of one journal line, or None when the line is not a valid record line."""
    try:
        rows = json.loads(line)
    except ValueError:  # bad JSON or bad UTF-8
        return None
    if not isinstance(rows, list) or not rows:
        return None
    for row in rows:
        if not (
            isinstance(row, dict)
            and isinstance(row.get("request_key"), str)
            and isinstance(row.get("status"), str)
        ):
            return None
    return rows


@dataclass
class JournalRepair:
    torn_bytes: int = 0
    rejected_lines: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.torn_bytes or self.rejected_lines)


JournalVisitor = Callable[[list[dict[str, Any]]], None]


def repair_journal(run_dir: Path, visit: JournalVisitor | None = None) -> JournalRepair:
    """Make the journal a sequence of valid lines ending on a line boundary; move the rest aside.

    `visit` is called with the rows of every line kept, oldest first: the same pass that checks
    each line serves resume, so a big journal is parsed once, not once per question asked of it.
    """
    path = run_dir / JOURNAL
    if not path.is_file():
        return JournalRepair()
    bad: list[tuple[int, bytes]] = []
    good_end = 0  # byte offset just past the last complete line
    torn = b""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.endswith(b"\n"):
                torn = line
                break
            good_end += len(line)
            rows = journal_rows(line)
            if rows is None:
                bad.append((number, line))
            elif visit is not None:
                visit(rows)
    if torn:
        _append_durably(run_dir / TORN, torn + b"\n")
        log.warning(
            "%s: the last line (%d bytes) was cut off by a crash mid-write; moved to %s",
            path,
            len(torn),
            TORN,
        )
    if bad:
        _append_durably(run_dir / REJECTS, b"".join(line for _, line in bad))
        numbers = [n for n, _ in bad]
        shown = ", ".join(str(n) for n in numbers[:20]) + (" ..." if len(numbers) > 20 else "")
        log.warning(
            "%s: %d unreadable line(s) (line %s) moved to %s; those requests will be sent again",
            path,
            len(bad),
            shown,
            REJECTS,
        )
        _rewrite_without(path, {n for n, _ in bad}, good_end)
    elif torn:
        with open(path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return JournalRepair(len(torn), tuple(n for n, _ in bad))


def _append_durably(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _rewrite_without(path: Path, drop: set[int], end: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        read = 0
        for number, line in enumerate(src, start=1):
            if read >= end:
                break
            read += len(line)
            if number not in drop:
                dst.write(line)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(tmp, path)


def remove_orphan_tmp_files(run_dir: Path) -> int:
    """Delete half-written image files a crash (or a full disk) left behind."""
    removed = 0
    for tmp in (run_dir / IMAGES).glob("*/*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


class LatestStatus:
    """A journal visitor: each request key's latest status (a retried error may end ok)."""

    def __init__(self) -> None:
        self.latest: dict[str, str] = {}
        self.billed_failed: set[str] = set()  # keys whose latest outcome is a billed failure

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        key = rows[0]["request_key"]
        self.latest[key] = rows[0]["status"]
        if rows[0]["status"] == "error" and row_billed(rows[0]):
            self.billed_failed.add(key)
        elif rows[0]["status"] != "skipped":  # a skip (the cap) leaves the billed failure standing
            self.billed_failed.discard(key)

    def finished(self, *, retry_billed: bool = False) -> set[str]:
        """Keys whose latest outcome is final: ok, refused, or an error the provider billed (the
        image was made and paid for; only `retry_billed` sends those again, buying them twice).
        Resume does not send these again."""
        done = {key for key, status in self.latest.items() if status in DONE_STATUSES}
        return done if retry_billed else done | self.billed_failed


def row_billed(row: dict[str, Any]) -> bool:
    """Did the provider bill this request? Journals older than the `billed` column: an ok answer,
    a failed download (always after the generation), or an error that carries a cost."""
    billed = row.get("billed")
    if isinstance(billed, bool):
        return billed
    if row.get("status") == "ok":
        return row.get("cached") is not True
    cost = row.get("cost_usd")
    has_cost = isinstance(cost, int | float) and not isinstance(cost, bool) and cost == cost
    return row.get("status") == "error" and (row.get("error_type") == "download" or has_cost)


class RunStore:
    def __init__(self, run_dir: Path, max_pending_writes: int | None = None) -> None:
        self.run_dir = run_dir
        self.journal_path = run_dir / JOURNAL
        self._pending_limit_given = max_pending_writes is not None
        self.max_pending_writes = MAX_PENDING_WRITES if max_pending_writes is None else max_pending_writes
        self._pending = 0
        self._room: asyncio.Event | None = None
        self.failure: BaseException | None = None  # the first write failure; nothing is written after it
        self._repaired = False
        # None in the queue is the stop sentinel sent by close().
        self._queue: (
            asyncio.Queue[tuple[list[tuple[Path, bytes]], bytes, asyncio.Future[None]] | None] | None
        ) = None
        self._writer: asyncio.Task[None] | None = None
        self._journal_fd: int | None = None
        self._made_dirs: set[Path] = set()  # image shard folders known to exist

    # ---- reading -----------------------------------------------------------------
    def repair(self, visit: JournalVisitor | None = None) -> JournalRepair:
        """Repair the journal once (see repair_journal) and drop orphan .tmp images."""
        if self._repaired:
            return JournalRepair()
        self._repaired = True
        if not self.run_dir.is_dir():
            return JournalRepair()
        remove_orphan_tmp_files(self.run_dir)
        return repair_journal(self.run_dir, visit)

    def scan(self, visit: JournalVisitor) -> None:
        """Visit every finished request's rows once, repairing the journal in the same read if
        this store has not been repaired yet."""
        if not self._repaired:
            self.repair(visit)
        else:
            for rows in self.iter_journal():
                visit(rows)

    def iter_journal(self) -> Iterator[list[dict[str, Any]]]:
        """Each finished request's rows, oldest first.

        Call repair() first to move bad lines aside; lines that are still unreadable here
        (a read-only look at a folder) are reported with their line number, never silently skipped.
        """
        if not self.journal_path.exists():
            return
        with open(self.journal_path, "rb") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.endswith(b"\n"):
                    log.warning("%s line %d: cut off by a crash; not counted", self.journal_path, number)
                    return  # the write was cut off by a crash: that request was not finished
                rows = journal_rows(line)
                if rows is None:
                    log.warning("%s line %d: unreadable; not counted", self.journal_path, number)
                    continue
                yield rows

    def finished_keys(self) -> set[str]:
        """Keys whose latest outcome is final (ok or refused): resume does not send these again."""
        latest = LatestStatus()
        for rows in self.iter_journal():
            latest(rows)
        return latest.finished()

    # ---- writing -----------------------------------------------------------------
    def image_path(self, sha256: str, extension: str) -> tuple[Path, str]:
        rel = image_relative_path(sha256, extension)
        return self.run_dir / rel, rel

    async def open(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.repair()  # appends must start on a line boundary
        self._journal_fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._queue = asyncio.Queue(maxsize=self.max_pending_writes)
        self._room = asyncio.Event()  # set while fewer than max_pending_writes wait for the disk
        self._room.set()
        self._writer = asyncio.create_task(self._write_loop())

    def absorb_bursts(self, concurrency: int) -> None:
        """Let two waves of answers (`concurrency` arriving at once, each) wait for the disk without
        stopping the sends, unless a limit was given to the constructor. Call before open().

        Two, so that one wave can be written while the next arrives. With the fixed default, a
        provider answering 1,000 requests within a second filled the 256 places while the writer
        fsynced a batch, and every send waited for the disk: at concurrency 1000 that cost a fifth
        of the throughput; with one wave's worth, sends still waited in some runs, costing ~4%
        (tests/benchmarks/bench_scaling.py). Memory stays bounded by the configured concurrency:
        at most this many answers, plus those in flight, wait for the disk.
        """
        if not self._pending_limit_given:
            self.max_pending_writes = max(MAX_PENDING_WRITES, 2 * concurrency)

    async def wait_for_room(self) -> None:
        """Backpressure: wait while max_pending_writes requests wait for the disk (or it failed)."""
        assert self._room is not None, "RunStore.open() first"
        while self._pending >= self.max_pending_writes and self.failure is None:
            await self._room.wait()
        if self.failure is not None:
            raise StoreWriteError(str(self.failure)) from self.failure

    async def commit(
        self,
        rows: Sequence[Mapping[str, Any]],
        images: Sequence[tuple[Path, bytes]] = (),
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        """Durably store images then the request's rows; returns once both are on disk.

        `on_durable` runs once the line is fsynced, even if the caller was cancelled while
        waiting: a queued line is still written, so whoever counts must count it then.
        After the first write failure every commit raises StoreWriteError at once.
        """
        assert self._queue is not None and self._room is not None, "RunStore.open() first"
        if self.failure is not None:
            raise StoreWriteError(str(self.failure)) from self.failure
        line = (json.dumps(list(rows), default=_json_default, ensure_ascii=False) + "\n").encode()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if on_durable is not None:
            done.add_done_callback(
                lambda fut: on_durable() if not fut.cancelled() and fut.exception() is None else None
            )
        self._pending += 1
        if self._pending >= self.max_pending_writes:
            self._room.clear()
        done.add_done_callback(self._written)
        try:
            await self._queue.put((list(images), line, done))
        except asyncio.CancelledError:
            done.cancel()  # never queued: it no longer waits for the disk
            raise
        await asyncio.shield(done)  # cancelling the caller must not cancel the write's outcome

    def _written(self, _: asyncio.Future[None]) -> None:
        assert self._room is not None
        self._pending -= 1
        if self._pending < self.max_pending_writes:
            self._room.set()

    async def _write_loop(self) -> None:
        """Write whatever is queued as one batch (one fsync); return after the stop sentinel."""
        assert self._queue is not None
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            batch = [item for item in items if item is not None]
            if batch and self.failure is not None:
                error = StoreWriteError(str(self.failure))
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
            elif batch:
                try:
                    await asyncio.to_thread(self._write_batch, batch)
                except Exception as exc:  # disk full, permissions: the committers get the error
                    self.failure = exc
                    error = StoreWriteError(str(exc))
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(error)
                    assert self._room is not None
                    self._room.set()  # waiters wake up to the failure
                else:
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
            if len(batch) != len(items):
                return  # close() asked to stop, and everything queued before it is written

    def _write_batch(self, batch: list[tuple[list[tuple[Path, bytes]], bytes, asyncio.Future[None]]]) -> None:
        # Every image of the batch is durable before any of its journal lines is written.
        new: dict[Path, bytes] = {}
        for images, _, _ in batch:
            for path, data in images:
                if path not in new and not path.exists():  # content-addressed: stored once
                    new[path] = data
        for folder in {path.parent for path in new} - self._made_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(folder)
        write_files_durably(new, self.run_dir)
        fd = self._journal_fd
        assert fd is not None
        start = os.fstat(fd).st_size
        try:
            self._append_journal(fd, b"".join(line for _, line, _ in batch))
        except BaseException:
            # Half a batch on disk would be a torn line mid-file: cut back to where it started.
            # (If even that fails, the next open() moves the torn tail aside.)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
                os.fsync(fd)
            raise

    @staticmethod
    def _append_journal(fd: int, data: bytes) -> None:
        pending = memoryview(data)
        while pending:  # unbuffered: nothing is left in a buffer to fail again at close()
            pending = pending[os.write(fd, pending) :]
        os.fsync(fd)

    async def close(self) -> None:
        """Stop the writer once everything committed so far is on disk, then close the journal."""
        if self._writer is not None:
            assert self._queue is not None
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._journal_fd is not None:
            os.close(self._journal_fd)
            self._journal_fd = None

    # ---- records.parquet ---------------------------------------------------------
    def write_records(self, extra_metadata: Mapping[str, str] | None = None) -> Path:
        """Rebuild records.parquet from the journal: the latest outcome per request, streamed."""
        last_line: dict[str, int] = {}
        for i, rows in enumerate(self.iter_journal()):
            last_line[rows[0]["request_key"]] = i
        schema = RECORD_SCHEMA
        if extra_metadata:
            meta = dict(schema.metadata or {})
            meta.update({k.encode(): v.encode() for k, v in extra_metadata.items()})
            schema = schema.with_metadata(meta)
        out = self.run_dir / RECORDS
        tmp = out.with_name(out.name + ".tmp")
        with pq.ParquetWriter(tmp, schema) as writer:
            buffer: list[dict[str, Any]] = []
            for i, rows in enumerate(self.iter_journal()):
                if last_line.get(rows[0]["request_key"]) != i:
                    continue  # superseded by a later attempt (e.g. an error retried on resume)
                buffer.extend(rows)
                if len(buffer) >= _PARQUET_BATCH_ROWS:
                    writer.write_table(_rows_to_table(buffer, schema))
                    buffer = []
            if buffer or not last_line:
                writer.write_table(_rows_to_table(buffer, schema))
        os.replace(tmp, out)
        return out


def _rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    columns = {name: [row.get(name) for row in rows] for name in COLUMNS}
    for name in ("started_at",):
        columns[name] = [_parse_ts(v) for v in columns[name]]
    return pa.Table.from_pydict(columns, schema=schema)


def _parse_ts(value: Any) -> Any:
    if value is None:
        return None
    import datetime as dt

    return dt.datetime.fromisoformat(value)


def _json_default(value: Any) -> Any:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

"""The run folder: content-addressed images, a crash-safe journal, records.parquet.

Layout of a run folder:
    config.yaml          the resolved config of the (last) run into this folder
    journal.jsonl        one line per finished request (its record rows), fsynced
    images/ab/<sha256>.<ext>   every image, by content, in the format the provider sent
    records.parquet      built from the journal: the latest outcome per request

The journal is the source of truth. A request counts as finished once its line
is on disk; a SIGKILL loses at most the requests still in flight. Writes are
group-committed by one writer task (many lines, one fsync) so durability does
not cap throughput at the disk's fsync rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from bench.records import COLUMNS, RECORD_SCHEMA

JOURNAL = "journal.jsonl"
RECORDS = "records.parquet"
IMAGES = "images"
DONE_STATUSES = frozenset({"ok", "refused"})  # errors and skips are tried again on resume
_PARQUET_BATCH_ROWS = 10_000


@dataclass(frozen=True)
class StoredImage:
    relative_path: str
    sha256: str


def image_relative_path(sha256: str, extension: str) -> str:
    return f"{IMAGES}/{sha256[:2]}/{sha256}.{extension}"


def _write_file_durably(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)  # a reader never sees half an image


class RunStore:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.journal_path = run_dir / JOURNAL
        # None in the queue is the stop sentinel sent by close().
        self._queue: (
            asyncio.Queue[tuple[list[tuple[Path, bytes]], str, asyncio.Future[None]] | None] | None
        ) = None
        self._writer: asyncio.Task[None] | None = None
        self._journal_fh: Any = None

    # ---- reading -----------------------------------------------------------------
    def iter_journal(self) -> Iterator[list[dict[str, Any]]]:
        """Each finished request's rows, oldest first. A torn last line (crash mid-write) is skipped."""
        if not self.journal_path.exists():
            return
        with open(self.journal_path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    return  # the write was cut off by a crash: that request was not finished
                try:
                    rows = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rows, list) and rows:
                    yield rows

    def finished_keys(self) -> set[str]:
        """Keys whose latest outcome is final (ok or refused): resume does not send these again."""
        latest: dict[str, str] = {}
        for rows in self.iter_journal():
            latest[rows[0]["request_key"]] = rows[0]["status"]
        return {key for key, status in latest.items() if status in DONE_STATUSES}

    # ---- writing -----------------------------------------------------------------
    def image_path(self, sha256: str, extension: str) -> tuple[Path, str]:
        rel = image_relative_path(sha256, extension)
        return self.run_dir / rel, rel

    async def open(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._journal_fh = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self._queue = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop())

    async def commit(
        self,
        rows: Sequence[Mapping[str, Any]],
        images: Sequence[tuple[Path, bytes]] = (),
        on_durable: Callable[[], None] | None = None,
    ) -> None:
        """Durably store images then the request's rows; returns once both are on disk.

        `on_durable` runs once the line is fsynced, even if the caller was cancelled while
        waiting: a queued line is still written, so whoever counts must count it then.
        """
        assert self._queue is not None, "RunStore.open() first"
        line = json.dumps(list(rows), default=_json_default, ensure_ascii=False) + "\n"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if on_durable is not None:
            done.add_done_callback(
                lambda fut: on_durable() if not fut.cancelled() and fut.exception() is None else None
            )
        await self._queue.put((list(images), line, done))
        await asyncio.shield(done)  # cancelling the caller must not cancel the write's outcome

    async def _write_loop(self) -> None:
        """Write whatever is queued as one batch (one fsync); return after the stop sentinel."""
        assert self._queue is not None
        while True:
            items = [await self._queue.get()]
            while not self._queue.empty():
                items.append(self._queue.get_nowait())
            batch = [item for item in items if item is not None]
            if batch:
                try:
                    await asyncio.to_thread(self._write_batch, batch)
                except Exception as exc:  # disk full, permissions: the committers get the error
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                else:
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_result(None)
            if len(batch) != len(items):
                return  # close() asked to stop, and everything queued before it is written

    def _write_batch(self, batch: list[tuple[list[tuple[Path, bytes]], str, asyncio.Future[None]]]) -> None:
        for images, _, _ in batch:
            for path, data in images:
                if not path.exists():  # content-addressed: the same bytes are stored once
                    _write_file_durably(path, data)
        self._journal_fh.write("".join(line for _, line, _ in batch))
        self._journal_fh.flush()
        os.fsync(self._journal_fh.fileno())

    async def close(self) -> None:
        """Stop the writer once everything committed so far is on disk, then close the journal."""
        if self._writer is not None:
            assert self._queue is not None
            await self._queue.put(None)
            await self._writer
            self._writer = None
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None

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

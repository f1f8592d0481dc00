"""The image batch writer: every file lands whole, under its final name only once it is durable."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import bench.durable_files as durable
from bench.durable_files import write_files_durably


def batch(folder: Path, n: int) -> dict[Path, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    return {folder / f"{i}.png": os.urandom(100 + i) for i in range(n)}


@pytest.mark.parametrize("use_syncfs", [True, False], ids=["syncfs", "fsync-each"])
def test_every_file_is_written_whole_and_no_tmp_is_left(tmp_path: Path, use_syncfs: bool) -> None:
    files = batch(tmp_path / "ab", 300)  # more than one chunk of open files
    write_files_durably(files, tmp_path, use_syncfs=use_syncfs)
    assert {p: p.read_bytes() for p in files} == files
    assert not list(tmp_path.rglob("*.tmp"))


def test_syncfs_is_used_on_linux_and_fsync_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if durable._SYNCFS is None:
        pytest.skip("syncfs(2) is Linux-only; elsewhere every file is fsynced")
    fsynced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(durable.os, "fsync", lambda fd: (fsynced.append(fd), real_fsync(fd))[1])
    write_files_durably(batch(tmp_path / "a", 5), tmp_path)
    assert fsynced == []  # one syncfs for the batch
    monkeypatch.setattr(durable, "_SYNCFS", lambda fd: -1)  # syncfs reported an error
    write_files_durably(batch(tmp_path / "b", 5), tmp_path)
    assert len(fsynced) == 5


def test_a_failed_write_leaves_no_tmp_and_no_final_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = batch(tmp_path / "cd", 10)
    real_write = os.write
    calls = [0]

    def full_disk(fd: int, data: bytes | memoryview) -> int:
        calls[0] += 1
        if calls[0] == 7:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(durable.os, "write", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_files_durably(files, tmp_path)
    # Nothing was renamed into place (the batch was not durable yet) and no .tmp is left behind.
    assert list((tmp_path / "cd").iterdir()) == []


def test_syncfs_only_where_the_kernel_reports_its_errors() -> None:
    assert durable._kernel_reports_syncfs_errors("5.8.0")
    assert durable._kernel_reports_syncfs_errors("6.1.0-18-amd64")
    assert not durable._kernel_reports_syncfs_errors("5.4.0-150-generic")
    assert not durable._kernel_reports_syncfs_errors("4.19.0")
    assert not durable._kernel_reports_syncfs_errors("weird")

"""An image file lands whole under its final name, or not at all."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import bench.store as store
from bench.store import write_file_durably


def test_an_image_is_written_whole_and_no_tmp_is_left(tmp_path: Path) -> None:
    data = os.urandom(1000)
    write_file_durably(tmp_path / "a.png", data)
    assert (tmp_path / "a.png").read_bytes() == data
    assert list(tmp_path.iterdir()) == [tmp_path / "a.png"]


def test_a_failed_write_leaves_no_tmp_and_no_final_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_file_durably(tmp_path / "b.png", b"x" * 100)
    assert list(tmp_path.iterdir()) == []

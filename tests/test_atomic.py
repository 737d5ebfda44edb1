"""Atomic writes: the final name only ever holds a complete file, with ordinary permissions."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lucid._atomic import atomic_write


def test_atomic_write_replaces_whole_file_with_umask_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.txt"
    old = os.umask(0o022)
    try:
        atomic_write(target, lambda tmp: tmp.write_text("first"))
        atomic_write(target, lambda tmp: tmp.write_text("second"))
    finally:
        os.umask(old)
    assert target.read_text() == "second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("intact")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "intact"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]

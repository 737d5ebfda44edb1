"""Atomic writes: the final name only ever holds a complete file, with ordinary permissions."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lucid.core.fileio import atomic_write


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


def _dead_pid() -> int:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_writes_fsync_the_file_and_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real = os.fsync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}") if os.path.exists("/proc/self/fd") else str(fd))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    target = tmp_path / "file.txt"
    atomic_write(target, lambda tmp: tmp.write_text("data"))
    assert any(p.endswith("file.txt") for p in synced)  # the content, under its temporary name
    assert str(tmp_path) in synced  # the folder that holds the new name


def test_stale_temporaries_of_dead_writers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    from lucid.core.fileio import remove_stale_temporaries

    dead = tmp_path / f".last.pt.tmp-{_dead_pid()}-abc"
    dead.mkdir()
    (dead / "last.pt").write_bytes(b"x" * 1000)
    live = tmp_path / f".last.pt.tmp-{os.getppid()}-def"  # a running process (this one's parent)
    live.mkdir()
    atomic_write(tmp_path / "last.pt", lambda tmp: tmp.write_text("new"))
    assert not dead.exists() and live.exists()
    assert remove_stale_temporaries(tmp_path) == []


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_saved_models_get_the_umask_permissions(tmp_path: Path, umask: int, mode: int) -> None:
    from lucid.models import create_model

    old = os.umask(umask)
    try:
        create_model("resnet_18", channels=[8, 8, 8, 8]).save_pretrained(tmp_path / "m")
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json"):
        assert stat.S_IMODE((tmp_path / "m" / name).stat().st_mode) == mode, name
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o777 & ~umask


def test_a_folder_is_replaced_as_a_unit_keeping_other_files(tmp_path: Path) -> None:
    from lucid.core.fileio import atomic_folder

    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "a.txt").write_text("old a")
    (folder / "keep.txt").write_text("kept")
    (folder / "sub").mkdir()
    (folder / "sub" / "x").write_text("kept too")
    inode = (folder / "keep.txt").stat().st_ino
    atomic_folder(folder, lambda tmp: (tmp / "a.txt").write_text("new a"), replace={"a.txt"})
    assert (folder / "a.txt").read_text() == "new a" and (folder / "keep.txt").read_text() == "kept"
    assert (folder / "sub" / "x").read_text() == "kept too"
    assert (folder / "keep.txt").stat().st_ino == inode  # carried over by a hard link, not copied

    def broken(tmp: Path) -> None:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_folder(folder, broken, replace={"a.txt"})
    assert (folder / "a.txt").read_text() == "new a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]

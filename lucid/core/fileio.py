"""Atomic, durable writes: a final name only ever holds a complete file (or folder).

Everything is written under a temporary name beside its destination, fsynced, then renamed into
place, and the directory is fsynced so the rename survives a power cut. Temporaries carry the
writer's process id, so a later writer removes those left behind by a killed process.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_folder", "atomic_write", "atomic_write_bytes", "atomic_write_text", "fsync_dir", "remove_stale_temporaries"]


def _umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (renames, new files) to disk; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` and give them the umask permissions."""
    mask = _umask()
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, 0o666 & ~mask)
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(folder, 0o777 & ~mask)
        fsync_dir(folder)


def _temp_prefix(name: str) -> str:
    return f".{name}.tmp-"


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and ".tmp-" in name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries in ``directory`` left by writers that no longer run; returns what was removed."""
    directory = Path(directory)
    removed = []
    try:
        entries = list(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if not _is_temporary(entry.name):
            continue
        pid_text = entry.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid_text.isdigit() and int(pid_text) != os.getpid() and not _pid_alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() and not entry.is_symlink() else entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(path)) from None


def _make_temp_dir(path: Path) -> Path:
    """A new temporary folder beside ``path``; a failure is reported against ``path`` itself."""
    try:
        return Path(tempfile.mkdtemp(dir=path.parent, prefix=f"{_temp_prefix(path.name)}{os.getpid()}-"))
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(path)) from None


def _run_writer(write: Callable[[Path], None], tmp: Path, final: Path) -> None:
    """Run a writer; a failure on a full file system becomes ``OSError(ENOSPC)`` naming ``final``.

    Writers such as ``torch.save`` and safetensors report a full disk with their own exception
    types and messages; the free space of the target's file system tells the cause.
    """
    try:
        write(tmp)
    except OSError:
        raise
    except Exception as e:
        try:
            stats = os.statvfs(final.parent)
            full = stats.f_bavail * stats.f_frsize < 1 << 20
        except OSError:
            full = False
        if full:
            raise OSError(errno.ENOSPC, "no space left on device (the previous file is intact)", str(final)) from e
        raise


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on ``tmp``, a path with ``path``'s name inside a new temporary folder
    beside it, then fsync and move what was written into place.

    The writer sees the final file name (some writers check the suffix); files get the umask
    permissions (``0o666`` less the umask) whatever the writer used. Companion files the writer
    adds beside it (a large ONNX model's ``NAME.data``) are moved first, so the main file never
    refers to a missing one. On any error ``path`` is untouched and the temporary is removed.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; expected a file name", str(path))
    _make_parent(path)
    remove_stale_temporaries(path.parent)
    tmp_dir = _make_temp_dir(path)
    try:
        _run_writer(write, tmp_dir / path.name, path)
        _fsync_tree(tmp_dir)
        for companion in sorted(p for p in tmp_dir.iterdir() if p.name != path.name):
            os.replace(companion, path.parent / companion.name)
        os.replace(tmp_dir / path.name, path)
        fsync_dir(path.parent)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (a full disk raises ``OSError`` naming the file)."""

    def write(tmp: Path) -> None:
        try:
            tmp.write_bytes(data)
        except OSError as e:
            raise type(e)(e.errno, e.strerror, str(path)) from None

    return atomic_write(path, write)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _link_tree(source: Path, target: Path, skip: set[str]) -> None:
    """Hard-link (or copy, across file systems) the entries of ``source`` missing from ``target``."""
    for entry in source.iterdir():
        if entry.name in skip or (target / entry.name).exists() or _is_temporary(entry.name):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, target / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target / entry.name)


def _link_or_copy(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def atomic_folder(directory: str | os.PathLike[str], write: Callable[[Path], None], replace: set[str] | None = None) -> Path:
    """Replace the folder ``directory`` as a unit: ``write(tmp)`` fills a new folder, which is swapped in.

    A reader sees the old folder or the new one, never a mix. When ``replace`` names the entries
    ``write`` produces, every other entry of the old folder (a run's ``last.pt``, its metrics) is
    carried into the new folder (hard-linked, so nothing is copied); without it the new folder is
    exactly what ``write`` wrote.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file; expected a folder", str(directory))
    _make_parent(directory)
    remove_stale_temporaries(directory.parent)
    tmp = _make_temp_dir(directory)
    try:
        _run_writer(write, tmp, directory)
        if directory.exists() and replace is not None:
            _link_tree(directory, tmp, replace)
        _fsync_tree(tmp)
        if not directory.exists():
            os.rename(tmp, directory)
        elif not _exchange(tmp, directory):
            old = _make_temp_dir(directory)
            os.rmdir(old)
            os.rename(directory, old)  # readers miss the folder for the moment between these two renames
            os.rename(tmp, directory)
            tmp = old
        fsync_dir(directory.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory

"""Atomic, durable writes: a final name only ever holds a complete file (or folder).

Everything is written under a temporary name beside its destination, fsynced, then renamed into
place, and the directory is fsynced so the rename survives a power cut. Temporaries carry the
writer's process id, so a later writer removes those left behind by a killed process.

Only regular files (and folders) are ever replaced: a device, FIFO or socket at the destination is
refused. A symbolic link is followed: the write lands in its target and the link stays. A folder
that cannot be renamed (a mount point, the working folder) gets its entries swapped one by one.
"""
from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OptionError

__all__ = ["atomic_folder", "atomic_write", "atomic_write_bytes", "atomic_write_text", "check_output_path", "fsync_dir", "remove_stale_temporaries"]


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


_KINDS = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str | None:
    """What a special file is ("a character device", ...), or None for a regular file, folder or link."""
    return next((name for test, name in _KINDS if test(mode)), None)


def check_output_path(path: str | os.PathLike[str]) -> Path:
    """The path a write to ``path`` lands on: a symbolic link's target (the link itself is kept).

    Refuses, in one line naming the path, a destination that exists and is a device, FIFO or
    socket: an atomic write replaces the file at the destination, and lucid only ever replaces
    regular files and folders.
    """
    path = Path(path)
    real = Path(os.path.realpath(path))
    try:
        mode = os.stat(real).st_mode
    except OSError:
        return real
    kind = _kind(mode)
    if kind is not None:
        shown = str(path) if real == path.absolute() else f"{path} (-> {real})"
        raise OptionError(f"{shown}: is {kind}, not a regular file; lucid writes only regular files and folders, choose another path")
    return real


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(e.errno, e.strerror, str(path)) from None


def _make_temp_dir(path: Path, inside: Path | None = None) -> Path:
    """A new temporary folder beside ``path`` (or in ``inside``); a failure is reported against ``path`` itself.

    A folder that exists but takes no new entries (``/proc``, ``/sys``) is said so, rather than
    the kernel's "No such file or directory".
    """
    folder = inside or path.parent
    try:
        return Path(tempfile.mkdtemp(dir=folder, prefix=f"{_temp_prefix(path.name)}{os.getpid()}-"))
    except OSError as e:
        reason = e.strerror
        if e.errno == errno.ENOENT and folder.is_dir():
            reason = f"{folder} does not accept new files ({e.strerror}); a special file system?"
        raise type(e)(e.errno, reason, str(path)) from None


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
    path = check_output_path(path)
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
    exactly what ``write`` wrote. A symbolic link is followed (its target is replaced, the link
    kept). A folder that cannot itself be renamed (a mount point, the working folder) has its
    entries swapped in one by one instead: each entry is whole, but for a moment a reader may see
    new and old entries side by side.
    """
    directory = check_output_path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "is a file; expected a folder", str(directory))
    if directory.is_dir() and _fixed_folder(directory):
        return _swap_contents(directory, write, replace)
    _make_parent(directory)
    remove_stale_temporaries(directory.parent)
    tmp = _make_temp_dir(directory)
    try:
        _run_writer(write, tmp, directory)
        if directory.exists() and replace is not None:
            _link_tree(directory, tmp, replace)
        _fsync_tree(tmp)
        tmp = _swap_in(tmp, directory)
        fsync_dir(directory.parent)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _swap_in(tmp: Path, directory: Path) -> Path:
    """Put the folder ``tmp`` at ``directory``; returns what is left to delete (the old folder, or nothing)."""
    if not directory.exists():
        os.rename(tmp, directory)
        return tmp
    if _exchange(tmp, directory):
        return tmp
    old = _make_temp_dir(directory)
    os.rmdir(old)
    os.rename(directory, old)  # readers miss the folder for the moment between these two renames
    os.rename(tmp, directory)
    return old


def _mount_points() -> set[str]:
    """The mount points of this process's namespace (bind mounts included), from /proc/self/mountinfo."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return set()
    points = set()
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            points.add(fields[4].encode().decode("unicode_escape"))
    return points


def _fixed_folder(directory: Path) -> bool:
    """Whether ``directory`` (resolved) cannot be renamed: a mount point, or this process's working folder."""
    if os.path.ismount(directory) or str(directory) in _mount_points():
        return True
    try:
        return os.path.samefile(directory, os.getcwd())
    except OSError:
        return False


def _swap_contents(directory: Path, write: Callable[[Path], None], replace: set[str] | None) -> Path:
    """``write`` into a temporary folder inside ``directory``, then move each entry it wrote into place."""
    remove_stale_temporaries(directory)
    tmp = _make_temp_dir(directory, inside=directory)
    try:
        _run_writer(write, tmp, directory)
        _fsync_tree(tmp)
        written = {entry.name for entry in tmp.iterdir()}
        for name in sorted(written):
            leftover = _swap_in(tmp / name, directory / name) if (tmp / name).is_dir() else _replace_file(tmp / name, directory / name)
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
        if replace is None:
            _remove_others(directory, keep=written)
        fsync_dir(directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def _replace_file(source: Path, target: Path) -> Path:
    if target.is_dir() and not target.is_symlink():
        raise IsADirectoryError(errno.EISDIR, "is a folder; expected a file name", str(target))
    os.replace(source, target)
    return source


def _remove_others(directory: Path, keep: set[str]) -> None:
    """Delete the entries of ``directory`` not in ``keep`` (temporaries and locks of live writers stay)."""
    for entry in directory.iterdir():
        if entry.name in keep or _is_temporary(entry.name) or entry.name == ".lock":
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()

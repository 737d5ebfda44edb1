"""The output folder of a run, kept as one unit.

A run folder is the ``save_pretrained`` folder of the best model plus ``last.pt`` (the training
state), ``metrics.jsonl``, and optionally ``ema/`` (the EMA model), ``checkpoints/`` and
``tensorboard/``. While a run writes it, it holds an exclusive lock on ``.lock`` inside the folder,
so a second run aimed at the same folder stops at once; a folder holding anything else is refused
unless the run may overwrite it.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from torch import nn

try:
    import fcntl  # POSIX: the lock that keeps two runs out of one folder
except ImportError:  # Windows: lucid imports, and `lucid train` says what it needs
    fcntl = None

from ..checkpoints.io import save_file
from ..core.checks import describe, is_int, parse_json
from ..core.errors import CheckpointError, ConfigError, MissingDependencyError
from ..core.fileio import atomic_write_text, remove_stale_temporaries
from .state import STATE_NAME

__all__ = ["LOCK_NAME", "METRICS_NAME", "RunFolder", "fresh_out_dir", "read_metrics", "refuse_if_in_use", "strict_json"]

METRICS_NAME = "metrics.jsonl"
LOCK_NAME = ".lock"
CHECKPOINTS = "checkpoints"


def fresh_out_dir(model_name: str) -> Path:
    """A new ``runs/<model>-<date>-<time>[-n]`` path that does not exist yet."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{model_name}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def strict_json(record: dict[str, Any]) -> str:
    """One JSON line; NaN and infinities (which JSON cannot hold) become ``null``."""
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
    return json.dumps(clean, allow_nan=False)


def read_metrics(run: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``run/metrics.jsonl`` (one per epoch)."""
    path = Path(run) / METRICS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file; expected a run folder written by lucid train")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                records.append(parse_json(line, f"{path}, line {number}"))  # bounded: depth, digits, no NaN
            except CheckpointError as e:
                raise ConfigError(str(e), "run") from None
    return records


def _ours(name: str) -> bool:
    return name == LOCK_NAME or (name.startswith(".") and ".tmp-" in name)


class RunFolder:
    """A locked run folder; :meth:`open` checks what it holds, then every write goes through here."""

    def __init__(self, path: Path, lock_fd: int):
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, resume: bool, overwrite: bool) -> RunFolder:
        """Lock ``path`` (created if missing) for a new run, or for continuing the run in it (``resume``).

        A new run refuses a folder that holds a training run or anything else, unless ``overwrite``.
        """
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"out: {path} is a file; expected a folder for the run (a new or an empty one)", "out")
        path.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        folder = cls(path, _lock(path))
        try:
            remove_stale_temporaries(path)
            if not resume:
                folder._claim(overwrite)
        except BaseException:
            folder.close()
            raise
        return folder

    def _claim(self, overwrite: bool) -> None:
        contents = sorted(p.name for p in self.path.iterdir() if not _ours(p.name))
        if not contents:
            return
        if not overwrite:
            if STATE_NAME in contents:
                raise ConfigError(f"out: {self.path} already holds a training run; continue it with --resume {self.path}, "
                                  "choose another --out, or pass --overwrite to replace it", "out")
            shown = ", ".join(contents[:3]) + (", ..." if len(contents) > 3 else "")
            raise ConfigError(f"out: {self.path} already holds other files ({shown}); choose another --out or pass --overwrite to replace them", "out")
        for name in contents:
            entry = self.path / name
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()

    def close(self) -> None:
        """Release the lock."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def __enter__(self) -> RunFolder:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def state_file(self) -> Path:
        """The run's training state, ``last.pt``."""
        return self.path / STATE_NAME

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.jsonl`` atomically with one strict-JSON line per record."""
        atomic_write_text(self.path / METRICS_NAME, "".join(strict_json(r) + "\n" for r in records))

    def metrics_upto(self, epoch: int) -> list[dict[str, Any]]:
        """The saved records of epochs 1..``epoch`` (those of a resumed run's finished epochs).

        Each record must be a JSON object with an int ``epoch``; anything else is refused naming the line.
        """
        path = self.path / METRICS_NAME
        if not path.is_file():
            return []
        try:
            records = read_metrics(self.path)
        except ConfigError as e:
            raise CheckpointError(str(e)) from None
        for number, record in enumerate(records, start=1):
            value = record.get("epoch") if isinstance(record, dict) else None
            if not is_int(value) or value < 1:
                shown = repr(value) if isinstance(record, dict) else type(record).__name__
                raise CheckpointError(f"{path}, record {number}: expected an object with an int epoch >= 1, got {shown[:80]}")
            for key in ("skipped_images", "nonfinite_steps"):  # summed when the run ends
                count = record.get(key, 0)
                if not is_int(count) or count < 0:
                    raise CheckpointError(f"{path}, record {number}: {key} must be an int >= 0, got {describe(count, 40)}")
        return [r for r in records if r["epoch"] <= epoch]

    def save_model(self, model: nn.Module, metadata: dict[str, Any], sub: str | None = None) -> None:
        """The model as a ``save_pretrained`` folder: the run folder itself, or its sub-folder ``sub``."""
        model.save_pretrained(self.path / sub if sub else self.path, metadata=metadata)  # type: ignore[operator]

    def save_checkpoint(self, state_dict: dict[str, Any], epoch: int, keep: int) -> None:
        """``checkpoints/epoch-N.safetensors`` for this epoch; only the last ``keep`` are kept."""
        folder = self.path / CHECKPOINTS
        save_file(state_dict, folder / f"epoch-{epoch:04d}.safetensors")
        for old in sorted(folder.glob("epoch-*.safetensors"))[:-keep]:
            old.unlink()


def refuse_if_in_use(path: str | os.PathLike[str]) -> None:
    """Refuse at once (the ConfigError of :meth:`RunFolder.open`) when another run holds ``path``'s lock; touches nothing."""
    lock = Path(path) / LOCK_NAME
    if lock.is_file():
        os.close(_lock(Path(path), claim=False))


def _lock(path: Path, claim: bool = True) -> int:
    """An exclusive, non-blocking lock on ``path/.lock``; a ConfigError when another process holds it.

    ``claim=False`` only tests the lock of an existing file (the caller closes the descriptor at once).
    """
    if fcntl is None:
        raise MissingDependencyError(f"out: locking {path} needs the POSIX module fcntl, which this system lacks; train on Linux or macOS")
    fd = os.open(path / LOCK_NAME, os.O_RDWR | (os.O_CREAT if claim else 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ConfigError(f"out: {path} is in use by another lucid train run (pid {holder}); wait for it or choose another --out", "out") from None
    if claim:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
    return fd

"""Atomic file writes: nothing is ever left half-written under the final name."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on ``tmp``, a path with ``path``'s name inside a new temporary folder
    beside it, then move what was written into place.

    The writer creates the file itself, so it gets the usual permissions (``0o666`` less the
    umask), and it sees the final file name (some writers check the suffix). Companion files the
    writer adds beside it (a large ONNX model's ``NAME.data``) are moved first, so the main file
    never refers to a missing one. On any error ``path`` is untouched and the folder is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        write(tmp_dir / path.name)
        for companion in sorted(p for p in tmp_dir.iterdir() if p.name != path.name):
            os.replace(companion, path.parent / companion.name)
        os.replace(tmp_dir / path.name, path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

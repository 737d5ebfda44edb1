"""The record of a run's training/validation split, so that evaluation can rebuild exactly that split.

A run trained on one class tree split by ``--val-split`` stores the fraction, the seed and a
SHA-256 of its validation file list (paths relative to the data folder) with the model. Evaluation
rebuilds the split from the same folder and checks the digest, so it never scores a training image
as a validation one, and says so when the folder has changed since.
"""
from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.checks import is_int
from ..core.constants import MAX_INT
from ..core.errors import CheckpointError, DataError
from .folder import folder_splits
from .preprocessing import Preprocessing

__all__ = ["files_digest", "rebuild_split", "split_record"]

Samples = list[tuple[str, int]]


def files_digest(root: str | os.PathLike[str], samples: Sequence[tuple[str, int]]) -> str:
    """SHA-256 of the sorted paths of ``samples``, relative to ``root`` (so a moved folder still matches)."""
    names = sorted(Path(os.path.relpath(path, root)).as_posix() for path, _ in samples)
    return hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()


def split_record(root: str | os.PathLike[str], val_split: float | None, seed: int, val_samples: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """What a run stores about its split: ``val_fraction`` (None for train/ + val/ folders), ``seed``,
    the number of validation images and the digest of their file list."""
    return {"val_fraction": val_split, "seed": seed, "val_count": len(val_samples), "val_sha256": files_digest(root, val_samples)}


def _checked(record: Any, source: str) -> tuple[float | None, int, int, str]:
    """The fields of a split record read from a file, each checked (they size and seed the split)."""
    if not isinstance(record, dict):
        raise CheckpointError(f"{source}: dataset split must be an object, got {type(record).__name__}")
    fraction, seed, count, digest = (record.get(k) for k in ("val_fraction", "seed", "val_count", "val_sha256"))
    if fraction is not None and not (isinstance(fraction, float) and math.isfinite(fraction) and 0 < fraction < 1):
        raise CheckpointError(f"{source}: dataset split val_fraction must be a number in (0, 1) or null, got {fraction!r}")
    for key, value in (("seed", seed), ("val_count", count)):
        if not is_int(value) or not 0 <= value <= MAX_INT:
            raise CheckpointError(f"{source}: dataset split {key} must be an int between 0 and {MAX_INT}, got {str(value)[:40]!r}")
    if not isinstance(digest, str) or len(digest) != 64:
        raise CheckpointError(f"{source}: dataset split val_sha256 must be a SHA-256 hex digest, got {str(digest)[:70]!r}")
    return fraction, seed, count, digest


def rebuild_split(root: str | os.PathLike[str], record: Any, prep: Preprocessing, source: str = "metadata") -> tuple[list[str], Samples, Samples]:
    """Class names, training samples and validation samples of the split ``record`` describes, rebuilt from ``root``.

    A folder whose validation files no longer match the recorded digest (images added, removed or
    renamed since training) is refused: its split would mix training and validation images.
    """
    fraction, seed, count, digest = _checked(record, source)
    train, val, classes = folder_splits(root, fraction, seed, prep)
    if files_digest(root, val.samples) != digest:
        raise DataError(
            f"--data: the images in {root} changed since training: its validation split ({count} images recorded, "
            f"{len(val.samples)} now) no longer matches the run's; pass --split all to score every image"
        )
    return classes, train.samples, val.samples

"""Image folders: one sub-folder per class (``root/<class>/<images>``), or ``root/train`` + ``root/val``.

Files are listed once (symbolic links followed, loops and duplicates skipped). A file that
cannot be decoded is skipped, not fatal: the dataset yields its path and :func:`collate_skipping`
drops it from the batch, so the training loop can warn once per file and count the skips (this
works with worker processes too). A class folder without any readable image is warned about
and counted.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from .decode import decode_image_file
from .digits import DIGITS_MEAN, DIGITS_STD, DigitsDataset, digits_splits
from .preprocessing import Preprocessing, default_preprocessing, describe_transform, eval_transform, min_crop_scale, train_transform
from .records import Batch, FolderRecords, ImageDataset, collate_skipping, warn
from .splits import Source, make_splits, missing_val_split

__all__ = [
    "DIGITS_MEAN",
    "DIGITS_STD",
    "IMAGE_EXTENSIONS",
    "Batch",
    "DataError",
    "DigitsDataset",
    "ImageFileDataset",
    "Preprocessing",
    "collate_skipping",
    "decode_image_file",
    "default_preprocessing",
    "describe_transform",
    "digits_splits",
    "eval_transform",
    "folder_records",
    "folder_splits",
    "min_crop_scale",
    "scan_class_folders",
    "train_transform",
]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


def _walk_files(folder: Path, unreadable: list[str]) -> list[str]:
    """Image files under ``folder``, following symbolic links but entering each real folder once.

    A link that loops back (``a/b -> ..``) or points to a folder already seen is not entered
    again, and a file reached twice (through a link) is listed once. Folders that cannot be
    listed are added to ``unreadable``.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    found: list[str] = []
    for current, dirs, files in os.walk(folder, followlinks=True, onerror=lambda e: unreadable.append(str(e.filename))):
        try:
            st = os.stat(current)
        except OSError:
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen_dirs:
            dirs[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(current, name)
            real = os.path.realpath(path)
            if name.lower().endswith(IMAGE_EXTENSIONS) and real not in seen_files and os.path.isfile(real):
                seen_files.add(real)
                found.append(path)
    return found


def scan_class_folders(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted sub-folder names) and ``(path, class index)`` for every image file under ``root``.

    Each file counts once, however many symbolic links lead to it (a file linked into two class
    folders stays in the first), so a sample can never be in both the training and the validation
    split. Class folders that are empty or cannot be read stay classes (the model keeps one output
    per folder) and are reported in one warning line with their count.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(f"--data: folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise DataError(f"--data: {str(root)!r} is not a folder")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise DataError(f"--data: {str(root)!r} has no class sub-folders; expected {root}/<class>/<image files>")
    samples, taken, empty, unreadable = [], set(), [], []
    for index, name in enumerate(classes):
        before = len(samples)
        for path in _walk_files(root / name, unreadable):
            real = os.path.realpath(path)
            if real not in taken:
                taken.add(real)
                samples.append((path, index))
        if len(samples) == before:
            empty.append(name)
    if not samples:
        raise DataError(f"--data: no image files ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {str(root)!r}")
    _warn_empty(root, empty, unreadable)
    return classes, samples


def _warn_empty(root: Path, empty: list[str], unreadable: list[str]) -> None:
    if unreadable:
        warn(f"{len(unreadable)} folder(s) under {root} could not be read and were skipped: {', '.join(unreadable[:5])}")
    if empty:
        shown = ", ".join(empty[:10]) + (f", ... {len(empty) - 10} more" if len(empty) > 10 else "")
        warn(f"{len(empty)} class folder(s) of {root} hold no readable image (classes with 0 images): {shown}")


def folder_records(root: str | os.PathLike[str]) -> dict[str, FolderRecords]:
    """``{"train", "val"}`` records from ``root/train`` + ``root/val``, else ``{"all"}`` for one class tree."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data: folder {str(root)!r} {'is not a folder' if root.exists() else 'does not exist'}")
    if (root / "train").is_dir() and (root / "val").is_dir():
        return {part: FolderRecords(*reversed(scan_class_folders(root / part))) for part in ("train", "val")}
    classes, samples = scan_class_folders(root)
    return {"all": FolderRecords(samples, classes)}


class ImageFileDataset(ImageDataset):
    """``(path, target)`` samples decoded on access; unreadable files come back as their path (a ``str``)."""

    def __init__(self, samples: Sequence[tuple[str, int]], channels: int, transform: Callable[[Any], Any]):
        targets = [t for _, t in samples]
        classes = [str(i) for i in range(max(targets, default=-1) + 1)]
        super().__init__(FolderRecords(samples, classes), transform, channels)


def folder_splits(
    root: str | os.PathLike[str], val_split: float | None, seed: int, prep: Preprocessing,
    auto_augment: str | None = None, random_erase: float = 0.0,
) -> tuple[ImageDataset, ImageDataset, list[str]]:
    """Training and validation datasets from ``root/train`` + ``root/val``, or one class tree split by ``val_split``."""
    parts = (Path(root) / "train").is_dir() and (Path(root) / "val").is_dir()
    if val_split is None and Path(root).is_dir() and not parts:  # say what is missing before scanning the folder
        raise missing_val_split(str(root))
    splits = make_splits(Source("folder", str(root), folder_records(root)), val_split, seed, prep, auto_augment, random_erase)
    return splits.train, splits.val, splits.classes

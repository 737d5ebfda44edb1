"""Which images ``lucid eval`` scores: the run's validation split by default, its training split or every image on request.

A run records its split (:mod:`lucid.data.splits`); evaluating on the run's own data rebuilds that
split, so training images are never scored as validation ones. Another folder is scored through
its ``val/`` (or ``train/``) sub-folder when it has one, or whole with ``--split all``. Each choice
comes with a sentence that says which images were scored.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.checks import check_choice
from ..core.errors import DataError
from ..data.folder import scan_class_folders
from ..data.preprocessing import Preprocessing
from ..data.split_record import rebuild_split

__all__ = ["SPLITS", "Selection", "digits_selection", "folder_selection"]

SPLITS = ("val", "train", "all")
Samples = list[tuple[str, int]]
Selection = tuple[Samples, list[str], str]  # samples, their class names, what they are


def digits_selection(dataset: dict[str, Any], split: str | None) -> str:
    """The digits split to score (``val`` by default) and its description."""
    split = check_choice("split", split or "val", SPLITS)
    what = {"val": "the validation split", "train": "the training split", "all": "every image"}[split]
    return f"{what} of the bundled digits (seed {dataset.get('seed')}, validation fraction {dataset.get('val_fraction')})"


def folder_selection(dataset: dict[str, Any], data: str | os.PathLike[str] | None, split: str | None, prep: Preprocessing) -> Selection:
    """The image files to score, their folder's class names, and a sentence saying which images they are."""
    if split is not None:
        check_choice("split", split, SPLITS)
    recorded = dataset.get("path") if dataset.get("name") == "folder" else None
    if data is None:
        if recorded is None:
            raise DataError("--data is needed: the model does not record the images it was trained on")
        data = recorded
    root = Path(data)
    if recorded is not None and _same_folder(root, Path(str(recorded))):
        return _own_split(root, dataset, split or "val", prep)
    return _other_folder(root, split)


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False


def _own_split(root: Path, dataset: dict[str, Any], split: str, prep: Preprocessing) -> Selection:
    """The run's own split of its own training folder (every image needs no split)."""
    if split == "all":
        return _other_folder(root, split)
    if "split" not in dataset:
        if (root / "train").is_dir() and (root / "val").is_dir():
            return _other_folder(root, split)
        raise DataError(f"--data: {root} is the run's own training folder, but the run did not record its validation split "
                        "(trained by an older lucid); pass --split all to score every image, training images included")
    classes, train, val = rebuild_split(root, dataset["split"], prep)
    record = dataset["split"]
    how = (f"seed {record['seed']}, validation fraction {record['val_fraction']}" if record.get("val_fraction") is not None
           else "its train/ and val/ folders")
    picked, what = (val, "the validation split") if split == "val" else (train, "the training split")
    return picked, classes, f"{what} of {root}, as the run split it ({how})"


def _other_folder(root: Path, split: str | None) -> Selection:
    """A folder the run did not split: its val/ or train/ sub-folder, or the whole tree."""
    layout = (root / "train").is_dir() and (root / "val").is_dir()
    split = split or ("val" if layout else "all")
    if split == "all" and layout:
        train_classes, train = scan_class_folders(root / "train")
        val_classes, val = scan_class_folders(root / "val")
        if train_classes != val_classes:
            raise DataError(f"--data: {root}/train and {root}/val hold different class folders; score them one at a time with --split")
        return train + val, train_classes, f"every image in {root}/train and {root}/val"
    if split == "all":
        classes, samples = scan_class_folders(root)
        return samples, classes, f"every image in {root}"
    if not layout:
        raise DataError(f"--split {split}: {root} has no train/ and val/ folders and is not the folder the run split; "
                        "pass --split all to score every image in it")
    classes, samples = scan_class_folders(root / split)
    return samples, classes, f"every image in {root / split}"

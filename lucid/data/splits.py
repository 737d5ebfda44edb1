"""Training, validation and evaluation datasets from any data source, the same way for every format.

A :class:`Source` holds the records of one ``--data`` location as parts: ``train`` + ``val``
when the location already separates them (``train/`` and ``val/`` folders, shard folders or
dataset splits), else ``all``, which ``--val-split`` divides by a seeded permutation.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import DataError
from .preprocessing import Preprocessing, eval_transform, train_transform
from .records import ImageDataset, Records, class_remap, split_indices

__all__ = ["Source", "Splits", "eval_dataset", "make_splits", "missing_val_split"]


@dataclass
class Source:
    """The records of one data location: ``kind`` (folder, shards, hf), where it is, its parts and skipped samples."""

    kind: str
    location: str
    parts: dict[str, Records]
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """Class names of the training part (or of the only part)."""
        return list(self.parts["train" if "train" in self.parts else "all"].classes)

    def describe(self) -> dict[str, Any]:
        """What a run records about its data: format, location, samples per part and skips."""
        counts = {part: len(records) for part, records in self.parts.items()}
        return {"name": self.kind, "path": self.location, "samples": counts, "skipped": dict(self.skipped)}


@dataclass
class Splits:
    """Training and validation datasets over the same classes, and how they were made."""

    train: ImageDataset
    val: ImageDataset
    classes: list[str]
    description: dict[str, Any]


def make_splits(source: Source, val_split: float | None, seed: int, prep: Preprocessing, auto_augment: str | None = None,
                random_erase: float = 0.0, train_steps: Callable[[Any], Any] | None = None) -> Splits:
    """Training data gets :func:`train_transform` (or ``train_steps``), validation :func:`eval_transform`.

    A source with ``train`` and ``val`` parts is used as it is (``val_split`` must then be None);
    one with a single part is split by ``val_split`` and ``seed``, which the description records.
    """
    train_tf = train_steps or train_transform(prep, auto_augment, random_erase)
    val_tf = eval_transform(prep)
    description = source.describe()
    if "train" in source.parts:
        if val_split is not None:
            raise DataError(f"--val-split: {source.location} already has train and val parts; drop --val-split or point --data at one part")
        train_records, val_records = source.parts["train"], source.parts["val"]
        remap = class_remap(val_records.classes, train_records.classes, f"{source.location} (val)", f"its training part {train_records.classes}")
        train = ImageDataset(train_records, train_tf, prep.channels)
        val = ImageDataset(val_records, val_tf, prep.channels, classes=train_records.classes, remap=remap)
        return Splits(train, val, list(train_records.classes), description)
    if val_split is None:
        raise missing_val_split(source.location)
    records = source.parts["all"]
    train_idx, val_idx = split_indices(len(records), val_split, seed)
    description.update(val_split=val_split, seed=seed, val_samples=len(val_idx))
    train = ImageDataset(records, train_tf, prep.channels, indices=train_idx)
    val = ImageDataset(records, val_tf, prep.channels, indices=val_idx)
    return Splits(train, val, list(records.classes), description)


def missing_val_split(location: str) -> DataError:
    """The error for a source with one part and no ``--val-split``."""
    return DataError(f"--data: {location} has no separate train and val parts; give --val-split (e.g. 0.1) to split it")


def eval_dataset(source: Source, class_names: list[str], prep: Preprocessing) -> ImageDataset:
    """The ``val`` part (or the only part) of ``source``, its classes matched to a model's ``class_names`` by name."""
    records = source.parts["val"] if "val" in source.parts else source.parts["all"]
    remap = class_remap(records.classes, class_names, source.location, f"the model (it knows {len(class_names)})")
    return ImageDataset(records, eval_transform(prep), prep.channels, classes=class_names, remap=remap)

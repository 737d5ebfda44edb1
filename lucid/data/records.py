"""One dataset class for every data format: *records* (what is stored) plus a transform (what the model sees).

A records object is map-style: ``len(records)``, ``records.source(i)`` (a file path or the
encoded bytes of image ``i``), ``records.target(i)`` (its class index), ``records.name(i)``
(how to name it in a message) and ``records.classes``. Image folders, WebDataset shards and
Hugging Face datasets each provide one, so splitting, validation, evaluation and the
``DistributedSampler`` (exactly-once coverage, the same order for the same seed) work the same
way for all of them.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch.utils.data import Dataset

from ..core.errors import DataError
from .decode import DECODE_ERRORS, decode_image_file

__all__ = ["Batch", "FolderRecords", "ImageDataset", "Records", "class_remap", "collate_skipping", "split_indices", "warn"]


def warn(message: str) -> None:
    """One warning line on stderr (the same form the training loop uses)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


class Records(Protocol):
    """Random access to the encoded images of a dataset and their class indices."""

    classes: list[str]

    def __len__(self) -> int: ...

    def source(self, index: int) -> str | bytes:
        """The encoded image of sample ``index``: a file path or the image bytes."""

    def target(self, index: int) -> int:
        """The class index of sample ``index``."""

    def name(self, index: int) -> str:
        """A readable name of sample ``index`` (its file or shard member), for messages."""


class FolderRecords:
    """Image files and their class indices (see :func:`lucid.data.folder.scan_class_folders`)."""

    def __init__(self, samples: Sequence[tuple[str, int]], classes: Sequence[str]) -> None:
        self.samples = list(samples)
        self.classes = list(classes)

    def __len__(self) -> int:
        return len(self.samples)

    def source(self, index: int) -> str:
        """The encoded image of sample ``index``: a file path or the image bytes."""
        return self.samples[index][0]

    def target(self, index: int) -> int:
        """The class index of sample ``index``."""
        return self.samples[index][1]

    def name(self, index: int) -> str:
        """A readable name of sample ``index`` (its file or shard member), for messages."""
        return self.samples[index][0]


@dataclass
class Batch:
    """A collated batch: images, targets and the names of samples that had to be skipped."""

    images: torch.Tensor
    targets: torch.Tensor
    skipped: list[str] = field(default_factory=list)


def collate_skipping(samples: Sequence[tuple[torch.Tensor, int] | str]) -> Batch:
    """Stack ``(image, target)`` samples; a ``str`` sample names an image that could not be decoded."""
    good = [s for s in samples if not isinstance(s, str)]
    skipped = [s for s in samples if isinstance(s, str)]
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), skipped)
    images = torch.stack([s[0] for s in good])
    targets = torch.tensor([s[1] for s in good], dtype=torch.long)
    return Batch(images, targets, skipped)


class ImageDataset(Dataset):
    """Map-style dataset over ``records`` (optionally a subset ``indices``), each image passed through ``transform``.

    ``transform`` takes the encoded image (path or bytes) when its first step decodes (the
    transforms of :mod:`lucid.data.preprocessing` do); any other transform gets a decoded ``uint8``
    tensor with ``channels`` channels. An image that cannot be decoded comes back as its name (a
    ``str``), which :func:`collate_skipping` drops and reports. ``remap`` maps the records' class
    indices to ``classes`` (a validation set matched to the training classes by name).
    """

    def __init__(self, records: Records, transform: Callable[[Any], Any], channels: int = 3, indices: Sequence[int] | None = None,
                 classes: Sequence[str] | None = None, remap: dict[int, int] | None = None) -> None:
        self.records = records
        self.transform = transform
        self.channels = channels
        self.indices = list(range(len(records))) if indices is None else list(indices)
        self.classes = list(records.classes if classes is None else classes)
        self.remap = remap

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def targets(self) -> list[int]:
        """The class index of every sample, in order (cheap: nothing is decoded)."""
        return [self._target(i) for i in self.indices]

    def _takes_sources(self) -> bool:
        """Whether the transform decodes (its first step takes the encoded image), read at each access
        since a caller may replace the transform."""
        steps = getattr(self.transform, "transforms", [self.transform])
        return bool(steps) and getattr(steps[0], "decodes_sources", False)

    @property
    def samples(self) -> list[tuple[str, int]]:
        """``(name, class index)`` of every sample, in order: the file path for image folders."""
        return [(self.records.name(i), self._target(i)) for i in self.indices]

    def _target(self, index: int) -> int:
        target = self.records.target(index)
        return target if self.remap is None else self.remap[target]

    def __getitem__(self, position: int) -> tuple[Any, int] | str:
        index = self.indices[position]
        try:
            source = self.records.source(index)
            image = self.transform(source if self._takes_sources() else decode_image_file(source, self.channels))
        except DECODE_ERRORS:
            return self.records.name(index)
        return image, self._target(index)


def split_indices(count: int, val_split: float, seed: int) -> tuple[list[int], list[int]]:
    """Training and validation indices of ``count`` samples: a seeded permutation, ``val_split`` of it held out (sorted)."""
    if not 0.0 < val_split < 1.0:
        raise DataError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(count * val_split))
    if n_val >= count:
        raise DataError(f"--val-split {val_split} leaves no training images out of {count}")
    return sorted(order[n_val:]), sorted(order[:n_val])


def class_remap(names: Sequence[str], known: Sequence[str], where: str, what: str) -> dict[int, int]:
    """Map class indices over ``names`` to indices over ``known`` by name; an unknown name is a ``DataError``."""
    unknown = sorted(set(names) - set(known))
    if unknown:
        shown = unknown if len(unknown) <= 10 else unknown[:10] + [f"... {len(unknown) - 10} more"]
        raise DataError(f"--data: class(es) {shown} in {where} are not classes of {what}")
    position = {name: i for i, name in enumerate(known)}
    return {i: position[name] for i, name in enumerate(names)}

"""Datasets for ``lucid train``: scikit-learn's bundled digits and image folders.

Image folders are decoded with Pillow and augmented with ``torchvision.transforms.v2``.
A file that cannot be decoded is skipped, not fatal: the dataset yields ``None`` for it and
:func:`collate_skipping` drops it from the batch and reports its path, so the training loop
can warn once per file and count the skips (this works with worker processes too).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..core.constants import IMAGENET_MEAN, IMAGENET_STD, MAX_RESIZE
from ..core.errors import DataError

__all__ = [
    "DIGITS_MEAN",
    "DIGITS_STD",
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
    "folder_splits",
    "min_crop_scale",
    "scan_class_folders",
    "train_transform",
]

# Mean and standard deviation of all pixels of load_digits scaled to [0, 1] and upsampled to 32x32
# (computed once, fixed here so that training, evaluation and prediction normalise identically).
DIGITS_MEAN = (0.305,)
DIGITS_STD = (0.324,)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


@dataclass
class Preprocessing:
    """How images become model inputs; saved with the model so eval/predict match training."""

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: float = 0.875  # evaluation resizes the short side to image_size / crop, then centre-crops

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with the trained model."""
        return {"image_size": self.image_size, "channels": self.channels, "mean": list(self.mean), "std": list(self.std), "crop": self.crop}

    @classmethod
    def from_dict(cls, data: Any, source: str = "metadata") -> Preprocessing:
        """Rebuild from :meth:`to_dict` output; damaged values raise ``CheckpointError`` naming ``source`` and the key."""
        from ..core.errors import CheckpointError

        def bad(key: str, expected: str) -> CheckpointError:
            got = data.get(key, "nothing") if isinstance(data, dict) else data
            return CheckpointError(f"{source}: preprocessing {key} must be {expected}, got {got!r}")

        if not isinstance(data, dict):
            raise bad("", "a dict")
        try:
            size, channels = int(data["image_size"]), int(data["channels"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise bad("image_size" if not _is_int(data.get("image_size")) else "channels", "an int") from None
        if not 8 <= size <= 4096:
            raise bad("image_size", "an int between 8 and 4096")
        if channels not in (1, 3):
            raise bad("channels", "1 or 3")
        stats = {}
        for key in ("mean", "std"):
            value = data.get(key)
            if not isinstance(value, (list, tuple)) or len(value) != channels or not all(_is_finite(v) for v in value):
                raise bad(key, f"{channels} finite number(s)")
            stats[key] = tuple(float(v) for v in value)
        if not all(abs(v) <= 1e3 for v in stats["mean"]):
            raise bad("mean", "numbers between -1000 and 1000 (pixels are in [0, 1])")
        if not all(1e-4 <= v <= 1e3 for v in stats["std"]):
            raise bad("std", "numbers between 0.0001 and 1000")
        crop = data.get("crop", 0.875)
        if not _is_finite(crop) or not 0 < crop <= 1 or size / crop > MAX_RESIZE:
            raise bad("crop", f"a number in (0, 1] with image_size / crop at most {MAX_RESIZE} (the resize before the crop)")
        return cls(size, channels, stats["mean"], stats["std"], float(crop))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    import math

    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class Batch:
    """A collated batch: images, targets and the paths of files that had to be skipped."""

    images: torch.Tensor
    targets: torch.Tensor
    skipped: list[str] = field(default_factory=list)


def collate_skipping(samples: Sequence[tuple[torch.Tensor, int] | str]) -> Batch:
    """Stack ``(image, target)`` samples; a ``str`` sample is the path of an unreadable file."""
    good = [s for s in samples if not isinstance(s, str)]
    skipped = [s for s in samples if isinstance(s, str)]
    if not good:
        return Batch(torch.empty(0), torch.empty(0, dtype=torch.long), skipped)
    images = torch.stack([s[0] for s in good])
    targets = torch.tensor([s[1] for s in good], dtype=torch.long)
    return Batch(images, targets, skipped)


# ----------------------------------------------------------------------------- digits


class DigitsDataset(Dataset):
    """Images already in memory (``N x C x H x W`` floats in [0, 1]); ``transform`` normalises (and augments) each item."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.images = images
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


def digits_splits(image_size: int, val_fraction: float, seed: int, augment: bool, auto_augment: str | None = None,
                  random_erase: float = 0.0) -> tuple[DigitsDataset, DigitsDataset, list[str], Preprocessing]:
    """scikit-learn's 1,797 handwritten digits, upsampled to ``image_size``, split by a seeded permutation.

    The split depends only on ``seed`` and ``val_fraction``; training images get a small random
    affine jitter (rotation, shift, scale) when ``augment`` is true, then the optional
    ``auto_augment`` policy and random erasing. Digits are not flipped.
    """
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from torchvision.transforms import v2

    digits = load_digits()
    pixels = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    pixels = F.interpolate(pixels, size=(image_size, image_size), mode="bilinear", align_corners=False).clamp_(0, 1)
    targets = torch.as_tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(len(targets) * val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    prep = Preprocessing(image_size, 1, DIGITS_MEAN, DIGITS_STD, crop=1.0)
    normalize = v2.Normalize(list(DIGITS_MEAN), list(DIGITS_STD))
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = []
    if augment:
        steps.append(v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1), fill=0.0))
    if auto_augment:
        steps += [v2.ToDtype(torch.uint8, scale=True), _auto_augment(auto_augment), v2.ToDtype(torch.float32, scale=True)]
    steps.append(normalize)
    if random_erase > 0:
        steps.append(v2.RandomErasing(p=random_erase, value=0.0))
    train = DigitsDataset(pixels[train_idx], targets[train_idx], v2.Compose(steps))
    val = DigitsDataset(pixels[val_idx], targets[val_idx], normalize)
    return train, val, [str(i) for i in range(10)], prep


def _auto_augment(policy: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """torchvision's RandAugment, TrivialAugmentWide or AutoAugment (ImageNet policy) on ``uint8`` images."""
    from torchvision.transforms import v2

    return {"randaugment": v2.RandAugment, "trivialaugment": v2.TrivialAugmentWide, "autoaugment": v2.AutoAugment}[policy]()


# ----------------------------------------------------------------------------- image folders


def _walk_files(folder: Path) -> list[str]:
    """Image files under ``folder``, following symbolic links but entering each real folder once.

    A link that loops back (``a/b -> ..``) or points to a folder already seen is not entered
    again, and a file reached twice (through a link) is listed once.
    """
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    found: list[str] = []
    for current, dirs, files in os.walk(folder, followlinks=True):
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


def image_files(folder: str | os.PathLike[str]) -> list[str]:
    """Image files anywhere under ``folder``, sorted, each once (links followed, loops entered once)."""
    return _walk_files(Path(folder))


def scan_class_folders(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """Class names (sorted sub-folder names) and ``(path, class index)`` for every image file under ``root``.

    Each file counts once, however many symbolic links lead to it (a file linked into two class
    folders stays in the first), so a sample can never be in both the training and the validation split.
    """
    if not root.exists():
        raise DataError(f"--data: folder {str(root)!r} does not exist")
    if not root.is_dir():
        raise DataError(f"--data: {str(root)!r} is not a folder")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))
    if not classes:
        raise DataError(f"--data: {str(root)!r} has no class sub-folders; expected {root}/<class>/<image files>")
    samples, taken = [], set()
    for index, name in enumerate(classes):
        for path in _walk_files(root / name):
            real = os.path.realpath(path)
            if real not in taken:
                taken.add(real)
                samples.append((path, index))
    if not samples:
        raise DataError(f"--data: no image files ({', '.join(IMAGE_EXTENSIONS)}) in the class folders of {str(root)!r}")
    return classes, samples


def decode_image_file(path: str, channels: int) -> torch.Tensor:
    """Decode an image file to a ``uint8`` ``C x H x W`` tensor with ``channels`` (1 or 3) channels.

    Decoding goes through Pillow, torchvision's own image-folder loader (``torchvision.io``'s
    decoders are deprecated as of torchvision 0.29). Raises ``OSError`` or ``ValueError`` for
    files that are not readable images.
    """
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    try:
        with Image.open(path) as image:
            return pil_to_tensor(image.convert("L" if channels == 1 else "RGB"))
    except (SyntaxError, Image.DecompressionBombError) as e:  # Pillow raises these for some malformed files
        raise ValueError(f"{path}: {e}") from None


def min_crop_scale(image_size: int) -> float:
    """The smallest fraction of an image's area that a training crop at ``image_size`` px may keep.

    0.08, the usual choice for ImageNet, from 224 px up; below that it grows in proportion to
    ``224 / image_size`` (0.56 at 32 px, 1.0 below 18 px). A small image has little detail to
    lose: cropped to 8% of its area, a 32 px image keeps 9 px along a side, blown up to 32. With
    this bound the smallest crop of an image stored at the training size keeps 24 of 32 px along
    a side, 34 of 64 and 63 of 224.
    """
    return min(1.0, 0.08 * max(1.0, 224 / image_size))


def train_transform(prep: Preprocessing, auto_augment: str | None = None, random_erase: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    """Random-resized crop (down to :func:`min_crop_scale` of the area) and horizontal flip (then the
    optional ``auto_augment`` policy), scale to [0, 1], normalise, and erase a random rectangle with
    probability ``random_erase``."""
    from torchvision.transforms import v2

    steps = [
        v2.RandomResizedCrop(prep.image_size, scale=(min_crop_scale(prep.image_size), 1.0), antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    if auto_augment:
        steps.append(_auto_augment(auto_augment))
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(prep.mean), list(prep.std))]
    if random_erase > 0:
        steps.append(v2.RandomErasing(p=random_erase, value=0.0))
    return v2.Compose(steps)


def eval_transform(prep: Preprocessing) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resize the short side to ``image_size / crop``, centre-crop ``image_size``, scale and normalise."""
    from torchvision.transforms import v2

    return v2.Compose([
        v2.Resize(int(round(prep.image_size / prep.crop)), antialias=True),
        v2.CenterCrop(prep.image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(prep.mean), list(prep.std)),
    ])


def describe_transform(transform: Callable[[torch.Tensor], torch.Tensor] | None) -> list[str]:
    """Each step of a per-image pipeline as one line of text, so a run can print and save what it applied.

    ``None`` (images used as they are) gives an empty list.
    """
    if transform is None:
        return []
    steps = getattr(transform, "transforms", [transform])
    return [" ".join(repr(step).split()) for step in steps]


class ImageFileDataset(Dataset):
    """``(path, target)`` samples decoded on access; unreadable files come back as their path (a ``str``)."""

    def __init__(self, samples: Sequence[tuple[str, int]], channels: int, transform: Callable[[torch.Tensor], torch.Tensor]):
        self.samples = list(samples)
        self.channels = channels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | str:
        path, target = self.samples[index]
        try:
            image = decode_image_file(path, self.channels)
        except (OSError, ValueError):
            return path
        return self.transform(image), target


def default_preprocessing(image_size: int, channels: int) -> Preprocessing:
    """ImageNet normalisation (averaged over RGB for one-channel models)."""
    if channels == 3:
        return Preprocessing(image_size, 3, IMAGENET_MEAN, IMAGENET_STD)
    if channels == 1:
        return Preprocessing(image_size, 1, (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,))
    raise DataError(f"image folders need a model with in_channels 1 (grey) or 3 (RGB), got in_channels={channels}")


def folder_splits(
    root: str | os.PathLike[str], val_split: float | None, seed: int, prep: Preprocessing,
    auto_augment: str | None = None, random_erase: float = 0.0,
) -> tuple[ImageFileDataset, ImageFileDataset, list[str]]:
    """Training and validation datasets from ``root/train`` + ``root/val``, or one class tree split by ``val_split``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"--data: folder {str(root)!r} {'is not a folder' if root.exists() else 'does not exist'}")
    train_dir, val_dir = root / "train", root / "val"
    if train_dir.is_dir() and val_dir.is_dir():
        if val_split is not None:
            raise DataError(f"--val-split: {root} already has train/ and val/ folders; drop --val-split or point --data at one class tree")
        classes, train_samples = scan_class_folders(train_dir)
        val_classes, val_samples = scan_class_folders(val_dir)
        unknown = sorted(set(val_classes) - set(classes))
        if unknown:
            raise DataError(f"--data: {val_dir} has class folder(s) {unknown} that {train_dir} lacks")
        remap = {i: classes.index(name) for i, name in enumerate(val_classes)}
        val_samples = [(p, remap[t]) for p, t in val_samples]
    else:
        if val_split is None:
            raise DataError(f"--data: {root} has no train/ and val/ sub-folders; give --val-split (e.g. 0.1) to split one class tree")
        if not 0.0 < val_split < 1.0:
            raise DataError(f"--val-split must be between 0 and 1 (exclusive), got {val_split}")
        classes, samples = scan_class_folders(root)
        order = torch.randperm(len(samples), generator=torch.Generator().manual_seed(seed)).tolist()
        n_val = max(1, round(len(samples) * val_split))
        if n_val >= len(samples):
            raise DataError(f"--val-split {val_split} leaves no training images out of {len(samples)}")
        val_samples = [samples[i] for i in sorted(order[:n_val])]
        train_samples = [samples[i] for i in sorted(order[n_val:])]
    train = ImageFileDataset(train_samples, prep.channels, train_transform(prep, auto_augment, random_erase))
    val = ImageFileDataset(val_samples, prep.channels, eval_transform(prep))
    return train, val, classes

"""How images become model inputs: the saved preprocessing, and the training and evaluation transforms.

The training transform takes the encoded image (a path or bytes) and decodes it itself, so that
its crop decodes only the pixels it keeps (see :mod:`lucid.data.decode`); given an already decoded
``uint8`` tensor it works the same way on it. The evaluation transform takes a decoded image.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import v2

from ..core.checks import is_int
from ..core.constants import IMAGENET_MEAN, IMAGENET_STD, MAX_RESIZE
from ..core.errors import CheckpointError, DataError
from .decode import DecodeRandomResizedCrop

__all__ = [
    "Preprocessing",
    "ToNormalizedFloat",
    "augment_policy",
    "default_preprocessing",
    "describe_transform",
    "eval_transform",
    "min_crop_scale",
    "train_transform",
]


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
        def bad(key: str, expected: str) -> CheckpointError:
            got = data.get(key, "nothing") if isinstance(data, dict) else data
            return CheckpointError(f"{source}: preprocessing {key} must be {expected}, got {got!r}")

        if not isinstance(data, dict):
            raise bad("", "a dict")
        try:
            size, channels = int(data["image_size"]), int(data["channels"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise bad("image_size" if not is_int(data.get("image_size")) else "channels", "an int") from None
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


def _is_finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)



def default_preprocessing(image_size: int, channels: int) -> Preprocessing:
    """ImageNet normalisation (averaged over RGB for one-channel models)."""
    if channels == 3:
        return Preprocessing(image_size, 3, IMAGENET_MEAN, IMAGENET_STD)
    if channels == 1:
        return Preprocessing(image_size, 1, (sum(IMAGENET_MEAN) / 3,), (sum(IMAGENET_STD) / 3,))
    raise DataError(f"image folders need a model with in_channels 1 (grey) or 3 (RGB), got in_channels={channels}")


class ToNormalizedFloat(v2.Transform):
    """``uint8`` image to ``float32``, scaled to [0, 1] and normalised with ``mean``/``std``, in one step.

    The same as ``v2.ToDtype(torch.float32, scale=True)`` then ``v2.Normalize(mean, std)``, as one
    multiply-subtract (``x * 1/(255 std) - mean/std``) with no intermediate image: the input
    pipeline's last per-pixel pass. A floating-point image is taken as already in [0, 1].
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.mean, self.std = list(mean), list(std)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) / std_t

    def forward(self, *inputs: Any) -> Any:
        image = inputs[0] if len(inputs) == 1 else inputs
        if image.is_floating_point():
            return v2.functional.normalize(image, self.mean, self.std)
        return image.to(torch.float32).mul_(self._scale).sub_(self._shift)


def augment_policy(policy: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """torchvision's RandAugment, TrivialAugmentWide or AutoAugment (ImageNet policy) on ``uint8`` images."""
    return {"randaugment": v2.RandAugment, "trivialaugment": v2.TrivialAugmentWide, "autoaugment": v2.AutoAugment}[policy]()


def min_crop_scale(image_size: int) -> float:
    """The smallest fraction of an image's area that a training crop at ``image_size`` px may keep.

    0.08, the usual choice for ImageNet, from 224 px up; below that it grows in proportion to
    ``224 / image_size`` (0.56 at 32 px, 1.0 below 18 px). A small image has little detail to
    lose: cropped to 8% of its area, a 32 px image keeps 9 px along a side, blown up to 32. With
    this bound the smallest crop of an image stored at the training size keeps 24 of 32 px along
    a side, 34 of 64 and 63 of 224.
    """
    return min(1.0, 0.08 * max(1.0, 224 / image_size))


def train_transform(prep: Preprocessing, auto_augment: str | None = None, random_erase: float = 0.0) -> Callable[[Any], torch.Tensor]:
    """Random-resized crop (down to :func:`min_crop_scale` of the area, decoding only what it keeps)
    and horizontal flip (then the optional ``auto_augment`` policy), scale to [0, 1], normalise, and
    erase a random rectangle with probability ``random_erase``."""
    steps = [
        DecodeRandomResizedCrop(prep.image_size, prep.channels, scale=(min_crop_scale(prep.image_size), 1.0)),
        v2.RandomHorizontalFlip(),
    ]
    if auto_augment:
        steps.append(augment_policy(auto_augment))
    steps.append(ToNormalizedFloat(prep.mean, prep.std))
    if random_erase > 0:
        steps.append(v2.RandomErasing(p=random_erase, value=0.0))
    return v2.Compose(steps)


def eval_transform(prep: Preprocessing) -> Callable[[Any], torch.Tensor]:
    """Resize the short side to ``image_size / crop``, centre-crop ``image_size``, scale and normalise (a decoded image)."""
    return v2.Compose([
        v2.Resize(int(round(prep.image_size / prep.crop)), antialias=True),
        v2.CenterCrop(prep.image_size),
        ToNormalizedFloat(prep.mean, prep.std),
    ])


def describe_transform(transform: Callable[[torch.Tensor], torch.Tensor] | None) -> list[str]:
    """Each step of a per-image pipeline as one line of text, so a run can print and save what it applied.

    ``None`` (images used as they are) gives an empty list.
    """
    if transform is None:
        return []
    steps = getattr(transform, "transforms", [transform])
    return [" ".join(repr(step).split()) for step in steps]

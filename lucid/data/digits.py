"""scikit-learn's bundled handwritten digits (8x8 grey images), upsampled to the training size one image at a time."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.transforms import v2

from .preprocessing import Preprocessing, augment_policy

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "DigitsDataset", "digits_splits"]

# Mean and standard deviation of all pixels of load_digits scaled to [0, 1] and upsampled to 32x32
# (computed once, fixed here so that training, evaluation and prediction normalise identically).
DIGITS_MEAN = (0.305,)
DIGITS_STD = (0.324,)


class DigitsDataset(Dataset):
    """Images already in memory (``N x C x H x W`` floats in [0, 1]); ``transform`` normalises (and augments) each item.

    With ``size``, each image is resized (bilinear) to ``size x size`` when it is read, so memory
    holds the small originals whatever the training size.
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 size: int | None = None):
        self.images = images
        self.targets = targets
        self.transform = transform
        self.size = size

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if self.size is not None and image.shape[-2:] != (self.size, self.size):
            image = F.interpolate(image[None], size=(self.size, self.size), mode="bilinear", align_corners=False)[0].clamp_(0, 1)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.targets[index])


def digits_splits(image_size: int, val_fraction: float, seed: int, augment: bool, auto_augment: str | None = None,
                  random_erase: float = 0.0) -> tuple[DigitsDataset, DigitsDataset, list[str], Preprocessing]:
    """scikit-learn's 1,797 handwritten digits, upsampled to ``image_size`` as they are read, split by a seeded permutation.

    The split depends only on ``seed`` and ``val_fraction``; training images get a small random
    affine jitter (rotation, shift, scale) when ``augment`` is true, then the optional
    ``auto_augment`` policy and random erasing. Digits are not flipped.
    """
    from sklearn.datasets import load_digits  # scikit-learn: the bundled digits

    digits = load_digits()
    pixels = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
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
        steps += [v2.ToDtype(torch.uint8, scale=True), augment_policy(auto_augment), v2.ToDtype(torch.float32, scale=True)]
    steps.append(normalize)
    if random_erase > 0:
        steps.append(v2.RandomErasing(p=random_erase, value=0.0))
    train = DigitsDataset(pixels[train_idx], targets[train_idx], v2.Compose(steps), size=image_size)
    val = DigitsDataset(pixels[val_idx], targets[val_idx], normalize, size=image_size)
    return train, val, [str(i) for i in range(10)], prep

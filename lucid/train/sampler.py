"""Which samples each training process takes, in which order, with which seed: resumable at any batch.

:class:`EpochSampler` shuffles a map-style dataset (anything with ``len`` and ``__getitem__``) per
epoch from the run's seed and the epoch alone, and shares the order out between the processes as
``torch.utils.data.DistributedSampler`` does: padded to a multiple of the process count, position
``p`` going to rank ``p % world_size``, so one epoch gives each sample to exactly one process when
the count divides evenly. It can start at any position of an epoch, which is how a resumed run
continues at its next unseen batch.

Each position also carries its own seed, drawn from the same generator, and the epoch's training
image size. :class:`SeededDataset` seeds Python's, NumPy's and torch's generators from that seed
before the wrapped dataset decodes and augments the sample, so a sample's augmentation depends on
(seed, epoch, position) only: not on which loader worker produced it, nor on where a run was resumed.

With ``repeats > 1`` (repeated augmentation, as timm's ``RASampler``) each drawn sample fills
``repeats`` consecutive positions of the shared order, so its copies go to different processes
and are augmented differently; every process still takes the same number of samples per epoch,
so an epoch keeps its length and sees about ``1 / repeats`` of the distinct samples.
"""
from __future__ import annotations

import math
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler
from torchvision.transforms import v2

from ..core.errors import ConfigError

__all__ = ["EpochSampler", "SampleKey", "SeededDataset", "set_train_size"]

SampleKey = tuple[int, int, "int | None"]  # (dataset index, seed, training image size or None)
_EPOCH_BITS = 24  # the epoch's share of the generator seed: run seed * 2**24 + epoch


class EpochSampler(Sampler[SampleKey]):
    """This process's share of each epoch's shuffled order, from :meth:`set_epoch`'s position on.

    ``sizes`` (optional) gives the training image size of each epoch (progressive resizing).
    """

    def __init__(self, length: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, repeats: int = 1,
                 sizes: list[int] | None = None):
        self.length, self.num_replicas, self.rank = length, num_replicas, rank
        self.seed, self.repeats, self.sizes = seed, repeats, sizes
        self.per_rank = math.ceil(length / num_replicas)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate epoch ``epoch`` (0-based), skipping the first ``start`` samples of this process's share."""
        self.epoch, self.start = epoch, start

    def plan(self, epoch: int) -> tuple[list[int], list[int]]:
        """This process's dataset indices and sample seeds for the whole of ``epoch``."""
        generator = torch.Generator().manual_seed(self.seed * 2**_EPOCH_BITS + epoch)
        order = torch.randperm(self.length, generator=generator)
        if self.repeats > 1:
            order = order.repeat_interleave(self.repeats)
        total = self.per_rank * self.num_replicas
        if len(order) < total:  # pad by wrapping around, as DistributedSampler does
            order = order.repeat(math.ceil(total / len(order)))
        seeds = torch.randint(0, 2**62, (total,), generator=generator)
        return order[:total][self.rank::self.num_replicas].tolist(), seeds[self.rank::self.num_replicas].tolist()

    def image_size(self, epoch: int) -> int | None:
        """The training image size of ``epoch`` (``None``: the dataset's own)."""
        return self.sizes[min(epoch, len(self.sizes) - 1)] if self.sizes else None

    def __iter__(self) -> Iterator[SampleKey]:
        indices, seeds = self.plan(self.epoch)
        size = self.image_size(self.epoch)
        for position in range(self.start, self.per_rank):
            yield indices[position], seeds[position], size

    def __len__(self) -> int:
        return self.per_rank - self.start


def set_train_size(dataset: Any, size: int) -> None:
    """Make ``dataset`` produce training images of ``size`` px.

    A dataset may define ``set_image_size(size)``; otherwise every ``RandomResizedCrop`` of its
    ``transform`` (a ``transforms.v2.Compose``) is set to ``size``. A dataset with neither cannot be
    resized: a ConfigError naming ``progressive_resize``.
    """
    if hasattr(dataset, "set_image_size"):
        dataset.set_image_size(size)
        return
    transform = getattr(dataset, "transform", None)
    crops = [step for step in getattr(transform, "transforms", [transform]) if isinstance(step, v2.RandomResizedCrop)]
    if not crops:
        raise ConfigError(f"progressive_resize: the training data ({type(dataset).__name__}) has no RandomResizedCrop "
                          "in its transform and no set_image_size method to change its image size", "progressive_resize")
    for crop in crops:
        crop.size = (size, size)


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Python's, NumPy's and torch's CPU generators seeded from ``seed``; torch's is restored after.

    Restoring torch's keeps the training process's own stream (MixUp, drop-path) the same whether
    samples are made there or in loader workers; Python's and NumPy's are only re-seeded (restoring
    them costs more than the rest of this together, and lucid's training loop draws from neither).
    """
    saved = torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(saved)


class SeededDataset(Dataset):
    """A map-style dataset indexed by :data:`SampleKey`: each sample augmented under its own seed (and size)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self.size: int | None = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey) -> Any:
        index, seed, size = key
        if size is not None and size != self.size:
            set_train_size(self.dataset, size)
            self.size = size
        with _seeded(seed):
            return self.dataset[index]

"""Loader settings that suit the machine, and decoding on the GPU (``--decode gpu``).

With ``--decode gpu`` the loader workers only read each image's header, draw its crop box (the
same draw as :class:`~lucid.data.decode.DecodeRandomResizedCrop`) and the flip, and pass the
encoded bytes on; :class:`GpuBatchDecoder` then decodes the whole batch with TorchCodec (nvJPEG
on CUDA), crops, resizes, flips and normalises it on the device.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms.v2 import functional as F

from ..core.errors import OptionError
from ..core.extras import require
from .decode import DecodeRandomResizedCrop, Source, open_image
from .preprocessing import Preprocessing, min_crop_scale
from .records import Batch

__all__ = ["EncodedBatch", "EncodedRandomResizedCrop", "GpuBatchDecoder", "check_gpu_decode", "collate_encoded",
           "default_workers", "gpu_decode_pipeline", "loader_options"]

MAX_DEFAULT_WORKERS = 16


def default_workers(processes_per_machine: int = 1) -> int:
    """Loader workers per training process: the CPUs this process may use, shared among the machine's
    processes, less one for the process itself (at least 1, at most 16)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_DEFAULT_WORKERS, cpus // max(1, processes_per_machine) - 1))


def loader_options(device_type: str, workers: int) -> dict[str, Any]:
    """``DataLoader`` keyword arguments: workers kept alive across epochs, 4 batches prefetched per worker,
    pinned memory when the batches go to a CUDA device."""
    options: dict[str, Any] = {"num_workers": workers, "pin_memory": device_type == "cuda"}
    if workers > 0:
        options.update(persistent_workers=True, prefetch_factor=4)
    return options


def check_gpu_decode(device: torch.device) -> None:
    """Refuse ``--decode gpu`` in one line when the run's device is not a CUDA GPU."""
    if device.type != "cuda":
        raise OptionError(f"--decode gpu needs a CUDA device, got device {device.type!r}; use --decode cpu", "decode")


class EncodedRandomResizedCrop(DecodeRandomResizedCrop):
    """Draw the crop box and the flip of an encoded image from its header; return the bytes undecoded.

    Returns ``(bytes as a uint8 tensor, tensor [top, left, height, width], flip)``.
    """

    def forward(self, *inputs: Any) -> Any:
        source: Source = inputs[0]
        data = source if isinstance(source, bytes) else Path(source).read_bytes()
        with open_image(data) as image:
            box = self.crop_box(*image.size)
        flip = bool(torch.rand(1) < 0.5)
        return torch.frombuffer(bytearray(data), dtype=torch.uint8), torch.tensor(box), flip


@dataclass
class EncodedBatch:
    """Encoded images with their crop boxes and flips, targets and the names of skipped samples."""

    data: list[torch.Tensor]
    boxes: torch.Tensor
    flips: torch.Tensor
    targets: torch.Tensor
    skipped: list[str] = field(default_factory=list)


def collate_encoded(samples: Sequence[tuple[tuple[torch.Tensor, torch.Tensor, bool], int] | str]) -> EncodedBatch:
    """Collate the output of :class:`EncodedRandomResizedCrop`; a ``str`` sample names an unreadable image."""
    good = [s for s in samples if not isinstance(s, str)]
    skipped = [s for s in samples if isinstance(s, str)]
    boxes = torch.stack([s[0][1] for s in good]) if good else torch.empty(0, 4, dtype=torch.long)
    flips = torch.tensor([s[0][2] for s in good], dtype=torch.bool)
    targets = torch.tensor([s[1] for s in good], dtype=torch.long)
    return EncodedBatch([s[0][0] for s in good], boxes, flips, targets, skipped)


class GpuBatchDecoder:
    """Decode an :class:`EncodedBatch` on ``device`` (JPEGs in one TorchCodec call), crop, resize, flip and normalise."""

    def __init__(self, prep: Preprocessing, device: torch.device) -> None:
        self.codec = require("torchcodec.decoders", "data", "--decode gpu")  # lucid[data]
        self.size = prep.image_size
        self.mode = "GRAY" if prep.channels == 1 else "RGB"
        self.device = device
        self.mean = torch.tensor(prep.mean, device=device).view(-1, 1, 1)
        self.std = torch.tensor(prep.std, device=device).view(-1, 1, 1)

    def _decode(self, data: list[torch.Tensor]) -> list[torch.Tensor]:
        if all(len(d) > 2 and d[0] == 0xFF and d[1] == 0xD8 for d in data):
            return self.codec.decode_jpeg(data, mode=self.mode, device=self.device)
        return [self.codec.decode_image(d, mode=self.mode).to(self.device) for d in data]

    def __call__(self, batch: EncodedBatch) -> Batch:
        if not batch.data:
            return Batch(torch.empty(0, device=self.device), batch.targets.to(self.device), batch.skipped)
        crops = []
        for image, box, flip in zip(self._decode(batch.data), batch.boxes.tolist(), batch.flips.tolist(), strict=True):
            crop = F.resized_crop(image, *box, [self.size, self.size], antialias=True)
            crops.append(F.horizontal_flip(crop) if flip else crop)
        images = torch.stack(crops).float().div_(255).sub_(self.mean).div_(self.std)
        return Batch(images, batch.targets.to(self.device, non_blocking=True), batch.skipped)


def gpu_decode_pipeline(prep: Preprocessing, device: torch.device) -> tuple[EncodedRandomResizedCrop, Any, GpuBatchDecoder]:
    """The training steps, collate function and batch decoder of ``--decode gpu`` (refused off CUDA)."""
    check_gpu_decode(device)
    crop = EncodedRandomResizedCrop(prep.image_size, prep.channels, scale=(min_crop_scale(prep.image_size), 1.0))
    return crop, collate_encoded, GpuBatchDecoder(prep, device)

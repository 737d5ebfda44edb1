"""The runtime policy of a training run, decided once: device, precision, memory format, compile, optimizer kernel, loader workers."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from ..inference.runtime import resolve_amp, resolve_device
from . import distributed
from .config import TrainConfig
from .step import fast_defaults

__all__ = ["Runtime", "resolve_amp", "resolve_device", "resolve_runtime"]


@dataclass(frozen=True)
class Runtime:
    """How this process runs the training: what :func:`resolve_runtime` chose from the config and the machine."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: bool
    fused_optimizer: bool
    workers: int

    def describe(self) -> str:
        """One line for the run's start-up message."""
        amp = str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"
        return f"device {self.device}, amp {amp}, channels_last {self.channels_last}, compile {self.compile}"


def resolve_runtime(cfg: TrainConfig, info: distributed.DistInfo, images: int) -> Runtime:
    """The policy for ``cfg`` on this machine, for a run that processes ``images`` images per process."""
    device = resolve_device(cfg.device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    defaults = fast_defaults(device, images=images)
    workers = cfg.workers
    if workers is None:
        workers = 0 if cfg.data is None else min(4, max(1, (os.cpu_count() or 1) // info.local_world_size))
    return Runtime(
        device=device,
        amp_dtype=resolve_amp(cfg.amp, device),
        channels_last=defaults["channels_last"] if cfg.channels_last is None else cfg.channels_last,
        compile=defaults["compile"] if cfg.compile is None else cfg.compile,
        fused_optimizer=defaults["fused_optimizer"] if cfg.fused_optimizer is None else cfg.fused_optimizer,
        workers=workers,
    )

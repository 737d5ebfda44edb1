"""The training-state file ``last.pt``: what it holds, how it is written (atomically) and read (``weights_only``)."""
from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

import torch

from ..checkpoints.train_state import REQUIRED, STATE_FORMAT, STATE_NAME, load_state, save_state  # noqa: F401  (REQUIRED: older imports)
from ..core.errors import CheckpointError
from .config import TrainConfig

__all__ = ["STATE_FORMAT", "STATE_NAME", "config_from_state", "load_state", "rng_state", "save_state", "set_rng_state"]


def rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and plain values (so ``weights_only`` loading accepts them)."""
    import numpy as np

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), int(pos), int(has_gauss), float(cached)],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    import numpy as np

    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():  # the GPUs this machine has (a run may be resumed where there are fewer)
        for index, cuda_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(cuda_state, index)
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))


def config_from_state(state: dict[str, Any], file: str | os.PathLike[str]) -> TrainConfig:
    """The :class:`TrainConfig` a state was saved with (settings added since then take their defaults)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(state["config"]) - known)
    if unknown:
        raise CheckpointError(f"{file}: saved settings {unknown} are unknown to this version of lucid")
    return TrainConfig(**state["config"])

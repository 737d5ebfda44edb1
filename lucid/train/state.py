"""The training-state file ``last.pt``: what it holds, how it is written (atomically) and read (``weights_only``)."""
from __future__ import annotations

import dataclasses
import io
import os
import random
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CheckpointError
from ..core.fileio import atomic_write_bytes
from ..io import torch_load_error
from .config import TrainConfig

__all__ = ["STATE_FORMAT", "STATE_NAME", "config_from_state", "load_state", "rng_state", "save_state", "set_rng_state"]

STATE_NAME = "last.pt"
STATE_FORMAT = "lucid-train-state/1"
REQUIRED = ("epoch", "model", "optimizer", "scheduler", "rng", "config", "model_config", "metadata", "best_acc1", "best_epoch")


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


def save_state(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Write a training state atomically and durably.

    The state is serialised in memory first, so a full disk surfaces as an ``OSError`` that names
    the file (and the previous state stays intact).
    """
    buffer = io.BytesIO()
    torch.save({"format": STATE_FORMAT, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a ``last.pt`` training state (``path`` is the file or its run folder) with ``weights_only=True``."""
    path = Path(path)
    file = path / STATE_NAME if path.is_dir() else path
    if not file.is_file():
        where = f"{path} has no {STATE_NAME}" if path.is_dir() else f"{path} does not exist"
        error = CheckpointError(f"resume: {where}; expected a run folder written by lucid train (with {STATE_NAME})")
        error.field = "resume"  # type: ignore[attr-defined]  # the setting the command line shows as --resume
        raise error
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a damaged pickle/zip
        raise torch_load_error(file, e) from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{file}: not a lucid training state (expected format {STATE_FORMAT!r})")
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"{file}: damaged training state, {', '.join(missing)} missing")
    if not isinstance(state["model_config"], dict) or not isinstance(state["config"], dict) or not isinstance(state["metadata"], dict):
        raise CheckpointError(f"{file}: damaged training state, config, model_config and metadata must be dicts")
    return state


def config_from_state(state: dict[str, Any], file: str | os.PathLike[str]) -> TrainConfig:
    """The :class:`TrainConfig` a state was saved with (settings added since then take their defaults)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(state["config"]) - known)
    if unknown:
        raise CheckpointError(f"{file}: saved settings {unknown} are unknown to this version of lucid")
    return TrainConfig(**state["config"])

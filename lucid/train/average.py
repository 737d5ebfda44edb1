"""Averaging the weights of a run's last checkpoints (``lucid weights average``), as in timm's ``avg_checkpoints.py``.

Averaged weights of the last few epochs often validate better than any one of them. BatchNorm
running statistics are averaged like the weights; integer buffers (``num_batches_tracked``) are
taken from the last checkpoint.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..checkpoints.io import load_file
from ..core.errors import CheckpointError, ConfigError

__all__ = ["average_files", "average_state_dicts", "checkpoint_files"]


def checkpoint_files(sources: Sequence[str | os.PathLike[str]], last: int | None = None) -> list[Path]:
    """The weight files ``sources`` name: a run folder stands for its ``checkpoints/epoch-*.safetensors``, in epoch order.

    ``last`` keeps only the final ``last`` of them (counted over all sources).
    """
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted((path / "checkpoints").glob("epoch-*.safetensors"))
            if not found:
                raise CheckpointError(f"{path}: no checkpoints/epoch-*.safetensors; train it with --keep-checkpoints K")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(2, "no such run folder or weight file", str(path))
    if last is not None:
        if last < 1:
            raise ConfigError(f"last must be a positive int, got {last}", "last")
        files = files[-last:]
    return files


def average_state_dicts(state_dicts: Sequence[dict[str, torch.Tensor]], names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The element-wise mean of floating-point tensors (computed in float64); other tensors come from the last."""
    first = state_dicts[0]
    for sd, name in zip(state_dicts[1:], names[1:]):
        if sd.keys() != first.keys():
            raise CheckpointError(f"{name}: its tensors differ from those of {names[0]} ({len(sd)} against {len(first)} keys)")
        for key, value in sd.items():
            if value.shape != first[key].shape:
                raise CheckpointError(f"{name}: {key} has shape {tuple(value.shape)}, {names[0]} {tuple(first[key].shape)}")
    averaged = {}
    for key, value in first.items():
        if value.is_floating_point():
            total = sum(sd[key].double() for sd in state_dicts)
            averaged[key] = (total / len(state_dicts)).to(value.dtype)
        else:
            averaged[key] = state_dicts[-1][key].clone()
    return averaged


def average_files(files: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Load ``files`` (without executing code) and average them."""
    if not files:
        raise ConfigError("no checkpoints to average", "checkpoints")
    return average_state_dicts([load_file(f) for f in files], [str(f) for f in files])

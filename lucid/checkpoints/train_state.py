"""The training-state file ``last.pt``: written by ``lucid train`` every epoch, read to resume or to load the model.

It is a torch pickle of tensors and plain values only, so it is read with ``weights_only=True``.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CheckpointError
from ..core.fileio import atomic_write_bytes

__all__ = ["REQUIRED", "STATE_FORMAT", "STATE_NAME", "load_state", "save_state"]

STATE_NAME = "last.pt"
STATE_FORMAT = "lucid-train-state/1"
REQUIRED = ("epoch", "model", "optimizer", "scheduler", "rng", "config", "model_config", "metadata", "best_acc1", "best_epoch")


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
        raise CheckpointError(f"{file}: not a readable training state ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{file}: not a lucid training state (expected format {STATE_FORMAT!r})")
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        raise CheckpointError(f"{file}: damaged training state, {', '.join(missing)} missing")
    if not isinstance(state["model_config"], dict) or not isinstance(state["config"], dict) or not isinstance(state["metadata"], dict):
        raise CheckpointError(f"{file}: damaged training state, config, model_config and metadata must be dicts")
    return state

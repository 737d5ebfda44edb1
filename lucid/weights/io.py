"""Reading and writing weight files safely: safetensors, or torch pickles loaded with ``weights_only``."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

__all__ = ["CheckpointError", "load_file", "save_file", "load_into"]

_NESTING_KEYS = ("state_dict", "model", "model_state_dict")


class CheckpointError(ValueError):
    """A weight file or state dict that cannot be used, with the reason spelled out."""


def save_file(state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str]) -> Path:
    """Write a state dict as safetensors, atomically (temporary file in the same folder, then rename)."""
    from safetensors.torch import save_file as _save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _save(tensors, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_file(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``.pt``/``.pth``/``.bin``).

    Torch files are read with ``weights_only=True``: loading never executes code. A state
    dict nested under ``"state_dict"``/``"model"`` is unwrapped, and a DDP ``module.``
    prefix is removed.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weight file")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file as _load

        try:
            return _load(str(path), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file, it may be truncated or corrupt ({e})") from None
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused or unreadable as a weights-only torch checkpoint "
            f"(truncated, corrupt, or holding objects other than tensors; nothing was executed): {first}"
        ) from None
    return _unwrap(obj, path)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for key in _NESTING_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _listing(title: str, items: list[str], limit: int = 10) -> str:
    shown = items[:limit]
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {i}" for i in shown) + more


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load ``state_dict`` strictly, raising a readable :class:`CheckpointError` on any mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or shapes:
        parts = [f"the weights do not fit this {type(model).__name__}:"]
        if missing:
            parts.append(_listing("missing from the checkpoint", missing))
        if unexpected:
            parts.append(_listing("in the checkpoint but not in the model", unexpected))
        if shapes:
            parts.append(_listing("shape differences", shapes))
        raise CheckpointError("\n".join(parts))
    model.load_state_dict(state_dict, strict=True)

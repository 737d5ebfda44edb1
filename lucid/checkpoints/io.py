"""Reading and writing tensor files safely: safetensors, or torch pickles loaded with ``weights_only``.

Below the models, so that both the model layer (``save_pretrained``/``from_pretrained``)
and the weights layer use one implementation.
"""
from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..core.errors import CheckpointError, OptionError
from ..core.fileio import atomic_write

__all__ = ["CheckpointError", "load_file", "load_into", "save_file"]

_NESTING_KEYS = ("state_dict", "model", "model_state_dict")
_WRAPPER_PREFIXES = ("model.", "module.", "_orig_mod.", "backbone.")  # Lightning, DDP, torch.compile, detection


_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def save_file(
    state_dict: Mapping[str, torch.Tensor], path: str | os.PathLike[str], metadata: dict[str, str] | None = None
) -> Path:
    """Write a state dict atomically (temporary file in the same folder, then rename).

    The format is safetensors, or torch's own (``torch.save`` of a plain dict, readable with
    ``weights_only=True``) when the name ends in ``.pt``/``.pth``/``.bin``/``.ckpt``, for
    users of ``torch.load``. ``metadata`` (text keys and values) goes into the safetensors
    header; torch files have no place for it.
    """
    from safetensors.torch import save_file as save_safetensors  # safetensors: kept out of `import lucid.models`

    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    if path.suffix in _TORCH_SUFFIXES:
        return atomic_write(path, lambda tmp: torch.save(tensors, tmp))
    return atomic_write(path, lambda tmp: save_safetensors(tensors, str(tmp), metadata=metadata))


def _is_safetensors(path: Path) -> bool:
    """True for a ``.safetensors`` name, or content that starts like one (8-byte header size, then ``{``)."""
    if path.suffix == ".safetensors":
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < path.stat().st_size


def _unsafe_globals(path: Path) -> list[str]:
    """The classes and functions a torch pickle refers to that weights-only loading does not allow (read, not run)."""
    try:
        return torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a pickle too broken to list: the caller reports it as unreadable
        return []


def _torch_load_error(path: Path, e: Exception) -> CheckpointError:
    """Turn torch.load's multi-paragraph errors into one sentence that names the file and the problem.

    Weights-only loading refuses what it may not read with :class:`pickle.UnpicklingError`; the
    globals it refused are listed from the file itself. Any other exception means the bytes
    themselves are broken (truncated, or not a checkpoint).
    """
    first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
    unsafe = _unsafe_globals(path) if isinstance(e, pickle.UnpicklingError) else []
    if unsafe:
        return CheckpointError(
            f"{path}: refused: it holds objects other than tensors and plain containers ({', '.join(unsafe)}); "
            "it was read with weights_only=True, so nothing in it was executed"
        )
    if isinstance(e, pickle.UnpicklingError):
        return CheckpointError(
            f"{path}: not a torch checkpoint that weights-only loading can read, corrupt or an unsupported pickle ({first}); "
            "nothing in it was executed"
        )
    return CheckpointError(f"{path}: not a readable torch checkpoint, it may be truncated or corrupt ({first})")


def load_file(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", strip_prefixes: bool = True
) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``.pt``/``.pth``/``.bin``).

    Torch files are read with ``weights_only=True``: loading never executes code. A state
    dict nested under ``"state_dict"``/``"model"`` is unwrapped, and the prefixes of wrappers and
    trainers are removed (:func:`strip_prefix`; ``strip_prefixes=False`` keeps them). Safetensors content is recognised whatever the file is called.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such weight file")
    if not path.is_file():
        raise CheckpointError(f"{path}: is not a file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (an interrupted download or copy?)")
    if _is_safetensors(path):
        from safetensors import SafetensorError  # safetensors: kept out of `import lucid.models`
        from safetensors.torch import load_file as load_safetensors

        try:
            return load_safetensors(str(path), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{path}: not a readable safetensors file, it may be truncated or corrupt ({e})") from None
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        raise _torch_load_error(path, e) from None
    state_dict = _unwrap(obj, path)
    return strip_prefix(state_dict) if strip_prefixes else state_dict


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    for key in _NESTING_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: does not hold a state dict (a mapping of names to tensors)")
    return dict(obj)


def strip_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of the model inside a wrapper: keys without their wrapper's prefix.

    Without ``prefix``, the prefixes that trainers and wrappers add (``model.``: Lightning,
    ``module.``: DistributedDataParallel, ``_orig_mod.``: ``torch.compile``, ``backbone.``)
    are removed, one after another, as long as every key carries the same one. With
    ``prefix`` (say ``"student."``), only the keys under it are kept, without it.
    """
    if prefix is not None:
        if not isinstance(prefix, str) or not prefix:
            raise OptionError(f"prefix must be a non-empty string such as 'model.', got {prefix!r}", "prefix")
        kept = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        if not kept:
            sample = ", ".join(list(state_dict)[:3]) or "no keys at all"
            raise CheckpointError(f"state_dict: no key starts with prefix={prefix!r} (keys start like {sample})")
        return kept
    out = dict(state_dict)
    stripped = True
    while out and stripped:
        stripped = False
        for wrapper in _WRAPPER_PREFIXES:
            if all(k.startswith(wrapper) for k in out):
                out = {k[len(wrapper):]: v for k, v in out.items()}
                stripped = True
    return out


def _listing(title: str, items: list[str], limit: int = 10) -> str:
    shown = items[:limit]
    more = f"\n    ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"  {title} ({len(items)}):\n" + "\n".join(f"    {i}" for i in shown) + more


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load ``state_dict`` strictly, raising a readable :class:`CheckpointError` on any mismatch."""
    own = model.state_dict()
    # Old checkpoints predate BatchNorm's ``num_batches_tracked``; torch fills it in when it is absent.
    # Frozen norms (torchvision's FrozenBatchNorm2d) keep no step count: theirs is dropped.
    state_dict = {k: v for k, v in state_dict.items() if k in own or not k.endswith(".num_batches_tracked")}
    missing = sorted(k for k in set(own) - set(state_dict) if not k.endswith(".num_batches_tracked"))
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

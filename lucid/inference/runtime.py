"""Where and in which precision a model runs: the device and autocast choices of eval, predict and training."""
from __future__ import annotations

import torch

from ..core.constants import AMP_CHOICES
from ..core.errors import ConfigError

__all__ = ["cpu_has_fast_bf16", "default_amp_dtype", "resolve_amp", "resolve_device"]


def cpu_has_fast_bf16() -> bool:
    """True when this CPU runs bf16 matmuls/convolutions natively (AVX512-BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN runs no fast bf16 kernels
        return False


def default_amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where ``device`` runs it natively (CUDA with bf16, CPUs with AVX512-BF16/AMX), else no autocast."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    return None


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device: {name!r} is not a device (expected auto, cpu, cuda, cuda:N)", "device") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name}: CUDA is not available on this machine", "device")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``amp`` (auto, bf16, fp16, off) on ``device`` (``auto``: :func:`default_amp_dtype`)."""
    if amp == "off":
        return None
    if amp == "auto":
        return default_amp_dtype(device)
    if amp == "fp16":
        if device.type != "cuda":
            raise ConfigError(f"amp fp16 needs a CUDA device (it uses a gradient scaler), got device {device}; use bf16 or off", "amp")
        return torch.float16
    if amp != "bf16":
        raise ConfigError(f"amp must be one of {', '.join(AMP_CHOICES)}, got {amp!r}", "amp")
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError("amp bf16: this GPU has no bf16 support; use fp16", "amp")
    return torch.bfloat16

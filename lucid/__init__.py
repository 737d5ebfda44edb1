"""lucid: readable, configurable, verified ResNet/ResNeXt models on PyTorch.

Tensors are torch tensors; the creation functions below *are* torch's own,
re-exported so that code written against lucid reads naturally
(``lucid.zeros(1, 3, 224, 224)``).
"""
from __future__ import annotations

import importlib
from typing import Any

from torch import (
    Tensor,
    arange,
    empty,
    full,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "Tensor",
    "arange",
    "empty",
    "full",
    "ones",
    "ones_like",
    "rand",
    "randint",
    "randn",
    "tensor",
    "zeros",
    "zeros_like",
    "__version__",
]

# Heavier pieces load on first use, so that ``import lucid`` stays cheap.
_LAZY = {
    "optimize_for_inference": ("lucid.optimize", "optimize_for_inference"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in ("nn", "models", "weights", "visual", "export", "train"):
        return importlib.import_module(f"lucid.{name}")
    raise AttributeError(f"module 'lucid' has no attribute {name!r}")

"""What lucid cannot vouch for inside a model: other libraries' modules, forward hooks, tensor subclasses.

Quantizers and other tools change a model in place and leave it a lucid ``ResNet``: NNCF's
``nncf.quantize`` adds a ``__nncf_hooks`` module whose quantizers run inside ``forward``;
torch.ao's observers and fake-quantizers, torchao's quantized weight tensors and forward
hooks do the same kind of thing. Code that rebuilds or serialises a lucid model from its
config and weights (``optimize_for_inference``, ``save_pretrained``) would silently drop them,
so it asks :func:`first_foreign_part` first and refuses, naming what it found.
"""
from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

import torch
from torch import nn

__all__ = ["KNOWN_MODULE_PACKAGES", "first_foreign_part"]

# modules from these packages are plain PyTorch layers or lucid's own
KNOWN_MODULE_PACKAGES = ("torch.nn.", "lucid.")


def first_foreign_part(model: nn.Module, *, hooks: bool = True) -> str | None:
    """The first part of ``model`` that is not plain PyTorch or lucid, described in a few words; ``None`` if all are.

    Looks, in this order, at every submodule's class (the root's own class is the caller's to
    check), a ``forward`` replaced on an instance, forward hooks and pre-hooks (with ``hooks``),
    and parameters or buffers that are tensor subclasses or on the ``meta`` device.
    """
    found = chain(_foreign_modules(model), _replaced_forwards(model, hooks), _foreign_tensors(model))
    return next(found, None)


def _where(name: str) -> str:
    return f"module {name!r}" if name else "the model itself"


def _foreign_modules(model: nn.Module) -> Iterator[str]:
    for name, module in model.named_modules():
        cls = type(module)
        if name and not cls.__module__.startswith(KNOWN_MODULE_PACKAGES):
            yield f"{_where(name)} ({cls.__module__}.{cls.__qualname__})"


def _replaced_forwards(model: nn.Module, hooks: bool) -> Iterator[str]:
    for name, module in model.named_modules():
        if "forward" in vars(module):
            yield f"{_where(name)} with its forward replaced on the instance"
        registered = [*module._forward_pre_hooks.values(), *module._forward_hooks.values()]
        if hooks and registered:
            hook = registered[0]
            yield f"a forward hook on {_where(name)} ({getattr(hook, '__qualname__', type(hook).__qualname__)})"


def _foreign_tensors(model: nn.Module) -> Iterator[str]:
    for name, tensor in chain(model.named_parameters(), model.named_buffers()):
        if type(tensor.detach()) is not torch.Tensor:
            yield f"tensor {name!r} of type {type(tensor.detach()).__qualname__}"
        elif tensor.device.type == "meta":
            yield f"tensor {name!r} on the meta device (no values)"

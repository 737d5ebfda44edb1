"""Size limits for models and inputs that files or flags describe, checked before any memory is used.

A config read from a file, a ``--set`` override or a ``--resume`` state is built on the ``meta``
device first (no storage) and counted; an input shape is run through the model on ``meta`` to
estimate its activations. What would not fit is refused in one line, before the allocation.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..core.checks import describe, is_int
from ..core.errors import LucidError, OptionError, ResourceError

__all__ = ["MAX_PARAMETERS", "activation_bytes", "check_input_memory", "check_model_size", "machine_memory", "parameter_limit"]

# A model described by a file or a flag is refused above this many parameters (override with
# ``max_parameters=`` or the LUCID_MAX_PARAMETERS environment variable).
MAX_PARAMETERS = 2_000_000_000
ENV_LIMIT = "LUCID_MAX_PARAMETERS"


def parameter_limit(max_parameters: Any = None) -> int:
    """The parameter limit: ``max_parameters``, else ``LUCID_MAX_PARAMETERS``, else :data:`MAX_PARAMETERS`."""
    if max_parameters is not None:
        if not is_int(max_parameters) or max_parameters < 1:
            raise OptionError(f"max_parameters must be a positive int; got {describe(max_parameters)}", "max_parameters")
        return int(max_parameters)
    text = os.environ.get(ENV_LIMIT, "").strip()
    if not text:
        return MAX_PARAMETERS
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 1 and value == int(value) and value < 2**63):
        raise OptionError(f"{ENV_LIMIT}={text[:40]!r}: expected a positive whole number of parameters below 2**63, such as 5e9")
    return int(value)


def check_model_size(build: Callable[[], nn.Module], source: str, max_parameters: Any = None,
                     error: type[LucidError] = ResourceError) -> int:
    """Build a model with ``build()`` on the ``meta`` device and count its parameters; returns the count.

    Raises ``error`` naming ``source`` when the model would have more parameters than
    :func:`parameter_limit` allows, or so many that torch cannot even size them. This is the one
    check every model described by a file or flag goes through (``from_pretrained``, ``--set``,
    ``--resume``), so they share its limit and its message.
    """
    limit = parameter_limit(max_parameters)
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in build().parameters())
    except RuntimeError as e:  # numel or storage-size overflow while sizing the meta tensors
        raise error(f"{source}: the config describes a model too large to build ({' '.join(str(e).split())[:100]})") from None
    if count > limit:
        raise error(
            f"{source}: the config describes a model of {count:,} parameters, over the limit of {limit:,}; "
            f"pass max_parameters=N (or set {ENV_LIMIT}=N) if you trust this config"
        )
    return count


def activation_bytes(model: nn.Module, input_shape: tuple[int, ...], training: bool = False) -> int:
    """A lower estimate of the activation memory of one forward pass at ``input_shape`` (float32).

    The model runs on the ``meta`` device (nothing is allocated). Training keeps every layer's
    output for the backward pass; inference needs at least the largest output with its input.
    """
    sizes: list[int] = []

    def record(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel() * 4)

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    state = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            torch.func.functional_call(model, state, (torch.zeros(input_shape, device="meta"),), strict=False)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    inputs = math.prod(input_shape) * 4
    return inputs + (sum(sizes) if training else 2 * max(sizes, default=0))


def machine_memory(device: torch.device | str = "cpu") -> int:
    """Bytes of memory of ``device``: the GPU's total, or the machine's physical memory."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.get_device_properties(device).total_memory)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_input_memory(model: nn.Module, input_shape: tuple[int, ...], what: str, device: torch.device | str = "cpu",
                       training: bool = False) -> int:
    """Refuse (ResourceError naming ``what``) an input whose estimated memory exceeds ``device``'s; returns the estimate."""
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = params * (4 if training else 1) + activation_bytes(model, input_shape, training)
    available = machine_memory(device)
    if needed > available:
        shape = "x".join(str(d) for d in input_shape)
        raise ResourceError(
            f"{what}: an input of {shape} needs at least {needed / 2**30:,.1f} GiB "
            f"({'training' if training else 'inference'}), more than the {available / 2**30:,.1f} GiB this {torch.device(device).type} has"
        )
    return needed

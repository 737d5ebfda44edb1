"""What any module is and costs, for every layer that asks: the device holding its tensors, and the
multiply-accumulates of one forward pass (run on the ``meta`` device where the module allows it)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import nn
from torch.nn.parameter import is_lazy
from torch.utils.flop_counter import FlopCounterMode

from ..core.checks import is_int
from ..core.errors import OptionError, OptionTypeError

__all__ = ["Observe", "count_macs", "forward_once", "make_inputs", "model_device"]

T = TypeVar("T")
Observe = Callable[[tuple[torch.Tensor, ...], Callable[[], Any]], T]
"""``observe(inputs, forward)``: runs ``forward()`` (the model's pass on ``inputs``) and returns what it measured."""


def model_device(model: nn.Module, caller: str = "model") -> torch.device:
    """The one device holding all of ``model``'s parameters and buffers (the CPU for a module without any).

    Inputs made for the model, and layers added to it, go there; a model spread over several
    devices has no such place: an OptionError naming ``caller`` and the devices found.
    """
    devices = {t.device for t in (*model.parameters(), *model.buffers())}
    if len(devices) > 1:
        raise OptionError(
            f"{caller}: the model's parameters and buffers must all be on one device, found {sorted(map(str, devices))}", "model"
        )
    return devices.pop() if devices else torch.device("cpu")


def make_inputs(input_shape: Sequence[int] | Sequence[Sequence[int]], device: torch.device | str, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """Zero tensors for ``input_shape``: one shape such as ``(1, 3, 224, 224)``, or a list of shapes for several inputs."""
    return tuple(torch.zeros(s, device=device, dtype=dtype) for s in _shapes(input_shape))


def _shapes(input_shape: Any) -> list[tuple[int, ...]]:
    def is_shape(value: Any) -> bool:
        return isinstance(value, (tuple, list, torch.Size)) and len(value) > 0 and all(
            is_int(d) and d > 0 for d in value
        )

    if is_shape(input_shape):
        return [tuple(input_shape)]
    if isinstance(input_shape, (tuple, list)) and input_shape and all(is_shape(s) for s in input_shape):
        return [tuple(s) for s in input_shape]
    raise OptionError(
        f"input_shape must be a shape of positive ints such as (1, 3, 224, 224), or a list of such shapes, got {input_shape!r}"
    )


def _float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())


def forward_once(model: nn.Module, input_shape: Any, observe: Observe[T]) -> T:
    """What ``observe`` measured of one forward pass of ``model`` on zeros of ``input_shape``.

    ``input_shape`` is one shape such as ``(1, 3, 224, 224)``, or a list of shapes for several
    inputs (made in the model's floating dtype). The pass runs in eval mode under ``no_grad``
    (every module's train/eval flag is restored afterwards), with the parameters swapped for
    ``meta`` tensors so that nothing is computed and nothing in the model changes; even the
    largest model passes in a fraction of a second. Models whose forward cannot run on ``meta``
    (data-dependent code, ops without a meta kernel) are run for real instead, on
    :func:`model_device`, and so are models with lazy modules, which this first pass
    materialises; ``observe`` is then called a second time.
    """
    if not isinstance(model, nn.Module):
        raise OptionTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    _shapes(input_shape)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    lazy = any(is_lazy(p) for p in model.parameters())  # lazy modules must see real tensors to materialise
    try:
        try:
            return _forward(model, input_shape, observe, on_meta=not lazy)
        except (NotImplementedError, RuntimeError):
            if lazy or any(p.is_meta for p in model.parameters()):
                raise
            return _forward(model, input_shape, observe, on_meta=False)
    finally:
        for m, training in modes:
            m.training = training


def _forward(model: nn.Module, input_shape: Any, observe: Observe[T], on_meta: bool) -> T:
    inputs = make_inputs(input_shape, "meta" if on_meta else model_device(model), _float_dtype(model))
    if on_meta:
        state = {k: torch.empty_like(v, device="meta") for k, v in [*model.named_parameters(), *model.named_buffers()]}

        def forward() -> Any:
            return torch.func.functional_call(model, state, inputs, strict=False, tie_weights=False)
    else:
        def forward() -> Any:
            return model(*inputs)
    with torch.no_grad():
        return observe(inputs, forward)


def count_macs(model: nn.Module, input_shape: Any) -> int:
    """Multiply-accumulates of one forward pass on ``input_shape`` (FLOPs / 2, as torch's
    :class:`~torch.utils.flop_counter.FlopCounterMode` counts them), by :func:`forward_once`."""
    def observe(inputs: tuple[torch.Tensor, ...], forward: Callable[[], Any]) -> int:
        flops = FlopCounterMode(display=False)
        with flops:
            forward()
        return flops.get_total_flops() // 2

    return forward_once(model, input_shape, observe)

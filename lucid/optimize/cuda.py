"""CUDA kernels: cuDNN's fused convolution + bias (+ shortcut) + ReLU, kept per shape where it is faster."""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .rules import FusedConv2d

__all__ = ["CuDNNConv2d", "plain_is_clearly_faster"]


def plain_is_clearly_faster(fused: Callable[[], object], plain: Callable[[], object], repeats: int = 10) -> bool:
    """Time two CUDA callables with CUDA events, after one warm-up call each.

    True only when ``plain`` takes under 95% of ``fused``'s time: the fused kernel moves fewer
    bytes, and at small shapes a few timed calls are noisy (a plain tie-break picked the plain
    kernel for a few layers and cost overall time; see benchmarks/results/README.md).
    """
    fused(), plain()
    elapsed = []
    for fn in (fused, plain):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            fn()
        end.record()
        end.synchronize()
        elapsed.append(start.elapsed_time(end))
    return elapsed[1] < 0.95 * elapsed[0]


class CuDNNConv2d(FusedConv2d):
    """cuDNN's fused convolution + bias (+ shortcut addition) + ReLU.

    cuDNN's fused kernels are not the fastest at every shape, so at the first call with a given
    input shape the fused kernel and the plain convolution followed by an in-place epilogue are
    each timed, and the plain one is kept for that shape only if it is clearly faster (like
    ``cudnn.benchmark``); a shape the fused kernel refuses uses the plain one.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__(conv, relu)
        self.cuda_fused: dict[tuple[torch.Size, bool], bool] = {}  # (input shape, adds a shortcut) -> fused kernel faster

    def _run(self, x: torch.Tensor, shortcut: torch.Tensor | None) -> torch.Tensor:
        args = (self.stride, self.padding, self.dilation, self.groups)
        if shortcut is None:
            def fused() -> torch.Tensor:
                return torch.cudnn_convolution_relu(x, self.weight, self.bias, *args)

            def plain() -> torch.Tensor:
                return F.conv2d(x, self.weight, self.bias, *args).relu_()
        else:
            def fused() -> torch.Tensor:
                return torch.cudnn_convolution_add_relu(x, self.weight, shortcut, 1.0, self.bias, *args)

            def plain() -> torch.Tensor:
                return F.conv2d(x, self.weight, self.bias, *args).add_(shortcut).relu_()

        key = (x.shape, shortcut is not None)
        if key not in self.cuda_fused:
            try:
                self.cuda_fused[key] = not plain_is_clearly_faster(fused, plain)
            except RuntimeError:  # cuDNN has no fused kernel for this configuration
                self.cuda_fused[key] = False
        return fused() if self.cuda_fused[key] else plain()

    def _fused(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, None) if self.relu else self.plain(x)

    def _fused_add_relu(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        return self._run(x, other)

"""CPU kernels: oneDNN's fused convolutions with the weight prepacked for the input shape."""
from __future__ import annotations

import torch
from torch import nn

from .rules import FusedConv2d, TransientCaches

__all__ = ["OneDNNConv2d"]


class OneDNNConv2d(TransientCaches, FusedConv2d):
    """oneDNN's convolution + bias (+ shortcut addition) + ReLU, the kernels inductor uses when freezing a graph.

    oneDNN wants the weight in a blocked layout chosen for the exact input shape; handing it a
    weight in any other layout makes it reorder the weight on every call, which can cost more than
    the convolution itself. So the weight is reordered once, at the first call with a given input shape, and
    kept (as an opaque CPU-only tensor, outside ``state_dict``) until the shape changes.
    """

    _transient = {"_packed": lambda: None, "_packed_for": lambda: None}  # an opaque CPU-only tensor and its shape

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__(conv, relu)
        self._packed: torch.Tensor | None = None
        self._packed_for: torch.Size | None = None

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed_for != x.shape or self._packed is None:
            self._packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(x.shape)
            )
            self._packed_for = x.shape
        return self._packed

    def _fused(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups,
            "relu" if self.relu else "none", [], "",
        )

    def _fused_add_relu(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        # written into ``other``: no new buffer
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            other, x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups,
            "add", None, "relu", [], "",
        )

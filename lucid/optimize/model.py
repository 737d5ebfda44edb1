"""The module :func:`lucid.optimize_for_inference` returns."""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..core.errors import OptionError, OptionTypeError
from .cuda_graphs import CapturedCall
from .rules import TransientCaches, tracing

__all__ = ["OptimizedModel"]


class OptimizedModel(TransientCaches, nn.Module):
    """The module :func:`optimize_for_inference` returns: inference only, ordinary NCHW input.

    Input is converted to the model's device, compute dtype (float32 for int8 models, whose
    quantization happens inside) and channels-last layout; the output is cast back to the input's
    floating dtype (float32 for integer input). It cannot be put in train mode: train the original
    model and optimize it again. With ``cuda_graph``, the first call at each input shape runs
    normally and then captures that shape as a CUDA graph, which later calls at the same shape
    replay (each shape keeps its graph and its memory).

    ``torch.compile`` of this module compiles the folded model: while captured, the whole-graph
    backend runs the plain folded model and each fused kernel emits the plain convolution and
    epilogue. Exporting it is refused by :mod:`lucid.export`: export the plain model, which gives
    the same graph.
    """

    _transient = {"_captured": dict}  # CUDA graphs: a copy captures its own on use

    def __init__(
        self, net: nn.Module, *, dtype: torch.dtype, device: torch.device, in_channels: int, backend: str, cuda_graph: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.input_dtype = torch.float32 if dtype == torch.int8 else dtype
        self.device = device
        self.in_channels = in_channels
        self.backend = backend
        self.cuda_graph = cuda_graph
        self._captured: dict[torch.Size, CapturedCall] = {}
        super().train(False)

    def train(self, mode: bool = True) -> OptimizedModel:
        if mode:
            raise RuntimeError(
                "an optimize_for_inference() module is inference-only (BatchNorm is folded, weights are frozen); "
                "train the original model and call optimize_for_inference() again"
            )
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise OptionTypeError(f"expected a torch.Tensor of shape (N, {self.in_channels}, H, W), got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise OptionError(f"expected input of shape (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        # a compiler captures the graph itself; inference mode is for running it
        with contextlib.nullcontext() if tracing() else torch.inference_mode():
            if self.device.type != "cuda":
                # what the net takes: channels-last in the compute dtype, unless it says otherwise (OpenVINONet)
                layout = getattr(self.net, "input_memory_format", torch.channels_last)
                dtype = getattr(self.net, "input_dtype", self.input_dtype)
                return self.net(x.to(device=self.device, dtype=dtype, memory_format=layout)).to(out_dtype)
            before = torch.backends.cudnn.benchmark
            torch.backends.cudnn.benchmark = True  # let cuDNN time its algorithms for each new shape, for this call only
            try:
                return self._forward_cuda(x).to(out_dtype, copy=True)
            finally:
                torch.backends.cudnn.benchmark = before

    def _forward_cuda(self, x: torch.Tensor) -> torch.Tensor:
        captured = self._captured.get(x.shape)
        if captured is not None:
            return captured(x)  # the copy into the captured buffer also converts device, dtype and layout
        x = x.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)  # one copy
        out = self.net(x)  # the first call at a shape also picks the kernels that a capture records
        if self.cuda_graph and not tracing():
            with torch.cuda.device(self.device):  # streams and graphs belong to the model's GPU
                self._captured[x.shape] = CapturedCall(self.net, x)
        return out

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, device={self.device}, backend={self.backend!r}, cuda_graph={self.cuda_graph}"

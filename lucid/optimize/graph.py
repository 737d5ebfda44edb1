"""CPU whole-graph execution: PyTorch's oneDNN Graph fuser, one compiled graph per input shape.

Run operator by operator, every oneDNN convolution pays a fixed cost on each call around its
kernel (preparing its arguments and finding its primitive), a large share of a small batch's time. oneDNN
Graph compiles each fused subgraph (convolution, bias, shortcut addition, ReLU, pooling, the
classifier) once for its shape and afterwards only executes it, as a deployment runtime does.

PyTorch reaches this fuser through TorchScript: the folded model is traced and frozen for each
new input shape, and the fusion pass runs during the first calls at that shape. TorchScript is
deprecated in PyTorch, so :func:`available` is checked first and lucid falls back to its fused
kernels (:mod:`lucid.optimize.cpu`) where the fuser is missing.
"""
from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Iterator

import torch
from torch import nn

from .rules import TransientCaches, tracing

__all__ = ["OneDNNGraphNet", "available"]

_WARM_UP_CALLS = 2  # the profiling executor records shapes on the first call and fuses on the next


def available() -> bool:
    """Whether this PyTorch build has the oneDNN Graph fuser (TorchScript and oneDNN both present)."""
    return hasattr(torch.jit, "enable_onednn_fusion") and hasattr(torch.jit, "freeze") and torch.backends.mkldnn.is_available()


@contextlib.contextmanager
def _fusion_enabled() -> Iterator[None]:
    """The process-wide fuser switch turned on for the duration, then put back as it was."""
    before = torch.jit.onednn_fusion_enabled()
    torch.jit.enable_onednn_fusion(True)
    try:
        with warnings.catch_warnings():  # lucid's own use of TorchScript: not the user's to act on
            warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation
            warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks, constant per traced shape
            yield
    finally:
        torch.jit.enable_onednn_fusion(before)


class OneDNNGraphNet(TransientCaches, nn.Module):
    """A folded, channels-last model run as oneDNN Graph partitions compiled for each input shape.

    The first call at a new shape traces, freezes and fuses the model (a one-off cost of a few
    forward passes); later calls at that shape run the compiled graph. The ``max_shapes`` most
    recently used shapes are kept, each with its compiled graph and prepacked weights. While the
    module is captured by ``torch.compile``, ``torch.export`` or ``jit.trace``, the plain model runs.

    Compiling flips PyTorch's process-wide fuser switch for its duration: first calls at new
    shapes made from several threads at once still give correct outputs, but may miss the fusion.
    """

    _transient = {"_graphs": OrderedDict}  # compiled graphs: a copy compiles its own on use

    def __init__(self, net: nn.Module, max_shapes: int = 4) -> None:
        super().__init__()
        self.net = net
        self.max_shapes = max_shapes
        self._graphs: OrderedDict[torch.Size, torch.jit.ScriptModule] = OrderedDict()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tracing():
            return self.net(x)
        x = x.contiguous(memory_format=torch.channels_last)  # the compiled graph is specialized to this layout
        graph = self._graphs.get(x.shape)
        if graph is None:
            graph = self._compile(x)
        else:
            self._graphs.move_to_end(x.shape)  # most recently used last: the oldest shape is dropped first
        return graph(x)

    def _compile(self, x: torch.Tensor) -> torch.jit.ScriptModule:
        with _fusion_enabled():
            graph = torch.jit.freeze(torch.jit.trace(self.net, x, check_trace=False))
            for _ in range(_WARM_UP_CALLS):
                graph(x)
        self._graphs[x.shape] = graph
        while len(self._graphs) > self.max_shapes:
            self._graphs.popitem(last=False)
        return graph

    def fused_groups(self, x: torch.Tensor) -> int:
        """Run ``x`` and count the oneDNN Graph partitions its compiled graph executed (0: nothing was fused)."""
        with torch.inference_mode():
            self(x)
        optimized = torch.jit.last_executed_optimized_graph()
        return len(optimized.findAllNodes("prim::oneDNNFusionGroup", recurse=True))

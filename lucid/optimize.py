"""Inference-speed rewrites of a lucid model: fold BatchNorm, go channels-last, fuse, cast, compile.

:func:`optimize_for_inference` returns a *new* module; the model passed in is never modified.
What it does, in order (each step chosen from measurements, see the README's Performance section):

1. copy the model, switch the copy to eval mode and freeze its parameters;
2. fold every BatchNorm into the convolution before it (:func:`fold_batchnorm`), which removes
   one full read and write of every feature map;
3. store weights and activations channels-last (NHWC), the layout oneDNN and cuDNN run fastest;
4. cast to ``dtype`` (bf16 uses AVX512-BF16/AMX on CPUs and tensor cores on GPUs);
5. without ``compile``, replace each convolution by a fused kernel that also applies the ReLU
   after it and, at the end of every residual block, the shortcut addition and ReLU: on CPU
   oneDNN's, with its weights reordered ("prepacked") once (the kernels inductor uses when
   freezing a graph); on CUDA cuDNN's fused convolution + bias (+ add) + ReLU, kept per layer
   unless the plain convolution followed by the epilogue times over 5% faster;
6. with ``compile=True``: ``torch.compile`` the folded model with inductor's freezing instead of
   step 5 (slow to start: tens of seconds). It is off by default because step 5 measured faster:
   on the 2-core CPU no faster and slower under load; on an H100 at batch 256, 16,435 img/s
   against 20,735 img/s for step 5 (and 15,900 for torchvision compiled).

The result runs under ``torch.inference_mode`` and takes ordinary NCHW float input.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

__all__ = ["optimize_for_inference", "fold_batchnorm", "OptimizedModel"]

_CPU_DTYPES = (torch.float32, torch.bfloat16)
_CUDA_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold eval-mode BatchNorm layers into the convolution that feeds them, in place.

    Handles lucid's two conv+norm containers: :class:`lucid.nn.ConvBNReLU2d` (its ``bn`` becomes
    ``nn.Identity``) and ``nn.Sequential`` holding a ``Conv2d`` directly followed by a
    ``BatchNorm2d`` (stems, shortcuts, last convs of blocks). Returns ``module``.
    """
    if module.training:
        raise ValueError("fold_batchnorm: the module must be in eval mode (call .eval() first); got a module in train mode")
    _fold(module)
    return module


def _fold(module: nn.Module) -> None:
    from .nn import ConvBNReLU2d

    for child in module.children():
        if isinstance(child, ConvBNReLU2d) and isinstance(child.bn, nn.BatchNorm2d):
            child.conv = fuse_conv_bn_eval(child.conv, child.bn)
            child.bn = nn.Identity()
        elif isinstance(child, nn.Sequential):
            for i in range(len(child) - 1):
                if type(child[i]) is nn.Conv2d and isinstance(child[i + 1], nn.BatchNorm2d):
                    child[i] = fuse_conv_bn_eval(child[i], child[i + 1])
                    child[i + 1] = nn.Identity()
        _fold(child)


# ------------------------------------------------------- fused convolutions (oneDNN, cuDNN)


def _fusable(conv: nn.Module) -> bool:
    """Whether a module is a plain 2-D convolution the fused oneDNN/cuDNN kernels can run."""
    return type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def _plain_is_clearly_faster(fused: Callable[[], object], plain: Callable[[], object], repeats: int = 10) -> bool:
    """Time two CUDA callables with CUDA events, after one warm-up call each.

    True only when ``plain`` takes under 95% of ``fused``'s time: the fused kernel moves fewer
    bytes, and at small shapes a few timed calls are noisy (at batch 32 on an H100, a plain
    tie-break picked the plain kernel for 2 of 49 layers and cost 5% overall).
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


class _FusedConv2d(nn.Module):
    """A convolution (bias = folded BatchNorm) with its ReLU, or shortcut addition and ReLU, in one kernel.

    On CPU the kernel is oneDNN's. oneDNN wants the weight in a blocked layout chosen for the exact
    input shape; handing it a weight in any other layout makes it reorder the weight on every call
    (measured up to 8x slower in bf16). So the weight is reordered once, at the first call with a
    given input shape, and kept (as an opaque CPU-only tensor, outside ``state_dict``) until the
    shape changes.

    On CUDA the kernel is cuDNN's fused convolution + bias (+ shortcut) + ReLU. cuDNN's fused
    kernels are not the fastest at every shape, so at the first call with a given input shape the
    fused kernel and the plain convolution followed by an in-place epilogue are each timed, and the
    plain one is kept for that shape only if it is clearly faster (like ``cudnn.benchmark``); a
    shape the fused kernel refuses uses the plain one.
    """

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.padding = list(conv.padding)
        self.stride = list(conv.stride)
        self.dilation = list(conv.dilation)
        self.groups = conv.groups
        self.relu = relu
        self.register_buffer("weight", conv.weight.detach().clone())
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())
        self._packed: torch.Tensor | None = None
        self._packed_for: torch.Size | None = None
        self.cuda_fused: dict[tuple[torch.Size, bool], bool] = {}  # (input shape, adds a shortcut) -> fused kernel faster

    def __getstate__(self) -> dict:
        # the packed weight is an opaque tensor that cannot be copied or pickled; it is rebuilt on first use
        state = self.__dict__.copy()
        state["_packed"] = state["_packed_for"] = None
        return state

    def _conv_args(self) -> tuple:
        return self.stride, self.padding, self.dilation, self.groups

    # -- CPU: oneDNN with the weight prepacked for the input shape

    def _packed_weight(self, x: torch.Tensor) -> torch.Tensor:
        if self._packed_for != x.shape or self._packed is None:
            self._packed = torch.ops.mkldnn._reorder_convolution_weight(
                self.weight, self.padding, self.stride, self.dilation, self.groups, list(x.shape)
            )
            self._packed_for = x.shape
        return self._packed

    # -- CUDA: cuDNN's fused kernel where it is the faster one

    def _cuda(self, x: torch.Tensor, shortcut: torch.Tensor | None) -> torch.Tensor:
        stride, padding, dilation, groups = self._conv_args()
        if shortcut is None:
            def fused() -> torch.Tensor:
                return torch.cudnn_convolution_relu(x, self.weight, self.bias, stride, padding, dilation, groups)

            def plain() -> torch.Tensor:
                return F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups).relu_()
        else:
            def fused() -> torch.Tensor:
                return torch.cudnn_convolution_add_relu(x, self.weight, shortcut, 1.0, self.bias, stride, padding, dilation, groups)

            def plain() -> torch.Tensor:
                return F.conv2d(x, self.weight, self.bias, stride, padding, dilation, groups).add_(shortcut).relu_()

        key = (x.shape, shortcut is not None)
        if key not in self.cuda_fused:
            try:
                self.cuda_fused[key] = not _plain_is_clearly_faster(fused, plain)
            except RuntimeError:  # cuDNN has no fused kernel for this configuration
                self.cuda_fused[key] = False
        return fused() if self.cuda_fused[key] else plain()

    # -- the two entry points

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_cuda:
            if self.relu:
                return self._cuda(x, None)
            return F.conv2d(x, self.weight, self.bias, *self._conv_args())
        return torch.ops.mkldnn._convolution_pointwise(
            x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups,
            "relu" if self.relu else "none", [], "",
        )

    def add_relu_(self, x: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        """``relu(conv(x) + other)`` in one kernel (on CPU written into ``other``: no new buffer)."""
        if x.is_cuda:
            return self._cuda(x, other)
        return torch.ops.mkldnn._convolution_pointwise_.binary(
            other, x, self._packed_weight(x), self.bias, self.padding, self.stride, self.dilation, self.groups,
            "add", None, "relu", [], "",
        )

    def extra_repr(self) -> str:
        return (
            f"weight={tuple(self.weight.shape)}, stride={self.stride}, padding={self.padding}, "
            f"groups={self.groups}, relu={self.relu}"
        )


class _FusedResidual(nn.Module):
    """A lucid residual block whose last convolution also adds the shortcut and applies the ReLU."""

    def __init__(self, body: nn.Sequential, last: _FusedConv2d, se: nn.Module | None, downsample: nn.Module | None) -> None:
        super().__init__()
        self.body = body
        self.last = last
        self.se = se
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.body(x)
        if self.se is None:  # the shortcut (block input or projection) is not needed afterwards: reuse it
            return self.last.add_relu_(out, shortcut)
        return torch.relu(self.se(self.last(out)) + shortcut)


def _fuse_sequence(modules: list[nn.Module]) -> list[nn.Module]:
    """Fuse each convertible Conv2d with the ReLU after it (skipping the Identity left by folding)."""
    out: list[nn.Module] = []
    items = [m for m in modules if not isinstance(m, nn.Identity)]
    i = 0
    while i < len(items):
        m = items[i]
        if _fusable(m):
            relu = i + 1 < len(items) and isinstance(items[i + 1], nn.ReLU)
            out.append(_FusedConv2d(m, relu=relu))
            i += 2 if relu else 1
        else:
            out.append(_to_fused(m))
            i += 1
    return out


def _to_fused(module: nn.Module) -> nn.Module:
    """Rewrite a BatchNorm-folded lucid module tree to run on fused convolutions (oneDNN or cuDNN, by input device)."""
    from .models.resnet import BasicBlock, Bottleneck
    from .nn import ConvBNReLU2d

    if isinstance(module, ConvBNReLU2d) and isinstance(module.bn, nn.Identity) and _fusable(module.conv):
        return _FusedConv2d(module.conv, relu=True)
    if isinstance(module, nn.Sequential):
        return nn.Sequential(*_fuse_sequence(list(module)))
    if type(module) in (BasicBlock, Bottleneck):
        names = ("conv1", "conv2") if type(module) is BasicBlock else ("conv1", "conv2", "conv3")
        last = getattr(module, names[-1])
        if isinstance(last, nn.Sequential) and len(last) == 2 and _fusable(last[0]) and isinstance(last[1], nn.Identity):
            body = nn.Sequential(*[_to_fused(getattr(module, n)) for n in names[:-1]])
            downsample = None if module.downsample is None else _to_fused(module.downsample)
            return _FusedResidual(body, _FusedConv2d(last[0], relu=False), module.se, downsample)
    for name, child in list(module.named_children()):
        setattr(module, name, _to_fused(child))
    return module


# ---------------------------------------------------------------------------- wrapper


class _CapturedCall:
    """``net`` captured as a CUDA graph for one input shape: a call copies the new input into the
    captured input buffer and replays every kernel with a single launch."""

    def __init__(self, net: nn.Module, example: torch.Tensor) -> None:
        self.input = example.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # CUDA graphs must be warmed up off the capturing stream
            net(self.input)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = net(self.input)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.input.copy_(x)
        self.graph.replay()
        return self.output  # overwritten by the next replay: the caller copies it


class OptimizedModel(nn.Module):
    """The module :func:`optimize_for_inference` returns: inference only, ordinary NCHW input.

    Input is converted to the model's device, dtype and channels-last layout; the output is
    cast back to the input's floating dtype (float32 for integer input). It cannot be put in
    train mode: train the original model and optimize it again. With ``cuda_graph``, the first
    call at each input shape runs normally and then captures that shape as a CUDA graph, which
    later calls at the same shape replay (each shape keeps its graph and its memory).
    """

    def __init__(
        self, net: nn.Module, *, dtype: torch.dtype, device: torch.device, in_channels: int, backend: str, cuda_graph: bool = False,
    ) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.device = device
        self.in_channels = in_channels
        self.backend = backend
        self.cuda_graph = cuda_graph
        self._captured: dict[torch.Size, _CapturedCall] = {}
        super().train(False)

    def __getstate__(self) -> dict:
        # captured CUDA graphs cannot be copied or pickled; a copy captures its own on use
        state = self.__dict__.copy()
        state["_captured"] = {}
        return state

    def train(self, mode: bool = True) -> OptimizedModel:
        if mode:
            raise RuntimeError(
                "an optimize_for_inference() module is inference-only (BatchNorm is folded, weights are frozen); "
                "train the original model and call optimize_for_inference() again"
            )
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor of shape (N, {self.in_channels}, H, W), got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input of shape (N, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        with torch.inference_mode():
            if self.device.type != "cuda":
                return self.net(x.to(device=self.device, dtype=self.dtype, memory_format=torch.channels_last)).to(out_dtype)
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
        if self.cuda_graph:
            with torch.cuda.device(self.device):  # streams and graphs belong to the model's GPU
                self._captured[x.shape] = _CapturedCall(self.net, x)
        return out

    def extra_repr(self) -> str:
        return f"dtype={self.dtype}, device={self.device}, backend={self.backend!r}, cuda_graph={self.cuda_graph}"


def _model_device(model: nn.Module) -> torch.device:
    devices = {t.device for t in list(model.parameters()) + list(model.buffers())}
    if len(devices) != 1:
        raise ValueError(f"optimize_for_inference: the model's tensors must all be on one device, found {sorted(map(str, devices))}")
    device = devices.pop()
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"optimize_for_inference: the model must be on 'cpu' or 'cuda' with real weights, got device {str(device)!r}")
    return device


def optimize_for_inference(
    model: nn.Module, *, dtype: torch.dtype = torch.float32, compile: bool = False, cuda_graph: bool = False,
) -> OptimizedModel:
    """A new, faster, eval-mode copy of a lucid ResNet/ResNeXt with the same outputs.

    Args:
        model: a lucid model (``lucid.models.create_model(...)`` or ``from_pretrained``) on CPU or
            CUDA. A model in train mode is accepted: the copy runs in eval mode (BatchNorm uses its
            running statistics), which is what inference means. The model itself is not modified.
        dtype: ``torch.float32`` (same numbers to ~1e-6), ``torch.bfloat16`` (AVX512-BF16/AMX or
            tensor cores; logits within bf16 rounding), or ``torch.float16`` on CUDA.
        compile: ``torch.compile`` the folded model with inductor's freezing instead of running the
            fused oneDNN/cuDNN kernels directly. The first call compiles (tens of seconds), as does
            every new input shape; it measured slower than the default on the 2-core CPU and on an H100.
        cuda_graph: on CUDA, capture each input shape as a CUDA graph at its first call and replay
            it afterwards, which removes the per-kernel launch cost: on an H100 (bf16) a batch of 1
            took 0.41 ms instead of 3.14 ms, a batch of 32 1.84 ms instead of 3.42 ms, a batch of
            256 within 1%. Each captured shape keeps its own memory, so it is off by default; not
            combinable with ``compile``.

    Returns:
        an :class:`OptimizedModel` taking ordinary NCHW input and returning logits in the input's dtype.
    """
    from .models.resnet import ResNet

    if not isinstance(model, ResNet):
        raise TypeError(
            "optimize_for_inference expects a lucid ResNet/ResNeXt model (lucid.models.create_model or "
            f"from_pretrained), got {type(model).__module__}.{type(model).__qualname__}; "
            "load other checkpoints into a lucid model first (lucid.weights)"
        )
    for name, flag in (("compile", compile), ("cuda_graph", cuda_graph)):
        if not isinstance(flag, bool):
            raise TypeError(f"optimize_for_inference: {name} must be a bool, got {flag!r}")
    device = _model_device(model)
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"optimize_for_inference: cuda_graph=True needs a model on a CUDA device, got one on {device.type!r}")
    if cuda_graph and compile:
        raise ValueError("optimize_for_inference: choose compile=True or cuda_graph=True, not both (the compiled path is not captured)")
    allowed = _CUDA_DTYPES if device.type == "cuda" else _CPU_DTYPES
    if dtype not in allowed:
        raise ValueError(f"optimize_for_inference: dtype must be one of {[str(d) for d in allowed]} on {device.type}, got {dtype!r}")

    net = copy.deepcopy(model).eval().requires_grad_(False)
    fold_batchnorm(net)
    net = net.to(dtype=dtype, memory_format=torch.channels_last)
    backend = "eager"
    if compile:
        net = torch.compile(net, options={"freezing": True})
        backend = "inductor+freezing"
    elif device.type == "cuda" and torch.backends.cudnn.is_available():
        net = _to_fused(net)
        backend = "cudnn-fused"
    elif device.type == "cpu" and torch.backends.mkldnn.is_available():
        net = _to_fused(net)
        backend = "onednn-fused"
    return OptimizedModel(net, dtype=dtype, device=device, in_channels=model.config.in_channels, backend=backend, cuda_graph=cuda_graph)

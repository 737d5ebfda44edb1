"""Inference-speed rewrites of a lucid model: fold BatchNorm, go channels-last, fuse, cast or quantize, compile.

:func:`optimize_for_inference` returns a *new* module; the model passed in is never modified.
What it does, in order (each step chosen from measurements, see ``benchmarks/results/`` and the
performance guide):

1. copy the model, switch the copy to eval mode and freeze its parameters;
2. fold every BatchNorm into the convolution before it (:mod:`lucid.optimize.folding`);
3. on CPU, keep freed memory in the process (:mod:`lucid.optimize.memory`), so repeated calls
   reuse their activation pages instead of page-faulting fresh ones;
4. store weights and activations channels-last (NHWC), the layout oneDNN and cuDNN run fastest;
5. cast to ``dtype`` (bf16 uses AVX512-BF16/AMX on CPUs and tensor cores on GPUs), or for
   ``torch.int8`` quantize statically on a calibration set and compile the quantized graph once
   per input shape, by default ahead of time into a C++ library by AOTInductor (:mod:`lucid.optimize.quantize`);
6. without ``compile``, on CPU run the model as oneDNN Graph partitions compiled once per input
   shape (:mod:`lucid.optimize.graph`), which removes the fixed cost each operator call pays;
   with ``backend="onednn-fused"`` on CPU, and on CUDA, rebuild the model on fused kernels by
   each module class's registered rewrite rule (:mod:`lucid.optimize.rules`): a convolution also
   applies the ReLU after it and, at the end of every residual block, the shortcut addition and
   ReLU; on CPU oneDNN's kernels with weights prepacked once (:mod:`lucid.optimize.cpu`), on
   CUDA cuDNN's, kept per layer unless the plain convolution and epilogue are clearly faster
   (:mod:`lucid.optimize.cuda`);
7. with ``compile=True``: ``torch.compile`` the folded model with inductor's freezing instead of
   step 6 (tens of seconds to start; measured no faster than step 6).

The result runs under ``torch.inference_mode`` and takes ordinary NCHW float input.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from ..core.errors import OptionError, OptionTypeError
from ..models.foreign import first_foreign_part
from ..models.modeling_resnet import ResNet
from ..nn.measure import model_device
from . import graph
from .cpu import OneDNNConv2d
from .cuda import CuDNNConv2d
from .folding import fold_batchnorm
from .memory import retain_freed_memory
from .model import OptimizedModel
from .openvino import OpenVINONet, to_openvino
from .quantize import calibration_batches as check_calibration
from .quantize import compiler_available, quantize_int8
from .rules import register_rewrite, residual_rule, rewrite

__all__ = [
    "FLOAT_BACKENDS", "INT8_BACKENDS", "OptimizedModel", "RUNTIME_BACKENDS", "backends_for", "fold_batchnorm",
    "optimize_for_inference", "register_rewrite", "residual_rule",
]

_CPU_DTYPES = (torch.float32, torch.bfloat16, torch.int8)
_CUDA_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
FLOAT_BACKENDS = {
    "cpu": ("onednn-graph", "onednn-fused", "eager"),  # whole-graph oneDNN, fused oneDNN kernels, plain PyTorch
    "cuda": ("cudnn-fused", "eager"),
}
INT8_BACKENDS = ("inductor-aot", "onednn-lowered")  # CPU int8: the forward compiled to a C++ library; oneDNN operators called from Python
RUNTIME_BACKENDS = ("openvino",)  # CPU, any dtype: the model handed to another runtime (int8 through NNCF)


def backends_for(device_type: str, dtype: torch.dtype) -> tuple[str, ...]:
    """The ``backend=`` values :func:`optimize_for_inference` takes for ``dtype`` on a ``device_type`` device."""
    own = INT8_BACKENDS if dtype == torch.int8 else FLOAT_BACKENDS[device_type]
    return own + RUNTIME_BACKENDS if device_type == "cpu" else own


def _checked_device(model: nn.Module) -> torch.device:
    """The model's one device, refused unless it is a CPU or a CUDA device (the ones the backends run on)."""
    device = model_device(model, "optimize_for_inference")
    if device.type not in ("cpu", "cuda"):
        raise OptionError(f"optimize_for_inference: the model must be on 'cpu' or 'cuda' with real weights, got device {str(device)!r}")
    return device


def _check_arguments(
    model: nn.Module, dtype: torch.dtype, compile: bool, cuda_graph: bool, calibration: Any, retain_memory: bool,
) -> torch.device:
    if not isinstance(model, ResNet):
        raise OptionTypeError(
            "optimize_for_inference expects a lucid ResNet/ResNeXt model (lucid.models.create_model or "
            f"from_pretrained), got {type(model).__module__}.{type(model).__qualname__}; "
            "load other checkpoints into a lucid model first (lucid.weights)"
        )
    for name, flag in (("compile", compile), ("cuda_graph", cuda_graph), ("retain_memory", retain_memory)):
        if not isinstance(flag, bool):
            raise OptionTypeError(f"optimize_for_inference: {name} must be a bool, got {flag!r}")
    device = _checked_device(model)
    foreign = first_foreign_part(model)
    if foreign is not None:
        raise OptionError(
            f"optimize_for_inference: the model holds {foreign}, which the optimized copy would drop or mis-run; "
            "optimize the plain lucid model (before quantizing, wrapping or hooking it)",
            "model",
        )
    if cuda_graph and device.type != "cuda":
        raise OptionError(f"optimize_for_inference: cuda_graph=True needs a model on a CUDA device, got one on {device.type!r}")
    if cuda_graph and compile:
        raise OptionError("optimize_for_inference: choose compile=True or cuda_graph=True, not both (the compiled path is not captured)")
    allowed = _CUDA_DTYPES if device.type == "cuda" else _CPU_DTYPES
    if dtype not in allowed:
        raise OptionError(f"optimize_for_inference: dtype must be one of {[str(d) for d in allowed]} on {device.type}, got {dtype!r}")
    if dtype == torch.int8:
        if compile:
            raise OptionError("optimize_for_inference: compile=True does not apply to dtype=torch.int8 (its default backend 'inductor-aot' already compiles)")
        if model.training:
            raise OptionError(
                "optimize_for_inference(dtype=torch.int8): the model is in train mode; call model.eval() first "
                "(calibration measures the activations of the eval-mode model)"
            )
    elif calibration is not None:
        raise OptionError(f"optimize_for_inference: calibration= applies to dtype=torch.int8 only, got dtype={dtype}")
    return device


def _default_backend(device: torch.device, dtype: torch.dtype) -> str:
    """The fastest backend this build of PyTorch and this machine offer for the device and dtype
    (measured: see the performance guide)."""
    if dtype == torch.int8:
        return "inductor-aot" if compiler_available() else "onednn-lowered"
    if device.type == "cuda":
        return "cudnn-fused" if torch.backends.cudnn.is_available() else "eager"
    if graph.available():
        return "onednn-graph"
    return "onednn-fused" if torch.backends.mkldnn.is_available() else "eager"


def _check_backend(backend: str | None, device: torch.device, dtype: torch.dtype, compile: bool) -> str | None:
    """``backend`` checked against the device and dtype, or the default; ``None`` where ``compile`` decides."""
    if compile:
        if backend is not None:
            raise OptionError(f"optimize_for_inference: backend= does not apply with compile=True, got backend={backend!r}")
        return None
    if backend is None:
        return _default_backend(device, dtype)
    allowed = backends_for(device.type, dtype)
    if backend not in allowed:
        raise OptionError(f"optimize_for_inference: backend must be one of {list(allowed)} for {dtype} on {device.type}, got {backend!r}")
    if backend == "onednn-graph" and not graph.available():
        raise OptionError(f"optimize_for_inference: backend='onednn-graph' needs PyTorch's oneDNN Graph fuser, which torch {torch.__version__} lacks; use 'onednn-fused'")
    if backend == "inductor-aot" and not compiler_available():
        raise OptionError("optimize_for_inference: backend='inductor-aot' needs a C++ compiler ($CXX or g++ on the PATH); install one or use 'onednn-lowered'")
    return backend


def _fast_net(net: nn.Module, dtype: torch.dtype, backend: str | None, compile: bool,
              batches: list[torch.Tensor] | None) -> tuple[nn.Module, str]:
    """The folded ``net`` quantized (``batches``), compiled, or cast to channels-last ``dtype`` and set
    up to run on ``backend``; and the name of what runs it."""
    if backend == "openvino":
        example = torch.zeros(1, net.config.in_channels, 64, 64)  # traced once; batch, height and width stay dynamic
        return OpenVINONet(to_openvino(net, example, calibration=batches), dtype), backend
    if batches is not None:
        return quantize_int8(net, batches, backend), backend
    net = net.to(dtype=dtype, memory_format=torch.channels_last)
    if compile:
        return torch.compile(net, options={"freezing": True}), "inductor+freezing"
    if backend == "onednn-graph":
        return graph.OneDNNGraphNet(net), backend
    if backend == "onednn-fused":
        return rewrite(net, OneDNNConv2d), backend
    if backend == "cudnn-fused":
        return rewrite(net, CuDNNConv2d), backend
    return net, backend


def optimize_for_inference(
    model: nn.Module,
    *,
    dtype: torch.dtype = torch.float32,
    compile: bool = False,
    cuda_graph: bool = False,
    calibration: Iterable[Any] | None = None,
    calibration_batches: int = 8,
    retain_memory: bool = True,
    backend: str | None = None,
) -> OptimizedModel:
    """A new, faster, eval-mode copy of a lucid ResNet/ResNeXt with the same outputs.

    Args:
        model: a lucid model (``lucid.models.create_model(...)`` or ``from_pretrained``) on CPU or
            CUDA. For float dtypes a model in train mode is accepted: the copy runs in eval mode
            (BatchNorm uses its running statistics). For int8 it must be in eval mode. The model
            itself is not modified.
        dtype: ``torch.float32`` (same numbers to ~1e-6), ``torch.bfloat16`` (AVX512-BF16/AMX or
            tensor cores; logits within bf16 rounding), ``torch.float16`` on CUDA, or ``torch.int8``
            on CPU: static post-training quantization (int8 weights per output channel, uint8
            activations per tensor, calibrated on ``calibration``) run on oneDNN's int8 kernels
            (VNNI/AMX where the CPU has them). Needs torchao (``pip install "lucid[quantize]"``).
        compile: ``torch.compile`` the folded model with inductor's freezing instead of running the
            fused oneDNN/cuDNN kernels directly (compiles at each new input shape). Not for int8.
        cuda_graph: on CUDA, capture each input shape as a CUDA graph at its first call and replay it
            afterwards (no per-kernel launch cost); each shape keeps its memory. Not with ``compile``.
        calibration: for int8, an iterable of image batches ``(N, C, H, W)`` or ``(images, labels)``
            pairs, preprocessed as for the model (e.g. a training ``DataLoader``).
        calibration_batches: how many batches of ``calibration`` to use; fewer raise an error.
        retain_memory: on CPU, keep freed memory in the process (glibc's malloc settings, a
            process-wide change; :mod:`lucid.optimize.memory`) so every call reuses the pages of
            the one before instead of page-faulting fresh ones; the process then keeps its peak
            heap. ``False`` leaves the C library's settings alone.
        backend: without ``compile``, how the folded model runs (``None``: the fastest available;
            :data:`FLOAT_BACKENDS`, :data:`INT8_BACKENDS`). Float on CPU: ``"onednn-graph"``
            (oneDNN Graph partitions compiled per input shape, :mod:`lucid.optimize.graph`),
            ``"onednn-fused"`` (fused kernels layer by layer, :mod:`lucid.optimize.cpu`) or
            ``"eager"``; on CUDA ``"cudnn-fused"`` or ``"eager"``. int8: ``"inductor-aot"`` (a C++
            library per input shape, by AOTInductor; needs a C++ compiler) or ``"onednn-lowered"``
            (the same oneDNN operators called from Python; quicker to set up at a new shape). Any CPU
            dtype: ``"openvino"``, OpenVINO's runtime (int8 by NNCF; :mod:`lucid.optimize.openvino`).

    Returns:
        an :class:`OptimizedModel` taking ordinary NCHW float input and returning float logits in the
        input's dtype (float32 for int8).
    """
    device = _check_arguments(model, dtype, compile, cuda_graph, calibration, retain_memory)
    backend = _check_backend(backend, device, dtype, compile)
    if retain_memory and device.type == "cpu":
        retain_freed_memory()
    batches = None
    if dtype == torch.int8:
        batches = check_calibration(calibration, model.config.in_channels, calibration_batches)
    net = copy.deepcopy(model).eval().requires_grad_(False)
    net, backend = _fast_net(fold_batchnorm(net), dtype, backend, compile, batches)
    return OptimizedModel(net, dtype=dtype, device=device, in_channels=model.config.in_channels, backend=backend, cuda_graph=cuda_graph)

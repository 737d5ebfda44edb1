"""int8 inference on CPU: static post-training quantization with torchao's PT2E flow, run on oneDNN's int8 kernels.

The model is captured with ``torch.export``, annotated by torchao's ``X86InductorQuantizer``
(int8 weights, symmetric and per output channel; uint8 activations, one scale per tensor),
calibrated on real input batches and converted. For each input shape the quantized graph then
becomes oneDNN's quantized convolutions (convolution, bias, ReLU and the residual addition in one
kernel, with int8 weights prepacked once), in one of two ways (``lucid.optimize.INT8_BACKENDS``):

- ``"inductor-aot"``: AOTInductor, with freezing, compiles the whole forward into a C++ library,
  so no Python runs between the kernels (needs a C++ compiler);
- ``"onednn-lowered"``: torchao's lowering to an FX graph of the same oneDNN operators, run from
  Python, with two lucid passes: the stem's max-pool on the uint8 codes, and the images
  quantized in one buffer.

Input and output stay float: the first step quantizes the images and the last dequantizes the logits.

torchao is imported only here (``pip install "lucid[quantize]"``).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import operator
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.export import Dim

from ..core.checks import is_int
from ..core.errors import OptionError, OptionTypeError
from .rules import TransientCaches, tracing

__all__ = ["Int8Net", "calibration_batches", "compiler_available", "quantize_int8"]


def compiler_available() -> bool:
    """Whether the C++ compiler that inductor calls (``$CXX``, else ``g++``) is on the PATH."""
    from torch._inductor import config  # torch's compiler, loaded on use: ~1 s to import

    return shutil.which(config.cpp.cxx[-1] or "g++") is not None


def _images_of(item: Any, index: int, in_channels: int) -> torch.Tensor:
    """The image batch of one calibration item (a tensor, or the first element of an (images, labels) pair)."""
    x = item[0] if isinstance(item, (tuple, list)) and item else item
    where = f"calibration batch {index}"
    if not isinstance(x, torch.Tensor):
        raise OptionTypeError(f"{where}: expected a tensor of images (N, {in_channels}, H, W) or an (images, labels) pair, got {type(x).__name__}")
    if x.dim() != 4 or x.shape[1] != in_channels or x.shape[0] < 1:
        raise OptionError(f"{where}: expected images of shape (N, {in_channels}, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise OptionError(f"{where}: expected float images (normalized as for the model), got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise OptionError(f"{where}: images hold non-finite values (NaN or inf)")
    return x.detach().to("cpu", torch.float32)


def calibration_batches(calibration: Iterable[Any] | None, in_channels: int, count: int) -> list[torch.Tensor]:
    """The first ``count`` image batches of ``calibration``, checked; an error if it holds fewer."""
    if not is_int(count) or count < 1:
        raise OptionError(f"optimize_for_inference: calibration_batches must be a positive int, got {count!r}")
    if calibration is None:
        raise OptionError(
            "optimize_for_inference(dtype=torch.int8) needs calibration=: an iterable of image batches or "
            "(images, labels) pairs from the training data (e.g. a DataLoader), to measure activation ranges"
        )
    if isinstance(calibration, torch.Tensor):
        raise OptionTypeError("optimize_for_inference: calibration must be an iterable of batches (e.g. a list of tensors or a DataLoader), got one tensor")
    batches: list[torch.Tensor] = []
    for item in calibration:
        batches.append(_images_of(item, len(batches), in_channels))
        if len(batches) == count:
            break
    if len(batches) < count:
        raise OptionError(
            f"optimize_for_inference: calibration gave {len(batches)} batch(es), expected at least calibration_batches={count}; "
            "pass more batches or a lower calibration_batches"
        )
    return batches


def _pair(value: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return (value[0], value[0]) if len(value) == 1 else (value[0], value[1])


def _pooled_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """Output length of a max-pool along one axis, by torch's rule (a window never starts in the right padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    return out - 1 if ceil_mode and (out - 1) * stride >= size + padding else out


def max_pool_codes(codes: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int] = (0, 0),
                   dilation: list[int] = (1, 1), ceil_mode: bool = False) -> torch.Tensor:
    """Max-pool uint8 activation codes directly, as the running maximum of the window's shifted, strided views.

    0 is the smallest code, so padding with it gives what float's -inf padding gives: every
    window holds at least one real element. One pass per window position over the uint8 output,
    instead of converting the stem's whole output to a float type and back.
    """
    (kh, kw), (ph, pw), (dh, dw) = _pair(kernel), _pair(padding), _pair(dilation)
    sh, sw = _pair(stride or kernel)
    h, w = codes.shape[-2:]
    oh, ow = _pooled_size(h, kh, sh, ph, dh, ceil_mode), _pooled_size(w, kw, sw, pw, dw, ceil_mode)
    need_h, need_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    padded = F.pad(codes, (pw, need_w - w - pw, ph, need_h - h - ph))  # a negative right pad crops what no window reads
    out = None
    for i in range(kh):
        for j in range(kw):
            view = padded[..., i * dh: i * dh + (oh - 1) * sh + 1: sh, j * dw: j * dw + (ow - 1) * sw + 1: sw]
            out = view.clone(memory_format=torch.channels_last) if out is None else torch.maximum(out, view, out=out)
    return out


def pool_in_uint8(graph_module: torch.fx.GraphModule) -> int:
    """Replace ``quantize(max_pool(dequantize(codes)))`` with the same (scale, zero point) on both sides by
    :func:`max_pool_codes`, in place; returns how many were replaced.

    The maximum commutes with a quantization whose scale is positive, so the result is the same
    codes, without three full element-wise passes over the stem's output in float32.
    """
    ops = torch.ops.quantized_decomposed
    replaced = 0
    for node in list(graph_module.graph.nodes):
        if node.target != ops.quantize_per_tensor.default:
            continue
        item = node.args[0]
        pool = item.args[0] if item.op == "call_function" and item.target is operator.getitem and item.args[1] == 0 else None
        if pool is None or pool.target != torch.ops.aten.max_pool2d_with_indices.default or len(pool.users) != 1:
            continue
        dq = pool.args[0]
        if dq.target != ops.dequantize_per_tensor.default or tuple(dq.args[1:]) != tuple(node.args[1:]) or len(dq.users) != 1:
            continue
        with graph_module.graph.inserting_before(node):
            codes = graph_module.graph.call_function(max_pool_codes, (dq.args[0], *pool.args[1:]))
        node.replace_all_uses_with(codes)
        for dead in (node, item, pool, dq):
            graph_module.graph.erase_node(dead)
        replaced += 1
    graph_module.recompile()
    return replaced


def quantize_codes(x: torch.Tensor, scale: float, zero_point: int, quant_min: int, quant_max: int, dtype: torch.dtype) -> torch.Tensor:
    """The codes of ``quantized_decomposed.quantize_per_tensor`` (round half to even of ``x / scale``,
    shift by the zero point, clamp), computed in place in one float buffer instead of one per step."""
    codes = x.to(torch.float32).mul(1.0 / scale)
    codes.round_().add_(zero_point).clamp_(quant_min, quant_max)
    return codes.to(dtype)


def quantize_in_place(graph_module: torch.fx.GraphModule) -> int:
    """Run every per-tensor quantization of the graph as :func:`quantize_codes`, in place; returns how many.

    The network's first operator quantizes the float images; the step-by-step version makes a new
    full-size buffer for each of its steps.
    """
    replaced = 0
    for node in graph_module.graph.nodes:
        if node.target == torch.ops.quantized_decomposed.quantize_per_tensor.default:
            node.target = quantize_codes
            replaced += 1
    graph_module.recompile()
    return replaced


class Int8Net(TransientCaches, nn.Module):
    """A quantized model compiled (``backend="inductor-aot"``) or lowered (``"onednn-lowered"``)
    to oneDNN's int8 kernels once per input shape.

    Compiling specializes the graph and prepacks the int8 weights for one input shape (seconds for
    the lowering, tens of seconds for AOTInductor's C++), so the first call at each new shape is
    slow; every shape keeps its compiled graph.
    """

    _transient = {"_compiled": dict}  # prepacked oneDNN weights: a copy compiles its own graphs

    def __init__(self, quantized: torch.fx.GraphModule, backend: str) -> None:
        super().__init__()
        self.quantized = quantized
        self.backend = backend
        self._compiled: dict[tuple[torch.Size, bool], Callable[[torch.Tensor], torch.Tensor]] = {}

    def train(self, mode: bool = True) -> Int8Net:
        # the quantized graph is fixed in eval mode (torchao refuses train()/eval() on exported graphs)
        if mode:
            raise RuntimeError("an int8 model is inference-only")
        self.training = False
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tracing():
            raise RuntimeError(
                "an int8 optimize_for_inference() module runs prepacked oneDNN kernels and cannot be compiled, exported "
                "or traced; export the plain model (lucid.export.to_onnx) and quantize it with the runtime's tools"
            )
        key = (x.shape, x.is_contiguous(memory_format=torch.channels_last))
        if key not in self._compiled:
            self._compiled[key] = self._compile(x)
        return self._compiled[key](x)

    def _compile(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        if self.backend == "inductor-aot":
            return _compile_ahead_of_time(self.quantized, x)  # export reads the graph without changing it
        from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

        lowered = lower_pt2e_quantized_to_x86(copy.deepcopy(self.quantized), (x,))  # its passes rewrite the graph in place
        pool_in_uint8(lowered)
        quantize_in_place(lowered)
        return lowered


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """PyTorch's own log warnings from these loggers held back for the duration: notes about its
    internals that a user of lucid cannot act on."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _compile_ahead_of_time(quantized: torch.fx.GraphModule, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """``quantized`` compiled by AOTInductor, with freezing, into a C++ library for ``x``'s shape and loaded.

    The loaded library is independent of ``torch.compile``'s caches (a ``torch._dynamo.reset()`` or
    another export leaves it alone); its package file is removed once loaded.
    """
    from torch._inductor import aoti_compile_and_package, aoti_load_package  # loaded on use, as above

    with torch.inference_mode(False), torch.no_grad(), tempfile.TemporaryDirectory(prefix="lucid-int8-") as folder:
        example = x.clone()  # a normal tensor: export refuses inference-mode ones
        with warnings.catch_warnings(), _quiet("torch.utils.cpp_extension"):  # "No CUDA runtime is found"
            warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)  # inductor's constant folding
            program = torch.export.export(quantized, (example,))
            package = aoti_compile_and_package(program, package_path=os.path.join(folder, "int8.pt2"), inductor_configs={"freezing": True})
        return aoti_load_package(package)


def quantize_int8(net: nn.Module, batches: list[torch.Tensor], backend: str) -> Int8Net:
    """Quantize a BatchNorm-folded eval-mode float32 CPU model, calibrated on ``batches``, to run on ``backend``."""
    with _quiet("torch.utils._pytree"):  # torchao registers an Enum that torch now handles itself
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
            X86InductorQuantizer,
            get_default_x86_inductor_quantization_config,
        )

    example = batches[0].contiguous(memory_format=torch.channels_last)
    dynamic = ({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO},)  # any batch size and resolution
    captured = torch.export.export(net, (example,), dynamic_shapes=dynamic).module()
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(captured, quantizer)
    with torch.no_grad():
        for x in batches:
            prepared(x.contiguous(memory_format=torch.channels_last))
    return Int8Net(convert_pt2e(prepared), backend)


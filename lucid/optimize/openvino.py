"""OpenVINO as a backend: a lucid model converted to an OpenVINO model (int8 through NNCF) and compiled for the CPU.

:func:`to_openvino` is the one conversion lucid has, "torch module -> OpenVINO model (+ NNCF
int8)": ``optimize_for_inference(..., backend="openvino")`` runs its result in process, and
the OpenVINO export writes it to an IR file. :class:`OpenVINONet` compiles that model for the
CPU once per input shape (a static shape lets the CPU plugin pick its fastest kernels) and runs
it on torch tensors.

openvino and nncf are imported only inside these functions (``pip install "lucid[openvino]"``).
"""
from __future__ import annotations

import contextlib
import copy
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..core.errors import OptionError
from ..core.extras import require

__all__ = ["OpenVINONet", "PRECISION_HINTS", "compile_for_cpu", "quantize_with_nncf", "to_openvino"]

Batch = tuple[torch.Tensor, torch.Tensor]  # images, targets

# OpenVINO's CPU INFERENCE_PRECISION_HINT per lucid dtype: int8 keeps its non-quantized layers in f32
PRECISION_HINTS = {torch.float32: "f32", torch.bfloat16: "bf16", torch.int8: "f32"}


def to_openvino(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    calibration: list[torch.Tensor] | None = None,
    dynamic_batch: bool = True,
    dynamic_size: bool = True,
) -> Any:
    """``model`` as an ``openvino.Model`` taking float32 NCHW images; int8 when ``calibration`` is given.

    The eval-mode model is converted by ``openvino.convert_model`` (BatchNorm folded by OpenVINO)
    with ``example_input``'s shape, its batch and/or height and width left dynamic. With
    ``calibration`` (image batches, preprocessed as for the model), NNCF's post-training
    quantization (``nncf.quantize``: int8 weights per output channel, asymmetric int8
    activations) measures the activations on those batches.
    The model itself is not modified.
    """
    ov = require("openvino", "openvino", "OpenVINO conversion")  # extra: openvino
    net = copy.deepcopy(model).eval().requires_grad_(False)
    example = example_input.detach().to("cpu", torch.float32)
    shape = [-1 if dynamic_batch else example.shape[0], example.shape[1]]
    shape += [-1, -1] if dynamic_size else list(example.shape[2:])
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", (FutureWarning, torch.jit.TracerWarning))  # convert_model traces; the traced checks are constants
        converted = ov.convert_model(net, example_input=example, input=[ov.PartialShape(shape)])
    return converted if calibration is None else quantize_with_nncf(converted, calibration)


def _top1(compiled: Any, batches: Sequence[Batch]) -> float:
    """Top-1 accuracy of a compiled OpenVINO model on ``(images, targets)`` batches."""
    correct = total = 0
    for images, targets in batches:
        logits = torch.from_numpy(compiled(images.float().numpy())[0])
        correct += int((logits.argmax(1) == targets).sum())
        total += len(targets)
    return correct / max(total, 1)


def quantize_with_nncf(ov_model: Any, calibration: Sequence[torch.Tensor], validation: Sequence[Batch] | None = None,
                       max_drop: float | None = None) -> Any:
    """int8 ``openvino.Model`` from a float one: NNCF's post-training quantization on ``calibration`` batches.

    MIXED preset: symmetric int8 weights per output channel, asymmetric int8 activations, the scheme
    of lucid's own int8. With ``max_drop`` (top-1 points, e.g. ``0.5``) and ``validation``
    ``(images, targets)`` batches, NNCF's accuracy control keeps the most sensitive layers in float
    until the top-1 drop on ``validation`` is at most ``max_drop`` points.
    """
    nncf = require("nncf", "openvino", "int8 through OpenVINO")  # extra: openvino
    if not calibration:
        raise OptionError("int8 needs calibration images; got none", "calibration")
    nncf.set_log_level(logging.WARNING)
    data = nncf.Dataset([batch.detach().to("cpu", torch.float32).numpy() for batch in calibration])
    preset = nncf.QuantizationPreset.MIXED
    if max_drop is not None and not validation:
        raise OptionError("accuracy control needs validation images; got none", "validation")
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout stays the caller's (lucid ... --json)
        if max_drop is None:
            return nncf.quantize(ov_model, data, preset=preset, subset_size=len(calibration))
        return nncf.quantize_with_accuracy_control(
            ov_model, data, nncf.Dataset(list(validation)), validation_fn=_top1, max_drop=max_drop / 100,
            drop_type=nncf.DropType.ABSOLUTE, preset=preset, subset_size=len(calibration),
        )


def compile_for_cpu(ov_model: Any, dtype: torch.dtype, threads: int | None = None) -> Any:
    """``ov_model`` compiled by OpenVINO's CPU plugin for latency (one stream, ``threads`` threads: torch's by default)."""
    ov = require("openvino", "openvino", "OpenVINO inference")  # extra: openvino
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(),
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[dtype],
    }
    return ov.Core().compile_model(ov_model, "CPU", config)


class OpenVINONet(nn.Module):
    """An OpenVINO model run on torch tensors: float NCHW in, float32 logits out, compiled once per input shape.

    ``dtype`` chooses the CPU plugin's precision (:data:`PRECISION_HINTS`); an int8 model from
    :func:`to_openvino` runs its quantized layers in int8 at any precision.
    """

    # what OptimizedModel hands over: NCHW float32 as it came, so no torch kernel (and none of torch's
    # OpenMP threads, which would then spin against OpenVINO's) runs around the OpenVINO call
    input_memory_format = torch.contiguous_format
    input_dtype = torch.float32

    def __init__(self, ov_model: Any, dtype: torch.dtype) -> None:
        super().__init__()
        self.ov_model = ov_model
        self.precision = dtype
        self._requests: dict[torch.Size, Any] = {}

    def _request(self, shape: torch.Size) -> Any:
        request = self._requests.get(shape)
        if request is None:
            static = self.ov_model.clone()
            static.reshape({0: list(shape)})
            request = compile_for_cpu(static, self.precision).create_infer_request()
            self._requests[shape] = request
        return request

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = x.detach().to("cpu", torch.float32).contiguous()  # no copy for what OptimizedModel passes
        request = self._request(images.shape)
        request.infer({0: images.numpy()})
        return torch.from_numpy(request.get_output_tensor(0).data.copy())  # the request reuses its buffer

    def __deepcopy__(self, memo: dict[int, Any]) -> OpenVINONet:
        return OpenVINONet(self.ov_model.clone(), self.precision)  # compiled requests are not copied; the copy compiles its own

    def extra_repr(self) -> str:
        return f"precision={PRECISION_HINTS[self.precision]}, compiled shapes={[tuple(s) for s in self._requests]}"

"""OpenVINO: an IR model (``.xml`` + ``.bin``) for Intel CPUs and GPUs; int8 through NNCF, calibrated on real
images, optionally with NNCF's accuracy control (layers stay in float until the validation drop is within a bound).

:func:`convert_to_openvino` names the model's input and output and stores lucid's metadata on top of
:func:`lucid.optimize.openvino.to_openvino`, the one conversion (and NNCF quantization) that
``lucid.optimize_for_inference(..., backend="openvino")`` runs too.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import OptionError
from ..core.extras import require
from ..core.fileio import atomic_write
from ..optimize import openvino as optimize_openvino
from .common import INPUT_NAME, OUTPUT_NAME, check_model, check_path, deployable, example, resolve_shape
from .metadata import model_metadata

__all__ = ["convert_to_openvino", "quantize_openvino", "to_openvino"]

Batch = tuple[torch.Tensor, torch.Tensor]  # images, targets


def convert_to_openvino(model: nn.Module, shape: Sequence[int], dynamic_batch: bool = True, dynamic_size: bool = False) -> Any:
    """An ``openvino.Model`` of a folded eval-mode copy of ``model``, traced at ``shape`` (N, C, H, W).

    The input is named ``images`` and the output ``logits``; ``-1`` marks the dynamic dimensions.
    The model's config and metadata are stored in its ``rt_info`` under ``lucid``.
    """
    m = deployable(check_model(model))
    x, _ = example(m, tuple(shape), torch.float32, dynamic_batch)
    converted = optimize_openvino.to_openvino(m, x, dynamic_batch=dynamic_batch, dynamic_size=dynamic_size)
    converted.inputs[0].get_tensor().set_names({INPUT_NAME})
    converted.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    for key, value in model_metadata(model).items():
        converted.set_rt_info(value, ["lucid", key.removeprefix("lucid.")])
    return converted


quantize_openvino = optimize_openvino.quantize_with_nncf  # the same quantization, under the export package's name


def to_openvino(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    dtype: torch.dtype | str = torch.float32,
    dynamic_size: bool = False,
    calibration: Sequence[torch.Tensor] | None = None,
    validation: Sequence[Batch] | None = None,
    accuracy_drop: float | None = None,
) -> Path:
    """Export ``model`` to an OpenVINO IR ``path`` (``.xml``, with its ``.bin`` beside it), written atomically.

    ``dtype`` float32 keeps float32 weights, float16 stores them in half precision (OpenVINO
    computes in its own precision either way); with ``calibration`` batches the model is int8
    (:func:`quantize_openvino`, with ``validation`` and ``accuracy_drop`` for accuracy control).
    Other arguments mean what they mean for :func:`~lucid.export.to_onnx`.
    """
    ov = require("openvino", "openvino", "OpenVINO export")
    check_model(model)
    shape = resolve_shape(model, input_shape)
    path = check_path(path, ".xml")
    if dtype not in (torch.float32, torch.float16):
        raise OptionError(f"OpenVINO files store float32 or float16 weights (int8 through calibration), got {dtype}", "dtype")
    converted = convert_to_openvino(model, shape, dynamic_batch, dynamic_size)
    if calibration is not None:
        converted = optimize_openvino.quantize_with_nncf(converted, calibration, validation, accuracy_drop)
    return atomic_write(path, lambda tmp: ov.save_model(converted, str(tmp), compress_to_fp16=dtype == torch.float16))

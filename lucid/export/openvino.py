"""OpenVINO: an IR model (``.xml`` + ``.bin``) for Intel CPUs and GPUs; int8 through NNCF, calibrated on real
images, optionally with NNCF's accuracy control (layers stay in float until the validation drop is within a bound).

:func:`convert_to_openvino` and :func:`quantize_openvino` are the building blocks; they are shared with
``lucid.optimize_for_inference(..., backend="openvino")``.
"""
from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.errors import OptionError
from ..core.extras import require
from ..core.fileio import atomic_write
from .common import INPUT_NAME, OUTPUT_NAME, check_model, check_path, deployable, example, resolve_shape
from .metadata import model_metadata

__all__ = ["convert_to_openvino", "quantize_openvino", "to_openvino"]

Batch = tuple[torch.Tensor, torch.Tensor]  # images, targets


def convert_to_openvino(model: nn.Module, shape: Sequence[int], dynamic_batch: bool = True, dynamic_size: bool = False) -> Any:
    """An ``openvino.Model`` of a folded eval-mode copy of ``model``, traced at ``shape`` (N, C, H, W).

    The input is named ``images`` and the output ``logits``; ``-1`` marks the dynamic dimensions.
    The model's config and metadata are stored in its ``rt_info`` under ``lucid``.
    """
    ov = require("openvino", "openvino", "OpenVINO export")
    m = deployable(check_model(model))
    x, _ = example(m, tuple(shape), torch.float32, dynamic_batch)
    n, c, h, w = shape
    dims = [-1 if dynamic_batch else n, c, -1 if dynamic_size else h, -1 if dynamic_size else w]
    with warnings.catch_warnings():  # the input check in forward() is constant for the traced shape
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        converted = ov.convert_model(m, example_input=x, input=[ov.PartialShape(dims)])
    converted.inputs[0].get_tensor().set_names({INPUT_NAME})
    converted.outputs[0].get_tensor().set_names({OUTPUT_NAME})
    for key, value in model_metadata(model).items():
        converted.set_rt_info(value, ["lucid", key.removeprefix("lucid.")])
    return converted


def _top1(compiled: Any, batches: Sequence[Batch]) -> float:
    """Top-1 accuracy of a compiled OpenVINO model on ``(images, targets)`` batches."""
    correct = total = 0
    for images, targets in batches:
        logits = torch.from_numpy(compiled(images.float().numpy())[0])
        correct += int((logits.argmax(1) == targets).sum())
        total += len(targets)
    return correct / max(total, 1)


def quantize_openvino(model: Any, calibration: Sequence[torch.Tensor], validation: Sequence[Batch] | None = None,
                      max_drop: float | None = None) -> Any:
    """int8 ``openvino.Model`` from a float one, with ``nncf.quantize`` on ``calibration`` image batches.

    With ``max_drop`` (top-1 points, e.g. ``0.5``) and ``validation`` batches, NNCF's
    ``quantize_with_accuracy_control`` keeps the most sensitive layers in float until the
    top-1 drop on ``validation`` is at most ``max_drop`` points.
    """
    nncf = require("nncf", "openvino", "OpenVINO int8")
    if not calibration:
        raise OptionError("int8 needs calibration images; got none", "calibration")
    nncf.set_log_level(logging.WARNING)
    data = nncf.Dataset([b.float().numpy() for b in calibration])
    subset = sum(len(b) for b in calibration)
    if max_drop is None:
        return nncf.quantize(model, data, subset_size=subset)
    if not validation:
        raise OptionError("accuracy control needs validation images; got none", "validation")
    return nncf.quantize_with_accuracy_control(
        model, data, nncf.Dataset(list(validation)), validation_fn=_top1, max_drop=max_drop / 100,
        drop_type=nncf.DropType.ABSOLUTE, subset_size=subset,
    )


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
        converted = quantize_openvino(converted, calibration, validation, accuracy_drop)
    return atomic_write(path, lambda tmp: ov.save_model(converted, str(tmp), compress_to_fp16=dtype == torch.float16))

"""ONNX: a checked ``.onnx`` file (input ``images``, output ``logits``) for ONNX Runtime and other runtimes;
int8 through ONNX Runtime's static quantization (QDQ, int8 weights per channel, calibrated on real images)."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.checks import is_int
from ..core.errors import OptionError
from ..core.extras import require
from ..core.fileio import atomic_write
from .common import INPUT_NAME, OUTPUT_NAME, check_dtype, check_model, check_path, deployable, example, resolve_shape
from .metadata import model_metadata

__all__ = ["MIN_OPSET", "quantize_onnx", "to_onnx"]

# The torch.export-based ONNX exporter writes opset 18 or later; converting our graphs further down
# fails (ReduceMean takes its axes as an input from opset 18), so lower requests are refused.
MIN_OPSET = 18


def _check_opset(onnx: Any, opset: Any) -> int | None:
    newest = onnx.defs.onnx_opset_version()
    if opset is not None and not (is_int(opset) and MIN_OPSET <= opset <= newest):
        raise OptionError(f"opset must be None or an int from {MIN_OPSET} to {newest}, got {opset!r}", "opset")
    return None if opset is None else int(opset)


class _Batches:
    """ONNX Runtime's calibration reader over a list of image batches."""

    def __init__(self, batches: Sequence[torch.Tensor]) -> None:
        self._items = iter([{INPUT_NAME: b.float().cpu().numpy()} for b in batches])

    def get_next(self) -> dict[str, Any] | None:
        return next(self._items, None)


def quantize_onnx(source: str | os.PathLike[str], target: str | os.PathLike[str], calibration: Sequence[torch.Tensor]) -> Path:
    """Write an int8 copy of the float ONNX file ``source`` to ``target`` with ONNX Runtime's ``quantize_static``.

    QDQ format, int8 weights per output channel, uint8 activations whose ranges are the min/max
    seen on ``calibration`` (batches of preprocessed images). The graph first goes through ONNX
    Runtime's quantization pre-processing (shape inference, graph optimization), as it advises.
    The source's metadata is kept.
    """
    onnx = require("onnx", "export", "int8 ONNX export")
    quantization = require("onnxruntime.quantization", "export", "int8 ONNX export")
    if not calibration:
        raise OptionError("int8 needs calibration images; got none", "calibration")
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quantization.shape_inference.quant_pre_process(str(source), str(prepared))
        _quantize(quantization, prepared, target, calibration)
    props = {p.key: p.value for p in onnx.load(str(source), load_external_data=False).metadata_props}
    quantized = onnx.load(str(target))
    quantized.metadata_props.clear()
    for key, value in props.items():
        quantized.metadata_props.add(key=key, value=value)
    onnx.save(quantized, str(target))
    return Path(target)


def _quantize(quantization: Any, source: Path, target: str | os.PathLike[str], calibration: Sequence[torch.Tensor]) -> None:
    quantization.quantize_static(
        str(source), str(target), _Batches(calibration), quant_format=quantization.QuantFormat.QDQ, per_channel=True,
        activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
        calibrate_method=quantization.CalibrationMethod.MinMax,
    )


def to_onnx(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    opset: int | None = None,
    dtype: torch.dtype = torch.float32,
    dynamic_size: bool = False,
    calibration: Sequence[torch.Tensor] | None = None,
) -> Path:
    """Export ``model`` to an ONNX file at ``path`` (written atomically) and return the path.

    Args:
        model: a lucid ResNet/ResNeXt; it is not modified (a folded eval-mode copy is exported).
        path: the ``.onnx`` file; parent folders are created. Models over 2 GB also get ``<name>.data``.
        input_shape: ``(N, C, H, W)`` of the example input; default ``(1, in_channels, S, S)`` with S the
            size the model was trained at (``model.metadata["preprocessing"]``), else 224.
        dynamic_batch: let the batch dimension (named ``batch``) vary.
        opset: ONNX opset version, 18 or later; ``None`` takes the exporter's default.
        dtype: floating-point type of the weights and of the ``images`` input.
        dynamic_size: let height and width vary too (from 32 px).
        calibration: batches of preprocessed training images; when given, the file is int8
            (see :func:`quantize_onnx`) and ``dtype`` must be float32.

    The graph's input is ``images`` and its output ``logits``; BatchNorm is folded into the
    convolutions, the config (and ``model.metadata``: class names, preprocessing) is kept in the
    file's metadata, and the file passes ``onnx.checker`` before it replaces ``path``.
    """
    onnx = require("onnx", "export", "ONNX export")
    check_model(model)
    shape = resolve_shape(model, input_shape)
    dtype = check_dtype(dtype)
    opset = _check_opset(onnx, opset)
    path = check_path(path, ".onnx")
    if calibration is not None and dtype != torch.float32:
        raise OptionError(f"int8 ONNX quantizes a float32 graph; got dtype={dtype}", "dtype")
    m = deployable(model, dtype)
    x, dynamic_shapes = example(m, shape, dtype, dynamic_batch, dynamic_size)
    program = torch.onnx.export(
        m, (x,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes=dynamic_shapes, opset_version=opset, optimize=True, verbose=False,
    )
    program.model.metadata_props.update(model_metadata(model))

    def write(tmp: Path) -> None:
        if calibration is None:
            program.save(tmp)
        else:
            with tempfile.TemporaryDirectory() as scratch:
                program.save(Path(scratch) / "float.onnx")
                quantize_onnx(Path(scratch) / "float.onnx", tmp, calibration)
        onnx.checker.check_model(str(tmp))  # by path: also works for files with external data

    return atomic_write(path, write)


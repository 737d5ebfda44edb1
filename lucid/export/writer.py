"""One entry point for every format: :func:`export_model` checks the format/dtype combination, then calls
the format's writer; :func:`default_path` names the file next to a run."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..core.errors import OptionError
from .executorch import to_executorch
from .onnx import to_onnx
from .openvino import Batch, to_openvino
from .program import to_exported_program

__all__ = ["EXPORT_DTYPES", "EXPORT_FORMATS", "SUFFIXES", "check_combination", "default_path", "export_model", "refusal"]

EXPORT_FORMATS = ("onnx", "openvino", "executorch", "torch-export")
EXPORT_DTYPES = ("float32", "bfloat16", "float16", "int8")
SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "executorch": ".pte", "torch-export": ".pt2"}

# (format, dtype or "dynamic-size") -> why that format cannot do it
_REFUSED = {
    ("onnx", "bfloat16"): "ONNX Runtime's CPU kernels have no bfloat16 convolution; use float16 or int8",
    ("openvino", "bfloat16"): "OpenVINO stores float32 or float16 weights and picks bfloat16 itself at run time "
                              "on CPUs that have it; use float32 or float16",
    ("executorch", "bfloat16"): "ExecuTorch's XNNPACK backend has no bfloat16 kernels; use float16 or int8",
    ("torch-export", "int8"): "a torch.export program has no int8 of its own; use --format executorch, openvino or onnx "
                              "for int8, or lucid.optimize_for_inference(dtype=torch.int8) in PyTorch",
    ("executorch", "dynamic-size"): "ExecuTorch plans its memory for one image size; export at the size you deploy",
}


def refusal(fmt: str, dtype: str, dynamic_size: bool = False) -> str | None:
    """Why ``fmt`` cannot write ``dtype`` (or a dynamic size), or ``None`` when it can."""
    if (fmt, dtype) in _REFUSED:
        return _REFUSED[(fmt, dtype)]
    if dynamic_size and (fmt, "dynamic-size") in _REFUSED:
        return _REFUSED[(fmt, "dynamic-size")]
    return None


def check_combination(fmt: str, dtype: str, dynamic_size: bool = False) -> None:
    """Refuse, in one line, a format/dtype (or dynamic size) combination the format cannot write."""
    if fmt not in EXPORT_FORMATS:
        raise OptionError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}", "format")
    if dtype not in EXPORT_DTYPES:
        raise OptionError(f"--dtype must be one of {', '.join(EXPORT_DTYPES)}, got {dtype!r}", "dtype")
    reason = refusal(fmt, dtype, dynamic_size)
    if reason is not None:
        what = dtype if (fmt, dtype) in _REFUSED else "--dynamic-size"
        raise OptionError(f"--format {fmt} cannot write {what}: {reason}", "dtype")


def default_path(run: str | os.PathLike[str], fmt: str, dtype: str) -> Path:
    """``RUN/export/model[.DTYPE].SUFFIX``: next to the run, one file per format and dtype."""
    run = Path(run)
    folder = run if run.is_dir() else run.parent
    tag = "" if dtype == "float32" else f".{dtype}"
    return folder / "export" / f"model{tag}{SUFFIXES[fmt]}"


def export_model(model: nn.Module, fmt: str, path: str | os.PathLike[str], dtype: str = "float32", *,
                 input_shape: Sequence[int] | None = None, dynamic_size: bool = False,
                 calibration: Sequence[torch.Tensor] | None = None, validation: Sequence[Batch] | None = None,
                 accuracy_drop: float | None = None, opset: int | None = None) -> Path:
    """Write ``model`` as ``fmt`` at ``dtype`` (``int8`` needs ``calibration`` image batches) and return the path.

    ``accuracy_drop`` (top-1 points, with ``validation`` batches) applies NNCF's accuracy control to
    OpenVINO int8. Every file carries the model's config and metadata (see :func:`read_metadata`).
    """
    check_combination(fmt, dtype, dynamic_size)
    if (dtype == "int8") != (calibration is not None):
        raise OptionError("calibration images go with dtype int8, and int8 needs them", "calibration")
    if accuracy_drop is not None and (fmt, dtype) != ("openvino", "int8"):
        raise OptionError("--accuracy-drop applies to --format openvino --dtype int8 (NNCF's accuracy control)", "accuracy_drop")
    if opset is not None and fmt != "onnx":
        raise OptionError("--opset applies to --format onnx only", "opset")
    floating = torch.float32 if dtype == "int8" else getattr(torch, dtype)
    shape = {"input_shape": input_shape}
    if fmt == "onnx":
        return to_onnx(model, path, dtype=floating, dynamic_size=dynamic_size, calibration=calibration, opset=opset, **shape)
    if fmt == "openvino":
        return to_openvino(model, path, dtype=floating, dynamic_size=dynamic_size, calibration=calibration,
                           validation=validation, accuracy_drop=accuracy_drop, **shape)
    if fmt == "executorch":
        return to_executorch(model, path, dtype=floating, calibration=calibration, **shape)
    to_exported_program(model, path=path, dtype=floating, dynamic_size=dynamic_size, **shape)
    return Path(path)

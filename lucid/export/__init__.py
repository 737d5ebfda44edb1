"""Deployment: export a lucid model to ONNX, OpenVINO, ExecuTorch or a ``torch.export`` program, run the
artefact in its own runtime, and verify it against PyTorch.

``to_onnx`` writes a checked ``.onnx`` file (input ``images``, output ``logits``) for ONNX Runtime and
other runtimes; ``to_openvino`` an OpenVINO IR (int8 through NNCF); ``to_executorch`` an XNNPACK-lowered
``.pte`` program for phones and edge devices; ``to_exported_program`` captures the model with
``torch.export`` for ``torch.export.save``/``load`` and AOTInductor. :func:`export_model` is the one
entry point the ``lucid export`` command uses. Every artefact carries the model's config, class
names and preprocessing; :func:`read_metadata` reads them back from any format, and
:func:`load_runner` runs any artefact behind one call. :func:`verify` compares an artefact with
PyTorch on random images, :func:`verify_artefacts` on validation images, with speed.

Every export traces an eval-mode copy of the model with each BatchNorm folded into the convolution
before it (:func:`lucid.optimize.fold_batchnorm`), so the caller's model is never changed. The input
size is the one the model was trained at (``model.metadata["preprocessing"]``), else 224; the batch
is dynamic. Each runtime is an extra: ``pip install "lucid[export]"`` (onnx, onnxruntime,
onnxscript), ``"lucid[openvino]"`` (openvino, nncf), ``"lucid[executorch]"``; they are imported only when needed.
"""
from __future__ import annotations

from .common import INPUT_NAME, OUTPUT_NAME
from .executorch import to_executorch
from .metadata import ARTEFACT_SUFFIXES, artefact_format, read_metadata
from .onnx import MIN_OPSET, quantize_onnx, to_onnx
from .openvino import convert_to_openvino, quantize_openvino, to_openvino
from .program import to_exported_program
from .runtime import Runner, load_runner
from .verification import FORMATS, Difference, VerifyRow, format_table, measure_speed, verify, verify_artefacts
from .writer import EXPORT_DTYPES, EXPORT_FORMATS, check_combination, default_path, export_model

__all__ = [
    "ARTEFACT_SUFFIXES",
    "EXPORT_DTYPES",
    "EXPORT_FORMATS",
    "FORMATS",
    "INPUT_NAME",
    "MIN_OPSET",
    "OUTPUT_NAME",
    "Difference",
    "Runner",
    "VerifyRow",
    "artefact_format",
    "check_combination",
    "convert_to_openvino",
    "default_path",
    "export_model",
    "format_table",
    "load_runner",
    "measure_speed",
    "quantize_onnx",
    "quantize_openvino",
    "read_metadata",
    "to_executorch",
    "to_exported_program",
    "to_onnx",
    "to_openvino",
    "verify",
    "verify_artefacts",
]

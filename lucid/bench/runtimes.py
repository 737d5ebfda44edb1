"""The deployment runtimes as contenders: lucid's ONNX export run by ONNX Runtime and OpenVINO (fp32, bf16, int8)."""
from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.extras import require
from ..export import INPUT_NAME, to_onnx
from .models import calibration_set

__all__ = ["Bind", "onnx_models", "openvino_model", "ort_session", "runtime_runners", "runtime_threads", "runtimes_installed"]


def runtime_threads() -> int:
    """The thread count every runtime is given: torch's, so each contender uses the same cores."""
    return torch.get_num_threads()


class _Calibration:
    """onnxruntime's CalibrationDataReader protocol over a list of batches."""

    def __init__(self, name: str, batches: list[torch.Tensor]) -> None:
        self._items = iter([{name: b.numpy()} for b in batches])

    def get_next(self) -> dict | None:
        return next(self._items, None)


def onnx_models(model: nn.Module, x: torch.Tensor, folder: Path, int8: bool, calibration: list[torch.Tensor] | None = None) -> dict[str, Path]:
    """lucid's own ONNX export of ``model`` (``fp32``) and, with ``int8``, onnxruntime's static QDQ
    quantization of it (``int8``: int8 weights per channel, uint8 activations, calibrated on
    ``calibration``, default :func:`calibration_set`), written under ``folder``."""
    paths = {"fp32": to_onnx(model, folder / "model.onnx", input_shape=tuple(x.shape))}
    if int8:
        quantization = require("onnxruntime.quantization", "export", "int8 ONNX models")  # extra: export
        batches = calibration or calibration_set(model, x.shape[0], x.shape[-1])
        paths["int8"] = folder / "model.int8.onnx"
        quantization.quantize_static(
            str(paths["fp32"]), str(paths["int8"]), _Calibration(INPUT_NAME, batches), quant_format=quantization.QuantFormat.QDQ,
            per_channel=True, activation_type=quantization.QuantType.QUInt8, weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
        )
    return paths


Bind = Callable[[torch.Tensor], Callable[[], Any]]  # input batch -> a runner timing one call on it


def ort_session(path: Path) -> Bind:
    """ONNX Runtime's CPU session on the file (all graph optimizations, :func:`runtime_threads` threads), ready to bind an input."""
    ort = require("onnxruntime", "export", "ONNX Runtime contenders")  # extra: export
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = runtime_threads()
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # no busy-waiting threads after a run: they would steal the cores from the contender timed next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def bind(x: torch.Tensor) -> Callable[[], Any]:
        feed = {name: x.numpy()}
        return lambda: session.run(None, feed)

    return bind


def openvino_model(path: Path, precision: str | None) -> Bind:
    """OpenVINO's CPU plugin on the file (latency mode, one stream, :func:`runtime_threads` threads), ready to bind an input.

    ``precision`` is its ``INFERENCE_PRECISION_HINT`` (``"f32"``, ``"bf16"``), or ``None`` for its
    default (bf16 where the CPU has it; an int8 QDQ model runs its quantized layers in int8 either way).
    """
    ov = require("openvino", "openvino", "OpenVINO contenders")  # extra: openvino
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": runtime_threads(), "NUM_STREAMS": 1}
    if precision is not None:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = ov.Core().compile_model(str(path), "CPU", config)

    def bind(x: torch.Tensor) -> Callable[[], Any]:
        request, feed = compiled.create_infer_request(), x.numpy()
        return lambda: request.infer({0: feed})

    return bind


def runtimes_installed() -> list[str]:
    """Which of the deployment runtimes (``onnxruntime``, ``openvino``) can be imported here."""
    return [name for name in ("onnxruntime", "openvino") if importlib.util.find_spec(name) is not None]


def runtime_runners(paths: dict[str, Path], dtype: torch.dtype) -> list[tuple[str, str, Bind]]:
    """OpenVINO and ONNX Runtime (those installed) at ``dtype`` on the files of :func:`onnx_models`:
    ``(runtime, setup, bind)`` triples.

    float32: both runtimes, OpenVINO told to keep f32. bfloat16: OpenVINO only (onnxruntime's CPU
    provider has no bf16 convolutions). int8: both running onnxruntime's QDQ quantization of the export.
    """
    source = "lucid's ONNX export"
    wanted = {
        torch.float32: [("onnxruntime", f"float32, {source}", lambda: ort_session(paths["fp32"])),
                        ("openvino", f"f32 hint, {source}", lambda: openvino_model(paths["fp32"], "f32"))],
        torch.bfloat16: [("openvino", f"bf16 hint, {source}", lambda: openvino_model(paths["fp32"], "bf16"))],
        torch.int8: [("onnxruntime", "int8 QDQ of the export (quantize_static)", lambda: ort_session(paths["int8"])),
                     ("openvino", "int8 QDQ of the export (quantize_static)", lambda: openvino_model(paths["int8"], None))],
    }.get(dtype, [])
    installed = runtimes_installed()
    return [(name, setup, make()) for name, setup, make in wanted if name in installed]

"""Run an exported artefact in its own runtime behind one call: ``runner(images) -> logits``.

ONNX files run in ONNX Runtime, OpenVINO models in OpenVINO (CPU, float32 inference precision, so a
float model is compared as it was written), ``.pte`` programs in the ExecuTorch runtime and ``.pt2``
programs through ``torch.export.load``. Inputs are float32 image batches; each runner casts them to
the artefact's input type and returns float32 logits on the CPU.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..core.errors import CheckpointError
from ..core.extras import require
from .common import OUTPUT_NAME
from .metadata import artefact_format

__all__ = ["Runner", "load_runner"]

_ORT_TYPES = {"tensor(float)": torch.float32, "tensor(float16)": torch.float16, "tensor(double)": torch.float64}
_EXECUTORCH_TYPES = {6: torch.float32, 5: torch.float16}  # c10::ScalarType codes


@dataclass
class Runner:
    """An artefact loaded in its runtime: call it on a float32 ``N x C x H x W`` batch to get float32 logits."""

    path: Path
    format: str
    input_shape: list[Any]  # ints, or a name/None where the dimension is dynamic
    run: Callable[[torch.Tensor], torch.Tensor]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.run(images.detach().cpu().contiguous()).float()


def _onnx(path: Path, threads: int | None) -> Runner:
    ort = require("onnxruntime", "export", "running an ONNX file")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads leave the cores free
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    if inp.type not in _ORT_TYPES:
        raise CheckpointError(f"{path}: lucid runs float32/float16/float64 inputs in ONNX Runtime, this file takes {inp.type}")
    dtype = _ORT_TYPES[inp.type]

    def run(x: torch.Tensor) -> torch.Tensor:
        (out,) = session.run([OUTPUT_NAME], {inp.name: x.to(dtype).numpy()})
        return torch.from_numpy(out)

    return Runner(path, "onnx", list(inp.shape), run)


def _openvino(path: Path, threads: int | None) -> Runner:
    ov = require("openvino", "openvino", "running an OpenVINO model")
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(str(path), "CPU", config)
    request = compiled.create_infer_request()

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(request.infer([x.float().numpy()])[0].copy())

    shape = [d.get_length() if d.is_static else None for d in compiled.inputs[0].get_partial_shape()]
    return Runner(path, "openvino", shape, run)


def _executorch(path: Path, threads: int | None) -> Runner:
    runtime = require("executorch.runtime", "executorch", "running an ExecuTorch program")
    if threads:
        portable = require("executorch.extension.pybindings.portable_lib", "executorch", "running an ExecuTorch program")
        portable._unsafe_reset_threadpool(threads)  # the runtime's one documented way to size its thread pool
    program = runtime.Runtime.get().load_program(str(path))
    meta = program.metadata("forward").input_tensor_meta(0)
    if meta.dtype() not in _EXECUTORCH_TYPES:
        raise CheckpointError(f"{path}: lucid runs float32/float16 ExecuTorch inputs, this program takes ScalarType {meta.dtype()}")
    dtype = _EXECUTORCH_TYPES[meta.dtype()]
    method = program.load_method("forward")
    largest = meta.sizes()[0]  # memory is planned for this batch at most: larger batches run in chunks

    def run(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([method.execute([chunk.to(dtype).contiguous()])[0] for chunk in x.split(largest)])

    return Runner(path, "executorch", ["batch", *meta.sizes()[1:]], run)


def _program(path: Path, threads: int | None) -> Runner:
    program = torch.export.load(str(path))
    (name,) = program.graph_signature.user_inputs
    val = next(n.meta["val"] for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    module = program.module()

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(x.to(device=val.device, dtype=val.dtype)).cpu()

    return Runner(path, "torch-export", [d if isinstance(d, int) else str(d) for d in val.shape], run)


def load_runner(path: str | os.PathLike[str], threads: int | None = None) -> Runner:
    """Load the artefact ``path`` (``.onnx``, ``.xml``, ``.pte`` or ``.pt2``) in its runtime, on the CPU.

    ``threads`` sets the runtime's threads (default: the runtime's own choice; for ``.pt2`` files,
    PyTorch's ``torch.set_num_threads`` applies). The runtime
    comes from the artefact's extra (``lucid[export]``, ``lucid[openvino]``, ``lucid[executorch]``).
    """
    path = Path(path)
    fmt = artefact_format(path)
    if not path.is_file():
        raise FileNotFoundError(2, "no such exported model", str(path))
    loaders = {"onnx": _onnx, "openvino": _openvino, "executorch": _executorch, "torch-export": _program}
    return loaders[fmt](path, threads)

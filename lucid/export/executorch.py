"""ExecuTorch: a ``.pte`` program for phones and edge devices, with the whole network delegated to XNNPACK;
int8 through the XNNPACK quantizer (torchao's PT2E flow, per-channel symmetric weights)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..core.errors import OptionError
from ..core.extras import require
from ..core.fileio import atomic_write_bytes
from .common import check_model, check_path, deployable, example, resolve_shape
from .metadata import model_metadata, write_sidecar

__all__ = ["MAX_BATCH", "to_executorch"]

# ExecuTorch plans its memory for the largest input: the batch is dynamic up to this size
MAX_BATCH = 16


def _quantized(program: torch.export.ExportedProgram, calibration: Sequence[torch.Tensor], x: torch.Tensor,
               dynamic_shapes: object) -> torch.export.ExportedProgram:
    """The program quantized to int8 with the XNNPACK quantizer, observed on ``calibration`` batches."""
    quantizer_module = require("executorch.backends.xnnpack.quantizer.xnnpack_quantizer", "executorch", "ExecuTorch int8")
    pt2e = require("torchao.quantization.pt2e.quantize_pt2e", "executorch", "ExecuTorch int8")
    config = quantizer_module.get_symmetric_quantization_config(is_per_channel=True)
    quantizer = quantizer_module.XNNPACKQuantizer().set_global(config)
    prepared = pt2e.prepare_pt2e(program.module(), quantizer)
    with torch.no_grad():
        for batch in calibration:
            prepared(batch.float())
    converted = pt2e.convert_pt2e(prepared)
    return torch.export.export(converted, (x,), dynamic_shapes=dynamic_shapes)


def to_executorch(
    model: nn.Module,
    path: str | os.PathLike[str],
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    dtype: torch.dtype = torch.float32,
    calibration: Sequence[torch.Tensor] | None = None,
) -> Path:
    """Export ``model`` to an ExecuTorch program ``path`` (``.pte``) lowered to XNNPACK, written atomically.

    ``dtype`` is float32 or float16; with ``calibration`` batches the program is int8. The
    config and metadata go to a sidecar ``<file>.json``. Height and width are fixed (the
    exported size); the batch is dynamic up to :data:`MAX_BATCH` unless ``dynamic_batch`` is false.
    """
    exir = require("executorch.exir", "executorch", "ExecuTorch export")
    partitioner = require("executorch.backends.xnnpack.partition.xnnpack_partitioner", "executorch", "ExecuTorch export")
    check_model(model)
    shape = resolve_shape(model, input_shape)
    path = check_path(path, ".pte")
    if dtype not in (torch.float32, torch.float16):
        raise OptionError(f"ExecuTorch's XNNPACK backend runs float32 or float16 (int8 through calibration), got {dtype}", "dtype")
    if calibration is not None and dtype != torch.float32:
        raise OptionError(f"int8 ExecuTorch quantizes a float32 graph; got dtype={dtype}", "dtype")
    m = deployable(model, dtype)
    x, dynamic_shapes = example(m, shape, dtype, dynamic_batch, max_batch=MAX_BATCH)
    program = torch.export.export(m, (x,), dynamic_shapes=dynamic_shapes)
    if calibration is not None:
        program = _quantized(program, calibration, x, dynamic_shapes)
    lowered = exir.to_edge_transform_and_lower(program, partitioner=[partitioner.XnnpackPartitioner()]).to_executorch()
    write_sidecar(path, model_metadata(model))
    return atomic_write_bytes(path, lowered.buffer)

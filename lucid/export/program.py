"""torch.export: a ``.pt2`` program for ``torch.export.load``, AOTInductor and other PyTorch servers."""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from ..core.fileio import atomic_write
from .common import check_dtype, check_model, check_path, deployable, example, resolve_shape
from .metadata import model_metadata, write_sidecar

__all__ = ["to_exported_program"]


def to_exported_program(
    model: nn.Module,
    input_shape: Sequence[int] | None = None,
    dynamic_batch: bool = True,
    path: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    dynamic_size: bool = False,
) -> torch.export.ExportedProgram:
    """Capture a folded eval-mode copy of ``model`` with ``torch.export``; if ``path`` is given, also save it there.

    ``input_shape``, ``dynamic_batch``, ``dynamic_size`` and ``dtype`` mean what they mean for
    :func:`~lucid.export.to_onnx`. The file (conventionally ``.pt2``) is written atomically with
    ``torch.export.save``, with the config and metadata in a sidecar ``<file>.json``; read it back
    with ``torch.export.load(path).module()``.
    """
    check_model(model)
    shape = resolve_shape(model, input_shape)
    dtype = check_dtype(dtype)
    target = None if path is None else check_path(path, ".pt2")
    m = deployable(model, dtype)
    x, dynamic_shapes = example(m, shape, dtype, dynamic_batch, dynamic_size)
    program = torch.export.export(m, (x,), dynamic_shapes=dynamic_shapes)
    if target is not None:
        write_sidecar(target, model_metadata(model))
        atomic_write(target, lambda tmp: torch.export.save(program, tmp))
    return program

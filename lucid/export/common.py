"""What every export writer shares: the checks on its arguments, the folded eval-mode copy it traces,
the example input with its dynamic dimensions, and the names of the graph's input and output."""
from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.checks import is_int
from ..core.constants import MAX_IMAGE_SIZE
from ..core.errors import OptionError, OptionTypeError
from ..data.folder import Preprocessing
from ..models.modeling_resnet import ResNet
from ..nn.measure import model_device
from ..optimize import OptimizedModel, fold_batchnorm

__all__ = [
    "INPUT_NAME",
    "MIN_SIZE",
    "OUTPUT_NAME",
    "check_dtype",
    "check_model",
    "check_path",
    "deployable",
    "eval_mode",
    "example",
    "resolve_shape",
    "model_device",
    "model_dtype",
]

INPUT_NAME = "images"
OUTPUT_NAME = "logits"
# the smallest height/width a dynamic-size artefact accepts: the network downsamples by 32
MIN_SIZE = 32
DEFAULT_SIZE = 224
MAX_BATCH = 4096


def check_model(model: Any) -> nn.Module:
    """Accept lucid ResNet/ResNeXt models only: the export relies on their config and input contract."""

    if isinstance(model, OptimizedModel):
        raise OptionTypeError(
            "model is an optimize_for_inference() module (fused device kernels, or int8); export the plain model "
            "instead: the export folds BatchNorm itself, and the runtime applies its own fusions and quantization"
        )
    if not isinstance(model, ResNet):
        raise OptionTypeError(
            f"model must be a lucid model (lucid.models.ResNet or ResNeXt, e.g. from lucid.models.create_model), "
            f"got {type(model).__module__}.{type(model).__qualname__}"
        )
    return model


def trained_size(model: nn.Module) -> int:
    """The image size the model was trained at (its ``metadata["preprocessing"]``), else 224."""

    prep = (getattr(model, "metadata", None) or {}).get("preprocessing")
    if prep is None:
        return DEFAULT_SIZE
    return Preprocessing.from_dict(prep, source="model.metadata").image_size  # bounded before use


def resolve_shape(model: nn.Module, shape: Sequence[int] | None) -> tuple[int, int, int, int]:
    """The example input shape: ``(1, in_channels, S, S)`` with S the trained size by default, else ``shape`` checked."""
    channels = model.config.in_channels
    if shape is None:
        size = trained_size(model)
        return (1, channels, size, size)
    dims = tuple(shape)
    if len(dims) != 4 or not all(is_int(d) and d > 0 for d in dims):
        raise OptionError(f"input_shape must be four positive ints (N, C, H, W), got {shape!r}", "input_shape")
    if dims[1] != channels:
        raise OptionError(f"input_shape {dims} has {dims[1]} channels but the model expects in_channels={channels}", "input_shape")
    if max(dims[2:]) > MAX_IMAGE_SIZE or dims[0] > MAX_BATCH:
        raise OptionError(f"input_shape {dims} is too large: at most batch {MAX_BATCH} and {MAX_IMAGE_SIZE} px", "input_shape")
    return tuple(int(d) for d in dims)  # type: ignore[return-value]


def check_dtype(dtype: Any) -> torch.dtype:
    """A floating-point ``torch.dtype``, else a one-line refusal."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise OptionTypeError(f"dtype must be a floating-point torch.dtype such as torch.float32, got {dtype!r}", "dtype")
    return dtype


def check_path(path: str | os.PathLike[str], suffix: str) -> Path:
    """The file to write: not a folder."""
    path = Path(path)
    if path.is_dir():
        raise OptionError(f"path {str(path)!r} is a folder; expected a file name such as model{suffix}", "path")
    return path


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's first parameter (float32 for a model without any)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def deployable(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm folded into its convolution, cast to ``dtype``.

    Folding happens in the model's own precision, before the cast; the caller's model is never changed.
    """

    return fold_batchnorm(copy.deepcopy(model).eval()).to(dtype)


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode; every submodule's train/eval flag is restored afterwards."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def example(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, dynamic_batch: bool,
            dynamic_size: bool = False, max_batch: int = MAX_BATCH) -> tuple[torch.Tensor, Any]:
    """Example input and ``dynamic_shapes`` for torch.export.

    torch.export fixes any dimension whose example size is 1, so a dynamic batch is traced at
    batch 2 when the requested batch is 1; the exported graph accepts every batch size. With
    ``dynamic_size`` height and width vary too (from :data:`MIN_SIZE` up to the largest image size).
    ``max_batch`` bounds the batch for runtimes that plan their memory for the largest input.
    """
    if dynamic_batch:
        shape = (max(shape[0], 2), *shape[1:])
    x = torch.randn(shape, dtype=dtype, device=model_device(model))
    dims: dict[int, Any] = {}
    if dynamic_batch:
        dims[0] = torch.export.Dim("batch", min=1, max=max_batch)
    if dynamic_size:
        dims[2] = torch.export.Dim("height", min=MIN_SIZE, max=MAX_IMAGE_SIZE)
        dims[3] = torch.export.Dim("width", min=MIN_SIZE, max=MAX_IMAGE_SIZE)
    return x, ((dims,) if dims else None)
